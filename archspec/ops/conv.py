"""Convolution: plain, grouped, depthwise, dilated, with asymmetric kernels."""
from __future__ import annotations

from .base import Arg, Op, OpError, need_rank, register, spatial_out


@register
class Conv(Op):
    name = "conv"
    doc = "2-D convolution; in_channels is inferred."
    args = {
        "out": Arg("int", None, "output channels (defaults to the input's for depthwise)"),
        "k": Arg("pair", doc="kernel size: 3 or [1, 7]"),
        "stride": Arg("pair", 1),
        "pad": Arg("pair", 0, "zero padding: 1 or [0, 3]"),
        "dilation": Arg("pair", 1),
        "groups": Arg("int", 1),
        "depthwise": Arg("bool", False, "one group per input channel"),
        "bias": Arg("bool", True),
    }

    def _layout(self, a, shape):
        need_rank(self, shape, 3)
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
        return cin, out, groups

    def infer(self, a, shapes):
        cin, out, _ = self._layout(a, shapes[0])
        _, h, w = shapes[0]
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["k"], a["stride"], a["pad"], a["dilation"]
        for v, what in ((kh, "k"), (kw, "k"), (sh, "stride"), (sw, "stride"), (dh, "dilation"), (dw, "dilation")):
            if v < 1:
                raise OpError("E0408", f"conv `{what}` must be at least 1, got {v}", arg=what)
        if ph < 0 or pw < 0:
            raise OpError("E0408", f"conv `pad` must not be negative, got {list(a['pad'])}", arg="pad")
        return (out, spatial_out(h, kh, sh, ph, dh, axis="height"),
                spatial_out(w, kw, sw, pw, dw, axis="width"))

    def params(self, a, shapes, out):
        cin, cout, groups = self._layout(a, shapes[0])
        kh, kw = a["k"]
        return cout * (cin // groups) * kh * kw + (cout if a["bias"] else 0)

    def macs(self, a, shapes, out, params):
        return params * out[1] * out[2]

    def module(self, a, shapes, factory):
        import torch.nn as nn

        cin, cout, groups = self._layout(a, shapes[0])
        return nn.Conv2d(cin, cout, a["k"], a["stride"], a["pad"], a["dilation"], groups,
                         a["bias"], **factory)


@register
class Project(Op):
    name = "project"
    doc = ("Shortcut projection sized after a second input: identity when both inputs "
           "have one shape, else a strided 1x1 conv and batch norm (modules `0` and `1`).")
    args = {"eps": Arg("number", 1e-5), "bias": Arg("bool", False)}
    inputs = 2
    fed_inputs = 1

    def _needed(self, shapes):
        (x, ref) = shapes
        need_rank(self, x, 3)
        need_rank(self, ref, 3, "reference")
        if x == ref:
            return None
        if x[1] % ref[1] or x[2] % ref[2] or x[1] // ref[1] != x[2] // ref[2]:
            raise OpError("E0402", f"cannot project {list(x)} onto {list(ref)}: the spatial "
                          "sizes are not one integer stride apart")
        return x[0], ref[0], x[1] // ref[1]

    def infer(self, a, shapes):
        self._needed(shapes)
        return shapes[1]

    def params(self, a, shapes, out):
        need = self._needed(shapes)
        if need is None:
            return 0
        cin, cout, _ = need
        return cin * cout + (cout if a["bias"] else 0) + 2 * cout

    def buffers(self, a, shapes, out):
        need = self._needed(shapes)
        return (0, 0) if need is None else (2 * need[1], 1)

    def macs(self, a, shapes, out, params):
        need = self._needed(shapes)
        if need is None:
            return 0
        cin, cout, _ = need
        conv = cin * cout + (cout if a["bias"] else 0)
        return conv * out[1] * out[2] + 2 * cout

    def module(self, a, shapes, factory):
        need = self._needed(shapes)
        if need is None:
            return None
        import torch.nn as nn

        cin, cout, stride = need
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=a["bias"], **factory),
                             nn.BatchNorm2d(cout, eps=a["eps"], **factory))

    def function(self, a, shapes, training, inplace):
        return None  # reached only when the shapes agree: the shortcut is the input
