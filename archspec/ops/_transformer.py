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


def pos_embedding(length: int, dim: int, factory: dict) -> nn.Parameter:
    # torchvision's Encoder: `torch.empty(1, seq_length, hidden_dim).normal_(std=0.02)`
    return nn.Parameter(torch.empty(1, length, dim, **factory).normal_(std=0.02))
