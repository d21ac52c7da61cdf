"""Pooling over the spatial dimensions (1-D, 2-D, 3-D): windowed max/avg and adaptive
pools. No parameters; FlopCounterMode counts no MACs for them."""
from __future__ import annotations

from .base import AXES, Arg, Example, Op, OpError, need_rank, per_dim, spatial_out
from .registry import register

_WINDOW_ARGS = {
    "k": Arg("size", doc="window size: 3, or one per spatial dimension: [3, 3]"),
    "stride": Arg("size", None, "defaults to the window size"),
    "pad": Arg("size", 0),
    "ceil_mode": Arg("bool", False, "round the output size up, as Caffe did"),
}
_SPATIAL = (2, 3, 4)  # (C, L), (C, H, W), (C, T, H, W)


class _WindowPool(Op):
    shape_rule = "(C, *spatial) with each size (size + 2*pad - k) // stride + 1 (rounded up in ceil mode)"
    fn = ""  # torch.nn.functional's name, without the `1d`/`2d`/`3d`

    def _window(self, a, rank):
        k = per_dim(a["k"], rank, "k")
        stride = per_dim(a["stride"], rank, "stride") if a["stride"] is not None else k
        pad = per_dim(a["pad"], rank, "pad")
        for i, axis in enumerate(AXES[rank]):
            for value, arg, least in ((k[i], "k", 1), (stride[i], "stride", 1), (pad[i], "pad", 0)):
                if value < least:
                    raise OpError("E0408", f"{self.name} `{arg}` must be at least {least} ({axis}), got {value}",
                                  arg=arg)
            if pad[i] * 2 > k[i]:
                raise OpError("E0408", f"{self.name} padding {pad[i]} exceeds half the window {k[i]}",
                              "PyTorch allows at most k // 2 padding for pools", arg="pad")
        return k, stride, pad

    def infer(self, a, shapes):
        need_rank(self, shapes[0], _SPATIAL)
        c, *spatial = shapes[0]
        k, s, p = self._window(a, len(spatial))
        return (c, *(spatial_out(size, ki, si, pi, 1, a["ceil_mode"], axis)
                     for size, ki, si, pi, axis in zip(spatial, k, s, p, AXES[len(spatial)])))

    def _kwargs(self, a, shapes):
        k, s, p = self._window(a, len(shapes[0]) - 1)
        return {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": a["ceil_mode"]}

    def _function(self, rank):
        import torch.nn.functional as F

        return getattr(F, f"{self.fn}{rank}d")


@register
class MaxPool(_WindowPool):
    name = "maxpool"
    doc = "Max pool over a window."
    args = dict(_WINDOW_ARGS)
    fn = "max_pool"
    examples = (
        Example({"k": 3, "stride": 2, "pad": 1}, ((4, 9, 9),)),
        Example({"k": 3, "stride": 2, "ceil_mode": True}, ((2, 8, 10),)),
        Example({"k": 2}, ((3, 9),)),
        Example({"k": 3, "stride": 2, "pad": 1}, ((2, 25),)),  # a 1-D ResNet's stem pool
        Example({"k": [1, 2, 2]}, ((2, 4, 6, 6),)),
    )

    def function(self, a, shapes, training, inplace):
        return self._function(len(shapes[0]) - 1), self._kwargs(a, shapes)


@register
class AvgPool(_WindowPool):
    name = "avgpool"
    doc = "Average pool over a window."
    args = {**_WINDOW_ARGS, "count_include_pad": Arg("bool", True)}
    fn = "avg_pool"
    examples = (
        Example({"k": 3, "stride": 1, "pad": 1, "count_include_pad": False}, ((4, 7, 7),)),
        Example({"k": 5, "stride": 3}, ((2, 17, 17),)),
        Example({"k": 2, "ceil_mode": True}, ((3, 9),)),
    )

    def function(self, a, shapes, training, inplace):
        return self._function(len(shapes[0]) - 1), {**self._kwargs(a, shapes),
                                                     "count_include_pad": a["count_include_pad"]}


class _AdaptivePool(Op):
    args = {"out": Arg("size", 1, "output size: 1, or one per spatial dimension: [h, w]")}
    shape_rule = "(C, *out)"
    fn = ""  # torch.nn.functional's name, without the `1d`/`2d`/`3d`

    def _out(self, a, shape):
        need_rank(self, shape, _SPATIAL)
        out = per_dim(a["out"], len(shape) - 1, "out")
        if min(out) < 1:
            raise OpError("E0408", f"{self.name} output size must be positive, got {list(out)}", arg="out")
        return out

    def infer(self, a, shapes):
        return (shapes[0][0], *self._out(a, shapes[0]))

    def function(self, a, shapes, training, inplace):
        import torch.nn.functional as F

        out = self._out(a, shapes[0])
        return getattr(F, f"{self.fn}{len(out)}d"), {"output_size": out}


@register
class AdaptiveAvgPool(_AdaptivePool):
    name = "adaptive_avgpool"
    doc = "Average pool to a fixed output size (global average pool with out: 1)."
    fn = "adaptive_avg_pool"
    examples = (Example({}, ((8, 7, 7),)), Example({"out": [2, 3]}, ((3, 8, 9),)),
                Example({}, ((4, 10),)), Example({}, ((2, 3, 5, 5),)))


@register
class AdaptiveMaxPool(_AdaptivePool):
    name = "adaptive_maxpool"
    doc = "Max pool to a fixed output size."
    fn = "adaptive_max_pool"
    examples = (Example({"out": 2}, ((4, 7, 7),)), Example({"out": 3}, ((2, 10),)),
                Example({}, ((2, 3, 4, 4),)))
