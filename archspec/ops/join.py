"""Joins of several inputs: channel concatenation and residual addition."""
from __future__ import annotations

import operator

from .base import Arg, Op, OpError, register


@register
class Concat(Op):
    name = "concat"
    doc = "Concatenate inputs along channels (dim 1 of the batched tensor)."
    args = {"dim": Arg("int", 1, "batched dimension to join along")}
    inputs = None

    def infer(self, a, shapes):
        axis = a["dim"] - 1
        rank = len(shapes[0])
        if not 0 <= axis < rank:
            raise OpError("E0408", f"concat `dim` {a['dim']} is outside a rank-{rank + 1} batched tensor", arg="dim")
        for s in shapes[1:]:
            if len(s) != rank or any(x != y for i, (x, y) in enumerate(zip(s, shapes[0])) if i != axis):
                raise OpError("E0402", "concat inputs differ outside the joined dimension",
                              "branches must agree in every dimension except channels")
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
