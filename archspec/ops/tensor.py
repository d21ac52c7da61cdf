"""Shape plumbing and the classifier end: flatten, linear, dropout, identity."""
from __future__ import annotations

import math

from .base import Arg, Op, OpError, need_rank, register


@register
class Flatten(Op):
    name = "flatten"
    doc = "Flatten each sample to a vector."
    allocates = False

    def infer(self, a, shapes):
        return (math.prod(shapes[0]),)

    def function(self, a, shapes, training, inplace):
        if len(shapes[0]) == 1:
            return None
        import torch

        return torch.flatten, {"start_dim": 1}


@register
class Linear(Op):
    name = "linear"
    doc = "Fully connected layer; in_features is inferred."
    args = {"out": Arg("int", doc="output features"), "bias": Arg("bool", True)}

    def infer(self, a, shapes):
        need_rank(self, shapes[0], 1)
        if a["out"] < 1:
            raise OpError("E0408", f"linear `out` must be positive, got {a['out']}", arg="out")
        return (a["out"],)

    def params(self, a, shapes, out):
        return shapes[0][0] * a["out"] + (a["out"] if a["bias"] else 0)

    def macs(self, a, shapes, out, params):
        return params

    def module(self, a, shapes, factory):
        import torch.nn as nn

        return nn.Linear(shapes[0][0], a["out"], a["bias"], **factory)


@register
class Dropout(Op):
    name = "dropout"
    doc = "Dropout in training; nothing at all in eval mode."
    allocates = False  # counted as nothing: eval mode has no dropout at all
    args = {"p": Arg("number", 0.5, "probability of zeroing an element")}

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

    def function(self, a, shapes, training, inplace):
        return None
