"""Resampling and transposed-convolution ops against the PyTorch and
torchvision code they imitate: the same weights give the same outputs and gradients,
and MACs are what FlopCounterMode counts."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.segmentation.deeplabv3 import ASPPPooling

import archspec


def build(text, **kwargs):
    return archspec.build(archspec.loads(text), **kwargs)


def summary(text):
    return archspec.summarize(archspec.loads(text))


def flop_counter_macs(fn, *args):
    with FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops() // 2


def same_grads(ours, theirs, atol=1e-6):
    return all(torch.allclose(a.grad, b.grad, atol=atol) for a, b in zip(ours, theirs))


# -- upsample --------------------------------------------------------------------------

def test_upsample_to_a_reference_is_torchvision_aspp_pooling():
    # DeepLabV3's ASPPPooling: global pool, 1x1 conv, BN, ReLU, then
    # F.interpolate(x, size=input's, mode="bilinear", align_corners=False).
    theirs = ASPPPooling(8, 4)
    net = build("""
input: [8, 9, 11]
graph:
  pooling: [{op: adaptive_avgpool, out: 1}, {op: conv, out: 4, k: 1, bias: false}, {op: bn}, {op: relu}]
  upsample: {op: upsample, mode: bilinear, align_corners: false, from: [pooling, input]}
""")
    keys = [f"pooling.{k}" for k in theirs.state_dict()]
    assert list(net.state_dict()) == keys
    net.load_state_dict(dict(zip(keys, theirs.state_dict().values())), strict=True)
    x = torch.randn(2, 8, 9, 11)
    for training in (True, False):
        net.train(training)
        theirs.train(training)
        out, ref = net(x), theirs(x)
        assert out.shape == (2, 4, 9, 11) and (out - ref).abs().max().item() <= 1e-6
        out.sum().backward()
        ref.sum().backward()
        assert same_grads(list(net.parameters()), list(theirs.parameters()))
        net.zero_grad()
        theirs.zero_grad()


@pytest.mark.parametrize("args, shape, reference", [
    # Ultralytics YOLO's neck: nn.Upsample(None, 2, "nearest")
    ("scale: 2", (3, 5, 7), nn.Upsample(None, 2, "nearest")),
    # segmentation_models_pytorch's UNet decoder: F.interpolate(x, scale_factor=2.0, mode="nearest")
    ("scale: 2", (3, 5, 7), lambda x: F.interpolate(x, scale_factor=2.0, mode="nearest")),
    ("scale: 2, mode: linear", (3, 6), nn.Upsample(scale_factor=2, mode="linear")),
    ("scale: 2, mode: trilinear, align_corners: true", (2, 3, 4, 5),
     nn.Upsample(scale_factor=2, mode="trilinear", align_corners=True)),
    ("scale: 1.5, mode: bicubic", (2, 5, 7), nn.Upsample(scale_factor=1.5, mode="bicubic")),
    ("scale: 0.5", (2, 9, 8), nn.Upsample(scale_factor=0.5)),
    ("size: [4, 9, 3], mode: nearest", (2, 2, 5, 6), nn.Upsample(size=(4, 9, 3))),
])
def test_upsample_is_interpolate(args, shape, reference):
    net = build(f"input: {list(shape)}\ngraph:\n  up: {{op: upsample, {args}}}\n")
    xa = torch.randn(2, *shape, requires_grad=True)
    xb = xa.detach().clone().requires_grad_()
    out, ref = net(xa), reference(xb)
    assert out.shape == ref.shape and (out - ref).abs().max().item() <= 1e-6
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)


@pytest.mark.parametrize("node, code", [
    ("{op: upsample}", "E0304"),                                       # no size given
    ("{op: upsample, scale: 2, size: 4}", "E0408"),                    # two sizes given
    ("{op: upsample, scale: 2, mode: trilinear}", "E0407"),            # mode for another rank
    ("{op: upsample, scale: 2, align_corners: false}", "E0408"),       # nearest has no corners
    ("{op: upsample, scale: 0.1}", "E0403"),                           # int(6 * 0.1) = 0
    ("{op: upsample, from: [input, input, input]}", "E0305"),          # one or two inputs
])
def test_upsample_refuses(node, code):
    with pytest.raises(archspec.SpecError) as err:
        archspec.summarize(archspec.loads(f"input: [2, 6, 6]\ngraph:\n  up: {node}\n"))
    assert err.value.diagnostics[0].code == code


# -- conv_transpose --------------------------------------------------------------------

@pytest.mark.parametrize("args, shape, reference", [
    ("out: 4, k: 2, stride: 2", (6, 5, 7), lambda: nn.ConvTranspose2d(6, 4, 2, 2)),
    ("out: 6, k: 3, stride: 2, pad: 1, output_pad: 1, groups: 2, bias: false", (4, 4, 5),
     lambda: nn.ConvTranspose2d(4, 6, 3, 2, 1, 1, groups=2, bias=False)),
    ("out: 3, k: 4, stride: 3, pad: 2, dilation: 2", (2, 6),
     lambda: nn.ConvTranspose1d(2, 3, 4, 3, 2, dilation=2)),
    ("out: 2, k: [1, 2, 2], stride: [1, 2, 2]", (3, 2, 3, 3),
     lambda: nn.ConvTranspose3d(3, 2, (1, 2, 2), (1, 2, 2))),
])
def test_conv_transpose_is_torchs(args, shape, reference):
    theirs = reference()
    net = build(f"input: {list(shape)}\ngraph:\n  up: {{op: conv_transpose, {args}}}\n")
    assert list(net.state_dict()) == [f"up.{k}" for k in theirs.state_dict()]
    net.load_state_dict({f"up.{k}": v for k, v in theirs.state_dict().items()}, strict=True)
    x = torch.randn(2, *shape)
    out, ref = net(x), theirs(x)
    assert out.shape == ref.shape and (out - ref).abs().max().item() <= 1e-6
    out.sum().backward()
    ref.sum().backward()
    assert same_grads(list(net.parameters()), list(theirs.parameters()), atol=1e-5)
    assert summary(f"input: {list(shape)}\ngraph:\n  up: {{op: conv_transpose, {args}}}\n").total_params == \
        sum(p.numel() for p in theirs.parameters())


def test_conv_transpose_macs_are_flop_counters_for_a_unet_up_convolution():
    # The U-Net paper's first up-convolution: 1024 -> 512 channels, 2x2, stride 2, on 28x28.
    with torch.device("meta"):
        counted = flop_counter_macs(nn.ConvTranspose2d(1024, 512, 2, 2), torch.empty(1, 1024, 28, 28))
    ours = summary("input: [1024, 28, 28]\ngraph:\n  up: {op: conv_transpose, out: 512, k: 2, stride: 2}\n")
    # FlopCounterMode counts a transposed conv over the input's positions: 1024 x 512 x 4 x 28 x 28.
    assert ours.total_macs == counted == 1024 * 512 * 4 * 28 * 28
    assert ours.outputs["output"] == (1, 512, 56, 56)
