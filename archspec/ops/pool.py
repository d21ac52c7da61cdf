"""Pooling: windowed max/avg and adaptive pools. No parameters, no MACs."""
from __future__ import annotations

from .base import Arg, Op, OpError, need_rank, register, spatial_out

_WINDOW_ARGS = {
    "k": Arg("pair", doc="window size: 3 or [3, 3]"),
    "stride": Arg("pair", None, "defaults to the window size"),
    "pad": Arg("pair", 0),
    "ceil_mode": Arg("bool", False, "round the output size up, as Caffe did"),
}


class _WindowPool(Op):
    def _window(self, a):
        k = a["k"]
        stride = a["stride"] or k
        pad = a["pad"]
        for i, axis in enumerate(("height", "width")):
            for value, arg, least in ((k[i], "k", 1), (stride[i], "stride", 1), (pad[i], "pad", 0)):
                if value < least:
                    raise OpError("E0408", f"{self.name} `{arg}` must be at least {least} ({axis}), got {value}",
                                  arg=arg)
            if pad[i] * 2 > k[i]:
                raise OpError("E0408", f"{self.name} padding {pad[i]} exceeds half the window {k[i]}",
                              "PyTorch allows at most k // 2 padding for pools", arg="pad")
        return k, stride, pad

    def infer(self, a, shapes):
        need_rank(self, shapes[0], 3)
        c, h, w = shapes[0]
        k, s, p = self._window(a)
        return (c, spatial_out(h, k[0], s[0], p[0], 1, a["ceil_mode"], "height"),
                spatial_out(w, k[1], s[1], p[1], 1, a["ceil_mode"], "width"))


@register
class MaxPool(_WindowPool):
    name = "maxpool"
    doc = "Max pool over a window."
    args = dict(_WINDOW_ARGS)

    def function(self, a, shapes, training, inplace):
        import torch.nn.functional as F

        k, s, p = self._window(a)
        return F.max_pool2d, {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": a["ceil_mode"]}


@register
class AvgPool(_WindowPool):
    name = "avgpool"
    doc = "Average pool over a window."
    args = {**_WINDOW_ARGS, "count_include_pad": Arg("bool", True)}

    def function(self, a, shapes, training, inplace):
        import torch.nn.functional as F

        k, s, p = self._window(a)
        return F.avg_pool2d, {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": a["ceil_mode"],
                              "count_include_pad": a["count_include_pad"]}


class _AdaptivePool(Op):
    args = {"out": Arg("pair", 1, "output size: 1 or [h, w]")}
    fn = ""  # the function's name in torch.nn.functional

    def infer(self, a, shapes):
        need_rank(self, shapes[0], 3)
        oh, ow = a["out"]
        if oh < 1 or ow < 1:
            raise OpError("E0408", f"{self.name} output size must be positive, got {[oh, ow]}", arg="out")
        return (shapes[0][0], oh, ow)

    def function(self, a, shapes, training, inplace):
        import torch.nn.functional as F

        return getattr(F, self.fn), {"output_size": a["out"]}


@register
class AdaptiveAvgPool(_AdaptivePool):
    name = "adaptive_avgpool"
    doc = "Average pool to a fixed output size (global average pool with out: 1)."
    fn = "adaptive_avg_pool2d"


@register
class AdaptiveMaxPool(_AdaptivePool):
    name = "adaptive_maxpool"
    doc = "Max pool to a fixed output size."
    fn = "adaptive_max_pool2d"
