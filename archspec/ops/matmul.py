"""Matrix products of two inputs (torch.matmul): attention written out op by op, as
Ultralytics' YOLO11 `Attention` computes it (q^T k, then v weights^T)."""
from __future__ import annotations

import math

from .base import Example, Op, OpError
from .registry import register


def _show(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


@register
class MatMul(Op):
    name = "matmul"
    doc = ("Matrix product of two inputs, torch.matmul(a, b): the last two dimensions of each sample "
           "are the matrices, (n, k) @ (k, m); dimensions before them are batch dimensions that "
           "broadcast, as PyTorch does (attention heads). Transpose with `permute` first.")
    shape_rule = "(*batch, n, m): the broadcast of the leading dimensions, then a's rows and b's columns"
    mac_rule = "n x k x m for each matrix of the broadcast batch"
    inputs = 2
    output_saved_for_backward = False  # its backward reads the inputs
    examples = (
        Example({}, ((2, 5, 3), (2, 3, 4))),      # two heads
        Example({}, ((6, 4), (4, 5))),            # one matrix per sample
        Example({}, ((1, 5, 3), (4, 3, 2))),      # broadcast over heads
        Example({}, ((2, 3, 4, 7), (2, 3, 7, 1))),
    )

    def _shapes(self, shapes):
        a, b = shapes
        if len(a) < 2 or len(b) < 2 or len(a) != len(b):
            raise OpError("E0407", f"matmul needs two inputs of one rank, 2 or more per sample (matrices, "
                          f"maybe behind batch dimensions), got {_show(a)} and {_show(b)}",
                          "reshape a vector into a (1, k) or (k, 1) matrix")
        if a[-1] != b[-2]:
            raise OpError("E0401", f"matmul inner sizes differ: {_show(a)} @ {_show(b)} multiplies "
                          f"(.., {a[-2]}, {a[-1]}) by (.., {b[-2]}, {b[-1]})",
                          "a's last dimension must be b's second last; permute one of them")
        batch = []
        for x, y in zip(a[:-2], b[:-2]):
            if x != y and 1 not in (x, y):
                raise OpError("E0401", f"matmul batch dimensions do not broadcast: {_show(a)} and {_show(b)}",
                              "along each batch dimension the sizes must agree or be 1")
            batch.append(max(x, y) if 1 in (x, y) else x)
        return tuple(batch), a[-2], a[-1], b[-1]

    def infer(self, a, shapes):
        batch, n, _, m = self._shapes(shapes)
        return (*batch, n, m)

    def macs(self, a, shapes, out):
        batch, n, k, m = self._shapes(shapes)
        return math.prod(batch) * n * k * m

    def function(self, a, shapes, training, inplace):
        import torch

        return torch.matmul, {}
