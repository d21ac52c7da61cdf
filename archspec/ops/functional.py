"""The torch side of ops that need more than one PyTorch call: functions the generated
forward calls and module classes the builder places.

Imported only by ops' `module` and `function`, never at archspec's import: validating
a spec does not import torch. Each follows the torchvision code it names, so that
outputs (and random draws) are bitwise the same.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """torchvision.models.shufflenetv2.channel_shuffle, for channels-first input of
    any rank (the channels, dimension 1, split into `groups` and interleaved).
    `reshape` where torchvision has `view`: the same view for contiguous input, and a
    copy rather than an error for input that is not (after a permute)."""
    batch, channels, *rest = x.shape
    x = x.reshape(batch, groups, channels // groups, *rest)
    x = torch.transpose(x, 1, 2).contiguous()
    return x.view(batch, channels, *rest)


def reshape_batched(x: torch.Tensor, shape: tuple) -> torch.Tensor:
    """`x.reshape(n, *shape)` with the batch size read from `x` (torchvision's ViT
    writes `x.reshape(n, hidden_dim, n_h * n_w)`): a view where the memory allows."""
    return x.reshape(x.shape[0], *shape)


def slice_along(x: torch.Tensor, dim: int, start: int, end: int, step: int) -> torch.Tensor:
    """`x[:, start:end:step]` along batched dimension `dim` (non-negative bounds): a view."""
    return x[(slice(None),) * dim + (slice(start, end, step),)]


def stochastic_depth(x: torch.Tensor, p: float, mode: str, inplace: bool = False) -> torch.Tensor:
    """torchvision.ops.stochastic_depth in training mode (eval mode never calls it):
    the same tensor of noise drawn by the same calls, so one seed gives one result."""
    survival_rate = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device)
    noise = noise.bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x.mul_(noise) if inplace else x * noise


def expand_over_batch(x: torch.Tensor, parameter: torch.Tensor) -> torch.Tensor:
    """A (1, ...) parameter repeated for each sample of `x`'s batch, in new memory:
    a view (torchvision's `class_token.expand(n, -1, -1)`) would let an op that works
    in place after it write into the parameter."""
    return parameter.expand(x.shape[0], *parameter.shape[1:]).clone()


class LayerNorm2d(nn.LayerNorm):
    """torchvision.models.convnext.LayerNorm2d: layer norm over the channels of a
    channels-first tensor. For (N, C, H, W) the permutations are torchvision's own;
    other ranks move the channels last and back the same way."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = x.ndim - 1
        x = x.permute(0, *range(2, x.ndim), 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, last, *range(1, last))
        return x


def scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """`x * factor`, a Python number, as attention code writes `q * self.scale`."""
    return x * factor


def scale_(x: torch.Tensor, factor: float) -> torch.Tensor:
    """The same in x's memory (nothing else reads it)."""
    return x.mul_(factor)
