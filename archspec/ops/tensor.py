"""Shape plumbing and the classifier end: flatten, linear, dropout, identity."""
from __future__ import annotations

import math

from .base import Arg, Example, Op, OpError
from .join import batched_axis
from .registry import register


@register
class Flatten(Op):
    name = "flatten"
    doc = "Flatten dimensions `start` to `end` of each sample into one (torch.flatten; by default all)."
    shape_rule = "the dimensions from start to end multiplied into one"
    args = {"start": Arg("int", 1, "first batched dimension to flatten (the batch is 0)"),
            "end": Arg("int", -1, "last batched dimension to flatten")}
    allocates = False
    examples = (Example({}, ((3, 4, 5),)), Example({"start": 2}, ((8, 4, 4),)),
                Example({"start": 1, "end": 2}, ((2, 3, 4),)))

    def _axes(self, a, shape):
        first = batched_axis(self, a["start"], len(shape), "start")
        last = batched_axis(self, a["end"], len(shape), "end")
        if last < first:
            raise OpError("E0408", f"flatten `end` {a['end']} comes before `start` {a['start']}", arg="end")
        return first, last

    def infer(self, a, shapes):
        first, last = self._axes(a, shapes[0])
        s = shapes[0]
        return (*s[:first], math.prod(s[first:last + 1]), *s[last + 1:])

    def function(self, a, shapes, training, inplace):
        first, last = self._axes(a, shapes[0])
        if first == last:
            return None
        import torch

        return torch.flatten, {"start_dim": first + 1, "end_dim": last + 1}


@register
class Linear(Op):
    name = "linear"
    doc = "Fully connected layer on the last dimension (any rank); in_features is inferred."
    shape_rule = "the input's shape with the last dimension replaced by out"
    mac_rule = "in x out x positions (every leading dimension; bias adds not counted)"
    args = {"out": Arg("int", doc="output features"), "bias": Arg("bool", True)}
    output_saved_for_backward = False
    examples = (Example({"out": 5}, ((12,),)), Example({"out": 6, "bias": False}, ((4, 8),)),
                Example({"out": 3}, ((2, 3, 4),)))

    def infer(self, a, shapes):
        if a["out"] < 1:
            raise OpError("E0408", f"linear `out` must be positive, got {a['out']}", arg="out")
        return (*shapes[0][:-1], a["out"])

    def params(self, a, shapes, out):
        return shapes[0][-1] * a["out"] + (a["out"] if a["bias"] else 0)

    def macs(self, a, shapes, out):
        return math.prod(shapes[0]) * a["out"]

    def module(self, a, shapes, factory):
        import torch.nn as nn

        return nn.Linear(shapes[0][-1], a["out"], a["bias"], **factory)


@register
class Dropout(Op):
    name = "dropout"
    doc = "Dropout in training; nothing at all in eval mode."
    allocates = False  # counted as nothing: eval mode has no dropout at all
    args = {"p": Arg("number", 0.5, "probability of zeroing an element")}
    examples = (Example({"p": 0.2}, ((10,),)), Example({}, ((3, 4, 4),)))

    def infer(self, a, shapes):
        if not 0.0 <= a["p"] <= 1.0:
            raise OpError("E0408", f"dropout `p` must lie in [0, 1], got {a['p']}", arg="p")
        return shapes[0]

    def function(self, a, shapes, training, inplace):
        if not training or a["p"] == 0.0:
            return None
        import torch.nn.functional as F

        return F.dropout, {"p": a["p"], "training": True}


@register
class Identity(Op):
    name = "identity"
    doc = "Pass the input through (a named point in the graph)."
    allocates = False
    examples = (Example({}, ((3, 4, 4),)),)

    def function(self, a, shapes, training, inplace):
        return None
