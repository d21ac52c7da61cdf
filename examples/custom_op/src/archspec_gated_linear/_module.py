"""The PyTorch module behind the `gated_linear` op (imported only when building)."""
import torch.nn as nn
import torch.nn.functional as F


class GatedLinearModule(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.proj = nn.Linear(in_features, 2 * out_features, bias=bias, device=device, dtype=dtype)

    def forward(self, x):
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.silu(gate)
