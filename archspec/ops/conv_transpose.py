"""Transposed convolution (1-D, 2-D, 3-D), as decoders and segmentation heads upsample."""
from __future__ import annotations

import math

from .base import AXES, Arg, Example, Op, OpError, need_rank, per_dim
from .conv import torch_nn
from .registry import register

_CLASSES = {1: "ConvTranspose1d", 2: "ConvTranspose2d", 3: "ConvTranspose3d"}


@register
class ConvTranspose(Op):
    name = "conv_transpose"
    doc = ("Transposed convolution over the spatial dimensions: 1-D for (C, L), 2-D for "
           "(C, H, W), 3-D for (C, T, H, W) (nn.ConvTranspose1d/2d/3d); in_channels is inferred.")
    shape_rule = ("(out, *spatial) with each spatial size (size - 1)*stride - 2*pad + "
                  "dilation*(k - 1) + output_pad + 1")
    mac_rule = "in x out/groups x prod(k) x input positions (FlopCounterMode's transposed count)"
    args = {
        "out": Arg("int", doc="output channels"),
        "k": Arg("size", doc="kernel size: 2, or one per spatial dimension: [1, 2, 2]"),
        "stride": Arg("size", 1),
        "pad": Arg("size", 0, "trimmed from each side of the output: dilation*(k-1) - pad zeros pad the input"),
        "output_pad": Arg("size", 0, "added to one side of the output; below stride or dilation"),
        "groups": Arg("int", 1),
        "dilation": Arg("size", 1),
        "bias": Arg("bool", True),
    }
    output_saved_for_backward = False
    examples = (
        Example({"out": 4, "k": 2, "stride": 2}, ((6, 5, 7),)),  # U-Net's up-convolution
        Example({"out": 6, "k": 3, "stride": 2, "pad": 1, "output_pad": 1, "groups": 2, "bias": False},
                ((4, 4, 5),)),
        Example({"out": 3, "k": 4, "stride": 3, "pad": 2, "dilation": 2}, ((2, 6),)),
        Example({"out": 2, "k": [1, 2, 2], "stride": [1, 2, 2]}, ((3, 2, 3, 3),)),
    )

    def _layout(self, a, shape):
        need_rank(self, shape, (2, 3, 4))
        cin, out, groups = shape[0], a["out"], a["groups"]
        if groups < 1 or out < 1:
            raise OpError("E0408", f"conv_transpose needs positive `out` and `groups`, got out={out}, "
                          f"groups={groups}", arg="groups" if groups < 1 else "out")
        if cin % groups or out % groups:
            raise OpError("E0405", f"channels are not divisible by groups: in {cin}, out {out}, groups {groups}",
                          "in_channels and out must both be multiples of groups", arg="groups")
        rank = len(shape) - 1
        w = {key: per_dim(a[key], rank, key) for key in ("k", "stride", "pad", "output_pad", "dilation")}
        for key, least in (("k", 1), ("stride", 1), ("dilation", 1), ("pad", 0), ("output_pad", 0)):
            if min(w[key]) < least:
                raise OpError("E0408", f"conv_transpose `{key}` must be at least {least}, got {list(w[key])}",
                              arg=key)
        for extra, stride, dilation in zip(w["output_pad"], w["stride"], w["dilation"]):
            if extra >= max(stride, dilation):
                raise OpError("E0408", f"conv_transpose `output_pad` {extra} must be smaller than the stride "
                              f"{stride} or the dilation {dilation}", arg="output_pad")
        return cin, out, groups, w

    def infer(self, a, shapes):
        cin, out, _, w = self._layout(a, shapes[0])
        sizes = []
        for i, (size, axis) in enumerate(zip(shapes[0][1:], AXES[len(shapes[0]) - 1])):
            k, s, p, e, d = (w[key][i] for key in ("k", "stride", "pad", "output_pad", "dilation"))
            length = (size - 1) * s - 2 * p + d * (k - 1) + e + 1
            if length < 1:
                raise OpError("E0403", f"output {axis} would be {length}: ({size} - 1)*{s} - 2*{p} + "
                              f"{d}*({k} - 1) + {e} + 1", "use less padding", arg="pad")
            sizes.append(length)
        return (out, *sizes)

    def params(self, a, shapes, out):
        cin, cout, groups, w = self._layout(a, shapes[0])
        return cin * (cout // groups) * math.prod(w["k"]) + (cout if a["bias"] else 0)

    def macs(self, a, shapes, out):
        # FlopCounterMode counts a transposed conv over the input's positions, not the output's.
        cin, cout, groups, w = self._layout(a, shapes[0])
        return cin * (cout // groups) * math.prod(w["k"]) * math.prod(shapes[0][1:])

    def module(self, a, shapes, factory):
        cin, cout, groups, w = self._layout(a, shapes[0])
        cls = torch_nn(_CLASSES[len(shapes[0]) - 1])
        return cls(cin, cout, w["k"], w["stride"], w["pad"], w["output_pad"], groups, a["bias"],
                   w["dilation"], **factory)
