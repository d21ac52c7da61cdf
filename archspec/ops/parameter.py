"""Ops whose weight is one bare nn.Parameter registered at the node's own name (as
torchvision registers ConvNeXt's `layer_scale` and ViT's `class_token`), so a node
named `layer_scale` gives the state-dict key `...layer_scale`. The forward hands the
parameter to the op's function after the inputs."""
from __future__ import annotations

import math
import operator

from .base import Arg, Example, Op, OpError
from .join import batched_axis
from .registry import register


@register
class LayerScale(Op):
    name = "layer_scale"
    doc = ("Multiply by a learnable factor per channel (ConvNeXt's `layer_scale`, shape "
           "(C, 1, 1) for a (C, H, W) input) or per feature of tokens ((D,) with dim: -1).")
    shape_rule = "the input's shape; the parameter is (size along dim, 1, ..., 1) up to the last dimension"
    args = {
        "value": Arg("number", 1e-6, "the factor every element starts at (torchvision's `layer_scale`)"),
        "dim": Arg("int", 1, "batched dimension the factors run along: 1 the channels (ConvNeXt), "
                             "-1 the last (tokens)"),
    }
    output_saved_for_backward = False  # a product keeps its inputs, not its output
    examples = (
        Example({}, ((6, 4, 4),)),
        Example({"value": 0.1, "dim": -1}, ((5, 8),)),
        Example({"value": 0.5}, ((4, 7),)),
        Example({"dim": 2}, ((2, 3, 4, 4),)),
    )

    def _shape(self, a, shape) -> tuple:
        axis = batched_axis(self, a["dim"], len(shape))
        return (shape[axis],) + (1,) * (len(shape) - axis - 1)

    def infer(self, a, shapes):
        self._shape(a, shapes[0])
        return shapes[0]

    def params(self, a, shapes, out):
        return math.prod(self._shape(a, shapes[0]))

    def module(self, a, shapes, factory):
        import torch
        import torch.nn as nn

        # torchvision: torch.ones(dim, 1, 1) * layer_scale, the same value as a fill.
        return nn.Parameter(torch.full(self._shape(a, shapes[0]), a["value"], **factory))

    def function(self, a, shapes, training, inplace):
        return (operator.imul if inplace else operator.mul), {}


@register
class Param(Op):
    name = "param"
    doc = ("A free learnable tensor (nn.Parameter of `shape`, batch dimension 1 first) at the "
           "node's name, repeated for each sample of its input's batch (the input lends only "
           "its batch size; torchvision's `class_token.expand(n, -1, -1)`, as a copy).")
    shape_rule = "shape[1:]: `shape` without its leading 1, which becomes the batch"
    args = {
        "shape": Arg("ints", doc="the parameter's full shape as torch holds it, the batch "
                                 "dimension 1 first: [1, 1, 768]"),
        "init": Arg("number", 0.0, "the value every element starts at (0: zeros)"),
    }
    output_saved_for_backward = False  # the copy's backward needs nothing
    examples = (
        Example({"shape": [1, 1, 8]}, ((5, 8),)),
        Example({"shape": [1, 6], "init": 0.5}, ((3, 4, 4),)),
        Example({"shape": [1, 3, 1, 1]}, ((7,),)),
    )

    def infer(self, a, shapes):
        shape = a["shape"]
        if len(shape) < 2 or shape[0] != 1 or min(shape) < 1:
            raise OpError("E0408", f"param `shape` must be positive sizes after a leading 1 (the batch "
                          f"it is expanded over), got {list(shape)}", "e.g. [1, 1, 768]", arg="shape")
        return tuple(shape[1:])

    def params(self, a, shapes, out):
        return math.prod(a["shape"])

    def module(self, a, shapes, factory):
        import torch
        import torch.nn as nn

        return nn.Parameter(torch.full(tuple(a["shape"]), a["init"], **factory))

    def function(self, a, shapes, training, inplace):
        from .functional import expand_over_batch

        return expand_over_batch, {}
