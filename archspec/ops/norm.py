"""Batch normalisation over channels (images, signals, video) or features (vectors)."""
from __future__ import annotations

from .base import Arg, Example, Op, need_rank
from .conv import torch_nn
from .registry import register

_CLASSES = {1: "BatchNorm1d", 2: "BatchNorm1d", 3: "BatchNorm2d", 4: "BatchNorm3d"}


@register
class BatchNorm(Op):
    name = "bn"
    doc = ("Batch norm over dimension 0 of each sample: features of (F,), channels of "
           "(C, L), (C, H, W) and (C, T, H, W); num_features is inferred.")
    args = {
        "eps": Arg("number", 1e-5),
        "momentum": Arg("number", 0.1),
        "affine": Arg("bool", True),
    }
    output_saved_for_backward = False
    examples = (
        Example({}, ((4, 6, 6),)),
        Example({"eps": 0.001, "momentum": 0.01}, ((5,),)),
        Example({"affine": False}, ((3, 7),)),
        Example({}, ((2, 3, 4, 4),)),
    )

    def infer(self, a, shapes):
        need_rank(self, shapes[0], (1, 2, 3, 4))
        return shapes[0]

    def params(self, a, shapes, out):
        return 2 * shapes[0][0] if a["affine"] else 0

    def buffers(self, a, shapes, out):
        return 2 * shapes[0][0], 1  # running mean and variance, num_batches_tracked

    def module(self, a, shapes, factory):
        cls = torch_nn(_CLASSES[len(shapes[0])])
        return cls(shapes[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"], **factory)
