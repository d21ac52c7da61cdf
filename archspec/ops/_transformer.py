"""The torch side of the transformer ops (attention, class_token, pos_embedding),
imported only when one of them is built."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class SelfAttention(nn.MultiheadAttention):
    """nn.MultiheadAttention applied as self-attention to one (N, L, D) input.

    The parameters, their names (`in_proj_weight`, `in_proj_bias`, `out_proj.weight`,
    `out_proj.bias`) and their initialisation are nn.MultiheadAttention's, so
    torchvision ViT's `self_attention` loads key for key. The forward is its own:
    nn.MultiheadAttention's fast path (eval, no grad, CPU) and the CPU kernel of
    scaled_dot_product_attention are invisible to FlopCounterMode, so off CUDA the two
    attention products run as plain matmuls, which it counts."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0, bias: bool = True, **factory):
        super().__init__(dim, heads, dropout=dropout, bias=bias, batch_first=True, **factory)

    def forward(self, x):
        n, length, dim = x.shape
        heads = self.num_heads
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(n, length, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)  # 3 x (N, h, L, d)
        p = self.dropout if self.training else 0.0
        # On CUDA FlopCounterMode counts every scaled_dot_product_attention kernel.
        out = attend(q, k, v, p, fused=x.device.type == "cuda")
        # (L, N, D) in memory, returned as an (N, L, D) view: nn.MultiheadAttention's own
        # layout, so that a dropout after it draws its mask over the same elements.
        out = out.permute(2, 0, 1, 3).reshape(length, n, dim)
        return F.linear(out, self.out_proj.weight, self.out_proj.bias).transpose(0, 1)


def attend(q, k, v, p: float, fused: bool):
    """softmax(q k^T / sqrt(d)) v, dropout `p` on the weights; `fused`: the
    scaled_dot_product_attention kernel that nn.MultiheadAttention calls."""
    if fused:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    weights = (q * q.shape[-1] ** -0.5) @ k.transpose(-2, -1)
    weights = weights.softmax(dim=-1)
    if p > 0.0:
        weights = F.dropout(weights, p)
    return weights @ v


def prepend_token(x, token):
    """torchvision ViT: `torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)`."""
    return torch.cat([token.expand(x.shape[0], -1, -1), x], dim=1)


def class_token(dim: int, factory: dict) -> nn.Parameter:
    return nn.Parameter(torch.zeros(1, 1, dim, **factory))


class WindowAttention(nn.Module):
    """Multi-head self-attention within non-overlapping windows of an (N, H, W, C) map,
    the windows optionally shifted cyclically: torchvision's Swin `ShiftedWindowAttention`
    (the paper's W-MSA and SW-MSA). Attribute names are torchvision's, so its keys
    (`relative_position_bias_table`, `relative_position_index`, `qkv.*`, `proj.*`) load
    one for one and in the same order.

    The map is padded at the bottom and right to whole windows; a shift moves it up and
    left by `shift` (torch.roll) before partitioning, and a mask of -100 keeps tokens
    that came from different regions of the unshifted map from attending to each other.
    A window as large as the padded map is never shifted (torchvision's rule)."""

    def __init__(self, dim: int, heads: int, window: tuple, shift: tuple, attention_dropout: float = 0.0,
                 dropout: float = 0.0, bias: bool = True, **factory):
        super().__init__()
        self.window, self.shift, self.heads = tuple(window), tuple(shift), heads
        self.attention_dropout, self.dropout = attention_dropout, dropout
        wh, ww = self.window
        # The projections draw their defaults first, then the table, as torchvision's
        # constructor does; the state dict lists the table and index first all the same
        # (a module's own tensors come before its children's).
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias, **factory)
        self.proj = nn.Linear(dim, dim, bias=bias, **factory)
        # One learned bias per head for each of the (2wh-1)(2ww-1) relative offsets;
        # torchvision draws it in the constructor from N(0, 0.02^2) truncated to [-2, 2].
        self.relative_position_bias_table = nn.Parameter(
            nn.init.trunc_normal_(torch.zeros((2 * wh - 1) * (2 * ww - 1), heads, **factory), std=0.02))
        self.register_buffer("relative_position_index",
                             relative_position_index(wh, ww, factory.get("device")))

    def forward(self, x):
        n, height, width, dim = x.shape
        (wh, ww), heads = self.window, self.heads
        pad_h, pad_w = -height % wh, -width % ww
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        rows, cols = (height + pad_h) // wh, (width + pad_w) // ww
        shift = [s if w < size else 0 for s, w, size in zip(self.shift, self.window, x.shape[1:3])]
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        # (N, rows, wh, cols, ww, C) -> (N * windows, wh * ww, C): one sequence per window.
        tokens = wh * ww
        x = x.view(n, rows, wh, cols, ww, dim).permute(0, 1, 3, 2, 4, 5).reshape(-1, tokens, dim)
        q, k, v = self.qkv(x).reshape(x.shape[0], tokens, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
        scores = (q * (dim // heads) ** -0.5).matmul(k.transpose(-2, -1))
        bias = self.relative_position_bias_table[self.relative_position_index]
        scores = scores + bias.view(tokens, tokens, heads).permute(2, 0, 1).unsqueeze(0)
        if any(shift):
            mask = shifted_window_mask(x, rows * wh, cols * ww, self.window, shift)  # (windows, L, L)
            scores = (scores.view(n, rows * cols, heads, tokens, tokens) + mask.unsqueeze(1).unsqueeze(0)) \
                .view(-1, heads, tokens, tokens)
        weights = F.dropout(scores.softmax(dim=-1), self.attention_dropout, self.training)
        x = weights.matmul(v).transpose(1, 2).reshape(-1, tokens, dim)
        x = F.dropout(self.proj(x), self.dropout, self.training)
        # Windows back into the map, the shift undone, the padding cut off.
        x = x.view(n, rows, cols, wh, ww, dim).permute(0, 1, 3, 2, 4, 5).reshape(n, rows * wh, cols * ww, dim)
        if any(shift):
            x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
        return x[:, :height, :width, :].contiguous()


def relative_position_index(wh: int, ww: int, device=None):
    """For each pair of tokens (i, j) of a wh x ww window, flattened row-major, the row
    of the bias table for their offset: (dy + wh - 1) * (2ww - 1) + (dx + ww - 1)."""
    ys, xs = torch.meshgrid(torch.arange(wh, device=device), torch.arange(ww, device=device), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    dy = ys[:, None] - ys[None, :] + wh - 1
    dx = xs[:, None] - xs[None, :] + ww - 1
    return (dy * (2 * ww - 1) + dx).flatten()


def shifted_window_mask(x, height: int, width: int, window: tuple, shift: list):
    """(windows, L, L): 0 where two tokens of a shifted window come from the same region
    of the rolled map, -100 where not. The rolled map has three bands per axis: up to
    the last window, the last window less the shift, and the shift wrapped round."""
    region = x.new_zeros((height, width))
    bands = [((0, size - w), (size - w, size - s), (size - s, size)) for size, w, s in
             zip((height, width), window, shift)]
    for i, (top, bottom) in enumerate(bands[0]):
        for j, (left, right) in enumerate(bands[1]):
            region[top:bottom, left:right] = 3 * i + j
    wh, ww = window
    region = region.view(height // wh, wh, width // ww, ww).permute(0, 2, 1, 3).reshape(-1, wh * ww)
    differ = region.unsqueeze(1) - region.unsqueeze(2)
    return differ.masked_fill(differ != 0, -100.0)
