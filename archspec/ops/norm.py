"""Normalisation: batch norm over channels (images, signals, video) or features
(vectors); layer norm over the last dimension or over the channels; group norm."""
from __future__ import annotations

from .base import Arg, Example, Op, OpError, need_rank
from .conv import torch_nn
from .registry import register

_CLASSES = {1: "BatchNorm1d", 2: "BatchNorm1d", 3: "BatchNorm2d", 4: "BatchNorm3d"}


def positive_eps(op, a) -> None:
    """A norm divides by sqrt(variance + eps): eps must be positive, or a constant
    channel divides by zero."""
    if a["eps"] <= 0:
        raise OpError("E0408", f"{op.name} `eps` must be positive, got {a['eps']}", arg="eps")


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
        positive_eps(self, a)
        if not 0.0 <= a["momentum"] <= 1.0:
            raise OpError("E0408", f"bn `momentum` must lie in [0, 1], got {a['momentum']}", arg="momentum")
        return shapes[0]

    def params(self, a, shapes, out):
        return 2 * shapes[0][0] if a["affine"] else 0

    def buffers(self, a, shapes, out):
        return 2 * shapes[0][0], 1  # running mean and variance, num_batches_tracked

    def module(self, a, shapes, factory):
        cls = torch_nn(_CLASSES[len(shapes[0])])
        return cls(shapes[0][0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"], **factory)


class _LayerNormBase(Op):
    args = {
        "eps": Arg("number", 1e-5),
        "affine": Arg("bool", True, "a learnable weight per element normalised (elementwise_affine)"),
        "bias": Arg("bool", True, "with `affine`: a learnable bias too"),
    }
    output_saved_for_backward = False  # its backward reads the input and statistics

    def _size(self, shape) -> int:
        raise NotImplementedError

    def infer(self, a, shapes):
        if not shapes[0]:
            raise OpError("E0407", f"op `{self.name}` needs an input of rank 1 or more")
        positive_eps(self, a)
        return shapes[0]

    def params(self, a, shapes, out):
        return self._size(shapes[0]) * (1 + a["bias"]) if a["affine"] else 0


@register
class LayerNorm(_LayerNormBase):
    name = "layer_norm"
    doc = ("Layer norm over the last dimension of any rank (nn.LayerNorm): the features "
           "of each token of (L, D), of (F,), or the last axis of a tensor.")
    examples = (
        Example({}, ((5, 8),)),
        Example({"eps": 0.001}, ((12,),)),
        Example({"bias": False}, ((3, 4, 6),)),
        Example({"affine": False}, ((2, 3, 4, 5),)),
    )

    def _size(self, shape):
        return shape[-1]

    def module(self, a, shapes, factory):
        import torch.nn as nn

        return nn.LayerNorm(shapes[0][-1], eps=a["eps"], elementwise_affine=a["affine"],
                            bias=a["bias"], **factory)


@register
class LayerNorm2d(_LayerNormBase):
    name = "layer_norm2d"
    doc = ("Layer norm over the channels (dimension 0) of each position of a channels-first "
           "tensor, as torchvision's ConvNeXt `LayerNorm2d` (permute, layer norm, permute back).")
    examples = (
        Example({"eps": 0.001}, ((6, 4, 5),)),
        Example({}, ((4, 7),)),
        Example({"bias": False}, ((3, 2, 3, 3),)),
        Example({"affine": False}, ((5, 4, 4),)),
    )

    def _size(self, shape):
        return shape[0]

    def module(self, a, shapes, factory):
        from .functional import LayerNorm2d as Module

        return Module(shapes[0][0], eps=a["eps"], elementwise_affine=a["affine"], bias=a["bias"], **factory)


@register
class GroupNorm(Op):
    name = "group_norm"
    doc = ("Group norm (nn.GroupNorm): the channels (dimension 0) of each sample split into "
           "`groups`, each normalised over its channels and every position.")
    args = {
        "groups": Arg("int", doc="number of channel groups; must divide the channels"),
        "eps": Arg("number", 1e-5),
        "affine": Arg("bool", True, "a learnable weight and bias per channel"),
    }
    output_saved_for_backward = False  # its backward reads the input and statistics
    examples = (
        Example({"groups": 2}, ((4, 6, 6),)),
        Example({"groups": 1, "eps": 0.001}, ((6, 10),)),
        Example({"groups": 3, "affine": False}, ((6, 2, 3, 3),)),
        Example({"groups": 8}, ((8,),)),
    )

    def infer(self, a, shapes):
        if not shapes[0]:
            raise OpError("E0407", "op `group_norm` needs an input of rank 1 or more")
        positive_eps(self, a)
        channels, groups = shapes[0][0], a["groups"]
        if groups < 1:
            raise OpError("E0408", f"group_norm `groups` must be positive, got {groups}", arg="groups")
        if channels % groups:
            raise OpError("E0405", f"channels are not divisible by groups: {channels} channels, {groups} groups",
                          "groups must divide the input's channels", arg="groups")
        return shapes[0]

    def params(self, a, shapes, out):
        return 2 * shapes[0][0] if a["affine"] else 0

    def module(self, a, shapes, factory):
        import torch.nn as nn

        return nn.GroupNorm(a["groups"], shapes[0][0], eps=a["eps"], affine=a["affine"], **factory)
