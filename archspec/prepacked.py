"""A 2-D convolution that keeps its weight in oneDNN's own layout between calls, for
`archspec.fuse`.

Why: on the CPU, eager PyTorch hands oneDNN the weight in PyTorch's layout, and oneDNN
reorders it into the blocked layout its kernels read on every call. At batch 1 that
reorder is a large part of the work (ResNet-50's 25 M weights are copied once per
image). PyTorch's inductor avoids it by reordering each weight once (with
`torch._inductor.config.freezing`); eagerly the same is reachable only through the
private operators `torch.ops.mkldnn._reorder_convolution_weight` and
`torch.ops.mkldnn._convolution_pointwise`, checked with torch 2.14.1. Being private,
they are feature-detected once, by a small call compared with `F.conv2d`; without them
the convolution is a plain `nn.Conv2d`.

The blocked layout oneDNN picks depends on the input's shape, so the packed copy is
made on the first call and kept for the last input shape seen: one extra copy of each
weight in memory, never more. The module's parameters stay the ordinary `weight` and
`bias`, so the state dict is unchanged; a change to the weight (its version counter or
storage) makes a fresh copy. Off the CPU, in another dtype, under autograd, or while
tracing, scripting, compiling or exporting, it computes as `nn.Conv2d` does.
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn
import torch.nn.functional as F


class PrepackedConv2d(nn.Conv2d):
    """`nn.Conv2d` computing with a oneDNN-prepacked copy of its weight where it can.
    Made by `PrepackedConv2d.of(conv)`, which shares `conv`'s parameters."""

    @classmethod
    def of(cls, conv: nn.Conv2d) -> PrepackedConv2d:
        packed = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode, device="meta")
        packed.weight, packed.bias = conv.weight, conv.bias  # the same Parameters: shared weights stay shared
        packed.train(conv.training)
        return packed

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._packed = None  # (key, packed weight) for the last input shape

    def forward(self, x):
        if not self._can_pack(x):
            return super().forward(x)
        args = (list(self.padding), list(self.stride), list(self.dilation), self.groups)
        weight = self.weight
        key = (tuple(x.shape), weight.data_ptr(), weight._version)
        cached = self._packed
        if cached is None or cached[0] != key:
            # Any packed copy of the current weight computes the right values, so threads
            # sharing the module may replace it under one another safely.
            cached = self._packed = (key, torch.ops.mkldnn._reorder_convolution_weight(
                weight.detach(), *args, list(x.shape)))
        return torch.ops.mkldnn._convolution_pointwise(x, cached[1], self.bias, *args, "none", [], "")

    def _can_pack(self, x) -> bool:
        weight = self.weight
        return (x.dim() == 4 and x.device.type == "cpu" and x.dtype == torch.float32
                and weight.device.type == "cpu" and weight.dtype == torch.float32
                and self.padding_mode == "zeros" and not isinstance(self.padding, str)
                and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad))
                and not (torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling())
                and type(x) is torch.Tensor and available())

    def __getstate__(self):
        # The packed copy is an opaque oneDNN tensor, which neither pickle nor deepcopy
        # takes; it is remade on the next call.
        state = self.__dict__.copy()
        state["_packed"] = None
        return state


@functools.cache
def available() -> bool:
    """oneDNN is built in, and a prepacked convolution computes what `F.conv2d` does."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        gen = torch.Generator().manual_seed(0)
        x, w, b = torch.randn(2, 4, 7, 6, generator=gen), torch.randn(6, 2, 3, 3, generator=gen), torch.randn(6)
        args = ([1, 0], [2, 1], [1, 1], 2)
        with torch.no_grad():
            packed = torch.ops.mkldnn._reorder_convolution_weight(w, *args, list(x.shape))
            got = torch.ops.mkldnn._convolution_pointwise(x, packed, b, *args, "none", [], "")
        return bool(torch.allclose(got, F.conv2d(x, w, b, args[1], args[0], args[2], args[3]), atol=1e-5))
    except (AttributeError, RuntimeError, TypeError):  # an operator absent, or of another schema
        return False


def prepack(module):
    """`module` with each plain `nn.Conv2d` in it (itself included) made a
    `PrepackedConv2d` sharing its parameters; anything but a module is returned as it is."""
    if not isinstance(module, nn.Module):
        return module
    if type(module) is nn.Conv2d:
        return PrepackedConv2d.of(module)
    for name, child in module.named_children():
        swapped = prepack(child)
        if swapped is not child:
            setattr(module, name, swapped)
    return module
