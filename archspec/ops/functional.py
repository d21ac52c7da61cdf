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
