"""Batch normalisation over channels (images) or features (vectors)."""
from __future__ import annotations

from .base import Arg, Op, OpError, register


@register
class BatchNorm(Op):
    name = "bn"
    doc = "Batch norm; num_features is inferred. 1-D for (F,) inputs, 2-D for (C, H, W)."
    args = {
        "eps": Arg("number", 1e-5),
        "momentum": Arg("number", 0.1),
        "affine": Arg("bool", True),
    }

    def infer(self, a, shapes):
        if len(shapes[0]) not in (1, 3):
            raise OpError("E0407", f"op `bn` needs a (C, H, W) or (F,) input, got {list(shapes[0])}")
        return shapes[0]

    def params(self, a, shapes, out):
        return 2 * shapes[0][0] if a["affine"] else 0

    def buffers(self, a, shapes, out):
        return 2 * shapes[0][0], 1  # running mean and variance, num_batches_tracked

    def macs(self, a, shapes, out, params):
        return params

    def module(self, a, shapes, factory):
        import torch.nn as nn

        cls = nn.BatchNorm2d if len(shapes[0]) == 3 else nn.BatchNorm1d
        return cls(shapes[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"], **factory)
