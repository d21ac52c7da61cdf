"""The torch side of the detection-head ops (dfl, decode_boxes), imported only when one
of them is built. Each follows Ultralytics' code line by line (ultralytics.nn.modules.block.DFL,
ultralytics.utils.tal.make_anchors and dist2bbox, Detect._get_decode_boxes), so outputs
are bitwise the same."""
from __future__ import annotations

import torch
import torch.nn as nn


class DistributionIntegral(nn.Module):
    """Ultralytics' DFL: `conv` is a bias-free 1x1 convolution from `bins` channels to
    one whose weight is fixed at 0, 1, ..., bins-1 (requires_grad False, but a parameter
    in the state dict, `dfl.conv.weight`), applied to the softmax over each side's bins."""

    def __init__(self, bins: int = 16, sides: int = 4, device=None, dtype=None):
        super().__init__()
        self.conv = nn.Conv2d(bins, 1, 1, bias=False, device=device, dtype=dtype).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(bins, dtype=torch.float).view(1, bins, 1, 1))
        self.bins, self.sides = bins, sides

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, a = x.shape  # batch, channels, anchors
        x = x.reshape(b, self.sides, self.bins, a).transpose(2, 1).softmax(1)
        return self.conv(x).view(b, self.sides, a)

    def extra_repr(self) -> str:
        return f"bins={self.bins}, sides={self.sides}"


def anchor_points(levels, strides, offset: float):
    """make_anchors: cell centres of every level's grid, in level order and row by row,
    as (1, 2, A) points in grid units, and the stride of each as (1, A)."""
    points, stride_tensor = [], []
    first = levels[0]
    for level, stride in zip(levels, strides):
        h, w = level.shape[2:]
        sx = torch.arange(w, device=first.device).type_as(first) + offset  # shift x
        sy = torch.arange(h, device=first.device).type_as(first) + offset  # shift y
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride_tensor.append(first.new_full((h * w, 1), stride, dtype=first.dtype))
    return torch.cat(points).transpose(0, 1).unsqueeze(0), torch.cat(stride_tensor).transpose(0, 1)


def decode_boxes(distance: torch.Tensor, *levels: torch.Tensor, strides: tuple, offset: float = 0.5,
                 xywh: bool = True) -> torch.Tensor:
    """Detect._get_decode_boxes after the DFL: dist2bbox(distance, anchors, xywh, dim=1)
    times the strides; the anchors are laid on the levels' sizes at this call."""
    anchors, stride_tensor = anchor_points(levels, strides, offset)
    lt, rb = distance.chunk(2, 1)
    x1y1 = anchors - lt
    x2y2 = anchors + rb
    if xywh:
        c_xy = (x1y1 + x2y2) / 2
        wh = x2y2 - x1y1
        boxes = torch.cat([c_xy, wh], 1)
    else:
        boxes = torch.cat((x1y1, x2y2), 1)
    return boxes * stride_tensor
