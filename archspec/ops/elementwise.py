"""Element-wise products of several inputs, with broadcasting: the rescaling of a
squeeze-and-excitation block (`x * scale`, scale (C, 1, 1)). Also a node kind,
`mul: [~, [BRANCH]]`, whose branches share the input. And the product by a constant
(`scale`)."""
from __future__ import annotations

import operator

from .base import Arg, Example, Op, OpError
from .registry import register


def broadcast(op: Op, shapes) -> tuple:
    """PyTorch's broadcast of per-sample shapes of one rank (every input has the batch
    dimension in front, so ranks must agree for it to line up)."""
    rank = len(shapes[0])
    if any(len(s) != rank for s in shapes[1:]):
        raise OpError("E0401", f"{op.name} inputs differ in rank",
                      "inputs must have one rank; sizes may differ where one of them is 1")
    out = []
    for sizes in zip(*shapes):
        wide = {size for size in sizes if size != 1}
        if len(wide) > 1:
            raise OpError("E0401", f"{op.name} inputs do not broadcast",
                          "along each dimension the sizes must agree or be 1")
        out.append(wide.pop() if wide else 1)
    return tuple(out)


@register
class Mul(Op):
    name = "mul"
    doc = ("Element-wise product of two or more inputs of one rank, broadcast as PyTorch "
           "does (squeeze-and-excitation: `x * scale` with scale (C, 1, 1)).")
    shape_rule = "the broadcast of the inputs' shapes (each dimension: the size that is not 1)"
    inputs = None
    join = True
    output_saved_for_backward = False  # a product keeps its inputs, not its output
    examples = (
        Example({}, ((4, 5, 5), (4, 1, 1))),
        Example({}, ((4, 1, 1), (4, 5, 5))),
        Example({}, ((6,), (6,), (1,))),
        Example({}, ((3, 8), (3, 8))),
    )

    def infer(self, a, shapes):
        return broadcast(self, shapes)

    def function(self, a, shapes, training, inplace):
        # Only the first input's memory may take the result: it must have the output's shape.
        inplace = inplace and tuple(shapes[0]) == broadcast(self, shapes)
        if len(shapes) == 2:  # reads as `a * b` in the generated forward
            return (operator.imul if inplace else operator.mul), {}
        return (mul_all_into_first if inplace else mul_all), {}


def mul_all(first, *rest):
    """The product of three or more tensors, in order."""
    for tensor in rest:
        first = first * tensor
    return first


def mul_all_into_first(first, *rest):
    """The same, accumulated in the first tensor's memory (nothing else reads it)."""
    for tensor in rest:
        first *= tensor
    return first


@register
class Scale(Op):
    name = "scale"
    doc = ("Multiply by a constant: x * factor (attention's 1/sqrt(d) on the queries, as "
           "`q * self.scale`).")
    args = {"factor": Arg("number", doc="the constant; an expression such as ${key_dim ** -0.5}")}
    output_saved_for_backward = False  # a product by a constant keeps nothing
    examples = (
        Example({"factor": 0.5}, ((3, 4, 4),)),
        Example({"factor": -2.0}, ((5,),)),
    )

    def function(self, a, shapes, training, inplace):
        from .functional import scale, scale_

        return (scale_ if inplace else scale), {"factor": a["factor"]}
