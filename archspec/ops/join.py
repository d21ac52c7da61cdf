"""Joins of several inputs: concatenation and residual addition. Both are also node
kinds (`concat: [branch, ...]`, `add: [branch, ...]`) whose branches share the input."""
from __future__ import annotations

import operator

from .base import Arg, Example, Op, OpError
from .registry import register


def batched_axis(op: Op, dim: int, rank: int, arg: str = "dim") -> int:
    """A `dim` as written (the batch is dimension 0; negative counts from the end) as
    an index into the per-sample shape."""
    axis = dim + rank + 1 if dim < 0 else dim
    if not 1 <= axis <= rank:
        raise OpError("E0408", f"{op.name} `{arg}` {dim} is not a per-sample dimension of a "
                      f"rank-{rank + 1} batched tensor (the batch is dimension 0)", arg=arg)
    return axis - 1


@register
class Concat(Op):
    name = "concat"
    doc = "Concatenate inputs along a dimension (default 1, the channels of a batched tensor)."
    shape_rule = "the inputs' shape with the joined dimension summed"
    args = {"dim": Arg("int", 1, "batched dimension to join along (the batch is 0; -1 the last)")}
    inputs = None
    join = True
    takes_list = True
    output_saved_for_backward = False
    examples = (Example({}, ((3, 4, 4), (5, 4, 4))), Example({"dim": -1}, ((4, 3), (4, 2), (4, 1))))

    def infer(self, a, shapes):
        rank = len(shapes[0])
        axis = batched_axis(self, a["dim"], rank)
        for s in shapes[1:]:
            if len(s) != rank or any(x != y for i, (x, y) in enumerate(zip(s, shapes[0])) if i != axis):
                raise OpError("E0402", "concat inputs differ outside the joined dimension",
                              "branches must agree in every dimension except the one joined")
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)

    def function(self, a, shapes, training, inplace):
        import torch

        return torch.cat, {"dim": a["dim"]}


@register
class Add(Op):
    name = "add"
    doc = "Element-wise sum of inputs of one shape (residual connection)."
    inputs = None
    join = True
    output_saved_for_backward = False
    examples = (Example({}, ((3, 4, 4), (3, 4, 4))), Example({}, ((6,), (6,), (6,))))

    def infer(self, a, shapes):
        for s in shapes[1:]:
            if s != shapes[0]:
                which = "channels" if len(s) == len(shapes[0]) and s[0] != shapes[0][0] else "shape"
                raise OpError("E0401", f"add inputs differ in {which}",
                              "a residual needs a projection (`op: project`) when shapes change")
        return shapes[0]

    def function(self, a, shapes, training, inplace):
        if len(shapes) == 2:  # reads as `a + b` in the generated forward
            return (operator.iadd if inplace else operator.add), {}
        return (add_all_into_first if inplace else add_all), {}


def add_all(first, *rest):
    """The sum of three or more tensors."""
    for tensor in rest:
        first = first + tensor
    return first


def add_all_into_first(first, *rest):
    """The same, accumulated in the first tensor's memory (nothing else reads it)."""
    for tensor in rest:
        first += tensor
    return first
