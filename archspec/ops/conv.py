"""Convolution (1-D, 2-D, 3-D; grouped, depthwise, dilated, asymmetric) and the
shortcut projection of a residual."""
from __future__ import annotations

import math

from .base import AXES, Arg, Example, Op, OpError, need_rank, per_dim, spatial_out
from .registry import register

_CONV_CLASSES = {1: "Conv1d", 2: "Conv2d", 3: "Conv3d"}
_BN_CLASSES = {1: "BatchNorm1d", 2: "BatchNorm2d", 3: "BatchNorm3d"}


def torch_nn(class_name: str):
    import torch.nn as nn

    return getattr(nn, class_name)


@register
class Conv(Op):
    name = "conv"
    doc = ("Convolution over the spatial dimensions: 1-D for (C, L), 2-D for (C, H, W), "
           "3-D for (C, T, H, W); in_channels is inferred.")
    shape_rule = ("(out, *spatial) with each spatial size (size + 2*pad - dilation*(k-1) - 1) // "
                  "stride + 1")
    mac_rule = "out x in/groups x prod(k) x output positions (bias adds not counted)"
    args = {
        "out": Arg("int", None, "output channels (defaults to the input's for depthwise)"),
        "k": Arg("size", doc="kernel size: 3, or one per spatial dimension: [1, 7]"),
        "stride": Arg("size", 1),
        "pad": Arg("size", 0, "zero padding: 1, or one per spatial dimension: [0, 3]"),
        "dilation": Arg("size", 1),
        "groups": Arg("int", 1),
        "depthwise": Arg("bool", False, "one group per input channel"),
        "bias": Arg("bool", True),
    }
    output_saved_for_backward = False
    examples = (
        Example({"out": 8, "k": 3, "pad": 1}, ((3, 10, 12),)),
        Example({"out": 6, "k": [1, 7], "pad": [0, 3], "stride": 2, "bias": False}, ((4, 9, 9),)),
        Example({"k": 3, "depthwise": True, "dilation": 2, "pad": 2}, ((6, 11, 11),)),
        Example({"out": 8, "k": 3, "groups": 2, "stride": 2}, ((4, 16),)),
        Example({"out": 4, "k": [3, 1, 1], "pad": [1, 0, 0]}, ((3, 4, 6, 6),)),
    )

    def _layout(self, a, shape):
        need_rank(self, shape, (2, 3, 4))
        cin = shape[0]
        groups = cin if a["depthwise"] else a["groups"]
        out = a["out"] if a["out"] is not None else (cin if a["depthwise"] else None)
        if out is None:
            raise OpError("E0304", "op `conv` needs argument `out`", "`out`: output channels")
        if groups < 1 or out < 1:
            raise OpError("E0408", f"conv needs positive `out` and `groups`, got out={out}, groups={groups}",
                          arg="groups" if groups < 1 else "out")
        if cin % groups or out % groups:
            raise OpError("E0405", f"channels are not divisible by groups: in {cin}, out {out}, groups {groups}",
                          "in_channels and out must both be multiples of groups", arg="groups")
        rank = len(shape) - 1
        window = {key: per_dim(a[key], rank, key) for key in ("k", "stride", "pad", "dilation")}
        for key, least in (("k", 1), ("stride", 1), ("dilation", 1), ("pad", 0)):
            if min(window[key]) < least:
                raise OpError("E0408", f"conv `{key}` must be at least {least}, got {list(window[key])}", arg=key)
        return cin, out, groups, window

    def infer(self, a, shapes):
        _, out, _, w = self._layout(a, shapes[0])
        spatial = shapes[0][1:]
        return (out, *(spatial_out(size, k, s, p, d, axis=axis) for size, k, s, p, d, axis in
                       zip(spatial, w["k"], w["stride"], w["pad"], w["dilation"], AXES[len(spatial)])))

    def params(self, a, shapes, out):
        cin, cout, groups, w = self._layout(a, shapes[0])
        return cout * (cin // groups) * math.prod(w["k"]) + (cout if a["bias"] else 0)

    def macs(self, a, shapes, out):
        cin, cout, groups, w = self._layout(a, shapes[0])
        return cout * (cin // groups) * math.prod(w["k"]) * math.prod(out[1:])

    def module(self, a, shapes, factory):
        cin, cout, groups, w = self._layout(a, shapes[0])
        cls = torch_nn(_CONV_CLASSES[len(shapes[0]) - 1])
        return cls(cin, cout, w["k"], w["stride"], w["pad"], w["dilation"], groups, a["bias"], **factory)


@register
class Project(Op):
    name = "project"
    doc = ("Shortcut projection sized after a second input: identity when both inputs "
           "have one shape, else a strided 1x1 conv and batch norm (modules `0` and `1`, "
           "torchvision's `downsample`); the stride may differ per dimension.")
    shape_rule = "the second (reference) input's shape"
    mac_rule = "in x out x output positions when it projects, else 0"
    args = {
        "stride": Arg("size", None, "the 1x1 conv's stride; by default the least that gives the "
                                    "reference's size (ceil(size / stride) = its size, so 25 -> 13 is 2)"),
        "eps": Arg("number", 1e-5),
        "bias": Arg("bool", False),
    }
    inputs = 2
    fed_inputs = 1
    output_saved_for_backward = False
    examples = (
        Example({}, ((4, 8, 8), (8, 4, 4))),
        Example({"bias": True}, ((4, 6), (6, 3))),
        Example({}, ((4, 8, 8), (4, 8, 8))),
        Example({}, ((3, 4, 8, 8), (6, 4, 4, 4))),
        Example({}, ((4, 25, 7), (8, 13, 4))),  # odd sizes: a stride-2 body rounds up
        Example({"stride": [3, 2]}, ((4, 7, 8), (6, 3, 4))),
    )

    def _needed(self, a, shapes):
        x, ref = shapes
        need_rank(self, x, (2, 3, 4))
        need_rank(self, ref, len(x), "reference")
        if x == ref:
            return None
        # A 1x1 conv of stride s keeps ceil(size / s) positions. The least s giving the
        # reference's size is the body's stride whenever the sizes divide, and for a
        # stride-2 body at odd sizes too (25 -> 13); video shortcuts keep time, (1, 2, 2).
        rank = len(x) - 1
        given = a["stride"] is not None
        strides = (per_dim(a["stride"], rank, "stride") if given
                   else tuple(-(-size // max(target, 1)) for size, target in zip(x[1:], ref[1:])))
        if given and min(strides) < 1:
            raise OpError("E0408", f"project `stride` must be at least 1, got {list(strides)}", arg="stride")
        kept = tuple(-(-size // s) for size, s in zip(x[1:], strides))
        if kept != tuple(ref[1:]):
            why = (f"a 1x1 conv of stride {a['stride']!r} gives {list(kept)}, not {list(ref[1:])}" if given
                   else f"no stride of a 1x1 conv takes {list(x[1:])} to {list(ref[1:])}")
            raise OpError("E0402", f"cannot project {list(x)} onto {list(ref)}: {why}",
                          "a stride s keeps ceil(size / s) positions along each dimension",
                          arg="stride" if given else None)
        return x[0], ref[0], strides[0] if len(set(strides)) == 1 else strides

    def infer(self, a, shapes):
        self._needed(a, shapes)
        return shapes[1]

    def params(self, a, shapes, out):
        need = self._needed(a, shapes)
        if need is None:
            return 0
        cin, cout, _ = need
        return cin * cout + (cout if a["bias"] else 0) + 2 * cout

    def buffers(self, a, shapes, out):
        need = self._needed(a, shapes)
        return (0, 0) if need is None else (2 * need[1], 1)

    def macs(self, a, shapes, out):
        need = self._needed(a, shapes)
        return 0 if need is None else need[0] * need[1] * math.prod(out[1:])

    def module(self, a, shapes, factory):
        need = self._needed(a, shapes)
        if need is None:
            return None
        import torch.nn as nn

        cin, cout, stride = need
        rank = len(shapes[0]) - 1
        return nn.Sequential(torch_nn(_CONV_CLASSES[rank])(cin, cout, 1, stride, bias=a["bias"], **factory),
                             torch_nn(_BN_CLASSES[rank])(cout, eps=a["eps"], **factory))

    def function(self, a, shapes, training, inplace):
        return None  # reached only when the shapes agree: the shortcut is the input
