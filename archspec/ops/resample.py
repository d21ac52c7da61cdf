"""Resizing over the spatial dimensions (1-D, 2-D, 3-D) with F.interpolate."""
from __future__ import annotations

from .base import AXES, Arg, Example, Op, OpError, need_rank, per_dim
from .registry import register

# mode -> the spatial ranks F.interpolate accepts it for
_MODES = {"nearest": (1, 2, 3), "linear": (1,), "bilinear": (2,), "bicubic": (2,), "trilinear": (3,)}
_BY_RANK = {1: "linear", 2: "bilinear", 3: "trilinear"}


@register
class Upsample(Op):
    name = "upsample"
    doc = ("Resize the spatial dimensions with F.interpolate, by a `scale` factor, to a "
           "`size`, or to the spatial size of a second input (`from: [x, ref]`; ref only "
           "lends its size), for (C, L), (C, H, W) and (C, T, H, W).")
    shape_rule = ("(C, *spatial) with each size int(size * scale), or `size`, or the second "
                  "input's spatial sizes")
    args = {
        "scale": Arg("factor", None, "factor: 2 doubles every spatial size; [1, 2, 2] doubles H and W of a "
                                     "(C, T, H, W) input"),
        "size": Arg("size", None, "output spatial size: 32, or one per spatial dimension: [32, 48]"),
        "mode": Arg("choice", "nearest", "nearest (any rank), linear (C, L), bilinear or bicubic "
                    "(C, H, W), trilinear (C, T, H, W)", choices=tuple(_MODES)),
        "align_corners": Arg("bool", None, "F.interpolate's, for the linear and cubic modes only"),
    }
    inputs = (1, 2)
    output_saved_for_backward = False  # interpolation's backward needs only sizes
    examples = (
        Example({"scale": 2}, ((3, 4, 5),)),  # smp's UNet decoder, Ultralytics' nn.Upsample
        Example({"mode": "bilinear", "align_corners": False}, ((4, 3, 3), (2, 8, 7))),  # torchvision seg heads
        Example({"scale": 1.5, "mode": "bicubic", "align_corners": True}, ((2, 5, 7),)),
        Example({"size": [3, 6, 6], "mode": "trilinear"}, ((2, 2, 3, 3),)),
        Example({"scale": 2.5, "mode": "linear"}, ((3, 7),)),
        Example({"scale": [1, 2, 2]}, ((2, 2, 3, 3),)),
        Example({"size": 4}, ((2, 6, 6),)),
    )

    def _size(self, a, shapes):
        """The output's spatial size, and F.interpolate's keyword arguments."""
        x = shapes[0]
        need_rank(self, x, (2, 3, 4))
        rank = len(x) - 1
        if rank not in _MODES[a["mode"]]:
            raise OpError("E0407", f"upsample mode {a['mode']} needs a {_layout(_MODES[a['mode']])} "
                          f"input, got {list(x)}", f"for this input use mode nearest or {_BY_RANK[rank]}",
                          arg="mode")
        if a["align_corners"] is not None and a["mode"] == "nearest":
            raise OpError("E0408", "`align_corners` applies only to the linear and cubic modes",
                          "leave it out for mode nearest", arg="align_corners")
        given = [what for what, present in (("scale", a["scale"] is not None), ("size", a["size"] is not None),
                                            ("a second input", len(shapes) == 2)) if present]
        if len(given) != 1:
            if not given:
                raise OpError("E0304", "op `upsample` needs `scale`, `size` or a second input to take "
                              "the size of", "`scale: 2`, or `from: [x, reference]`")
            raise OpError("E0408", f"upsample takes one of `scale`, `size` or a second input, got "
                          f"{' and '.join(given)}", arg="scale" if a["scale"] is not None else "size")
        kwargs = {"mode": a["mode"]}
        if a["align_corners"] is not None:
            kwargs["align_corners"] = a["align_corners"]
        if a["scale"] is not None:
            factors = per_dim(a["scale"], rank, "scale") if isinstance(a["scale"], tuple) else (a["scale"],) * rank
            if min(factors) <= 0:
                raise OpError("E0408", f"upsample `scale` must be positive, got {a['scale']}", arg="scale")
            # F.interpolate's size for a factor: the product truncated, in double precision.
            size = tuple(int(s * f) for s, f in zip(x[1:], factors))
            kwargs["scale_factor"] = a["scale"]
        elif a["size"] is not None:
            size = per_dim(a["size"], rank, "size")
            kwargs["size"] = size
        else:
            ref = shapes[1]
            if len(ref) != len(x):
                raise OpError("E0402", f"upsample to the size of a rank-{len(ref)} input {list(ref)} from "
                              f"a rank-{len(x)} one {list(x)}", "the reference needs as many spatial "
                              "dimensions as the input")
            size = tuple(ref[1:])  # the forward reads it off the reference, so it may vary
        for length, axis in zip(size, AXES[rank]):
            if length < 1:
                raise OpError("E0403", f"upsample output {axis} would be {length} (input {list(x)})",
                              arg="scale" if a["scale"] is not None else "size")
        return size, kwargs

    def infer(self, a, shapes):
        return (shapes[0][0], *self._size(a, shapes)[0])

    def function(self, a, shapes, training, inplace):
        import torch.nn.functional as F

        kwargs = self._size(a, shapes)[1]
        return (resize_like, kwargs) if len(shapes) == 2 else (F.interpolate, kwargs)


def resize_like(x, reference, **kwargs):
    """F.interpolate to the spatial size of `reference`, read at run time (so an
    exported model keeps a dynamic height and width)."""
    import torch.nn.functional as F

    return F.interpolate(x, size=reference.shape[2:], **kwargs)


def _layout(ranks) -> str:
    return " or ".join({1: "(C, L)", 2: "(C, H, W)", 3: "(C, T, H, W)"}[r] for r in ranks)
