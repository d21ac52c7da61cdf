"""Shifted-window multi-head self-attention on a channels-last map, laid out as
torchvision's Swin Transformer (V1)."""
from __future__ import annotations

from .base import Arg, Example, Op, OpError, per_dim
from .registry import register


@register
class WindowAttention(Op):
    name = "window_attention"
    doc = ("Multi-head self-attention within `window` x `window` windows of an (H, W, C) "
           "channels-last map, with a learned relative position bias, the windows shifted "
           "cyclically by `shift` with a mask (Swin's W-MSA / SW-MSA): torchvision's "
           "ShiftedWindowAttention (keys relative_position_bias_table, relative_position_index, "
           "qkv.weight, qkv.bias, proj.weight, proj.bias). The map is padded at the bottom and "
           "right to whole windows; a window as large as the padded map is not shifted.")
    shape_rule = "the input's shape (H, W, C)"
    mac_rule = ("on the padded map of Hp x Wp tokens, windows of N = wh*ww tokens: projections "
                "Hp*Wp*C*3C + Hp*Wp*C*C, plus the two attention products per window, N*N*C each")
    args = {
        "heads": Arg("int", doc="attention heads; must divide the channels C"),
        "window": Arg("size", doc="window side: 7, or [height, width]"),
        "shift": Arg("size", 0, "cyclic shift up and left before partitioning (Swin's odd blocks: window // 2)"),
        "attention_dropout": Arg("number", 0.0, "dropout on the attention weights in training"),
        "dropout": Arg("number", 0.0, "dropout after the output projection in training"),
        "bias": Arg("bool", True, "biases of the qkv and output projections"),
    }
    output_saved_for_backward = False  # the last step is a copy out of the padded map
    examples = (
        Example({"heads": 2, "window": 2}, ((4, 4, 8),)),
        Example({"heads": 2, "window": 3, "shift": 1}, ((6, 6, 8),)),
        # padded to 6 x 4, shifted by one row only: the window spans the padded width
        Example({"heads": 1, "window": [3, 4], "shift": [1, 2], "dropout": 0.1,
                 "attention_dropout": 0.2, "bias": False}, ((5, 3, 4),)),
        Example({"heads": 3, "window": 4, "shift": 2}, ((3, 2, 6),)),
    )

    def _check(self, a, shape):
        if len(shape) != 3:
            raise OpError("E0407", f"op `window_attention` needs an (H, W, C) channels-last map, got {list(shape)}",
                          "put the channels last with a permute: {op: permute, dims: [0, 2, 3, 1]}")
        window, shift = per_dim(a["window"], 2, "window"), per_dim(a["shift"], 2, "shift")
        if min(window) < 1:
            raise OpError("E0408", f"window_attention `window` must be positive, got {list(window)}", arg="window")
        if any(not 0 <= s < w for s, w in zip(shift, window)):
            raise OpError("E0408", f"window_attention `shift` {list(shift)} must lie in [0, window) "
                          f"for window {list(window)}", arg="shift")
        if a["heads"] < 1 or shape[2] % a["heads"]:
            raise OpError("E0408", f"window_attention over {shape[2]} channels cannot have {a['heads']} heads",
                          "heads must be positive and divide the channels (the last dimension)", arg="heads")
        for key in ("dropout", "attention_dropout"):
            if not 0.0 <= a[key] <= 1.0:
                raise OpError("E0408", f"window_attention `{key}` must lie in [0, 1], got {a[key]}", arg=key)
        return window, shift

    def infer(self, a, shapes):
        self._check(a, shapes[0])
        return shapes[0]

    def params(self, a, shapes, out):
        (wh, ww), _ = self._check(a, shapes[0])
        dim = shapes[0][2]
        return 4 * dim * dim + (4 * dim if a["bias"] else 0) + (2 * wh - 1) * (2 * ww - 1) * a["heads"]

    def buffers(self, a, shapes, out):
        (wh, ww), _ = self._check(a, shapes[0])
        return 0, (wh * ww) ** 2  # relative_position_index, int64

    def macs(self, a, shapes, out):
        (wh, ww), _ = self._check(a, shapes[0])
        height, width, dim = shapes[0]
        tokens = -(-height // wh) * wh * -(-width // ww) * ww  # the padded map
        # heads x (N x N x C/heads) per product and window: the head count cancels.
        return tokens * dim * 3 * dim + tokens * dim * dim + 2 * tokens * wh * ww * dim

    def module(self, a, shapes, factory):
        cls, args, kwargs = self.module_source(a, shapes)
        return cls(*args, **kwargs, **factory)

    def module_source(self, a, shapes):
        from ._transformer import WindowAttention

        window, shift = self._check(a, shapes[0])
        return WindowAttention, (shapes[0][2], a["heads"], window, shift), {
            "attention_dropout": a["attention_dropout"], "dropout": a["dropout"], "bias": a["bias"]}
