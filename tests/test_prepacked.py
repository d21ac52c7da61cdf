"""archspec.fuse's prepacked convolutions: a 2-D convolution that keeps its weight in
oneDNN's layout between calls must compute what nn.Conv2d computes, with the same
state dict, and fall back to nn.Conv2d wherever the private operators do not apply.
The oracle throughout is the plain convolution (F.conv2d / nn.Conv2d) or the same
network fused with prepack=False."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import archspec
from archspec import prepacked
from archspec.prepacked import PrepackedConv2d
from conftest import SPECS

needs_onednn = pytest.mark.skipif(not prepacked.available(), reason="this torch has no oneDNN prepacking")


def conv_pair(**kwargs):
    """A plain convolution with random weights and a PrepackedConv2d sharing them."""
    torch.manual_seed(0)
    conv = nn.Conv2d(**{"in_channels": 4, "out_channels": 6, "kernel_size": 3, **kwargs}).eval()
    return conv, PrepackedConv2d.of(conv)


@needs_onednn
@pytest.mark.parametrize("kwargs", [
    {}, {"stride": 2, "padding": 1}, {"padding": (0, 2), "dilation": 2}, {"groups": 2, "bias": False},
    {"in_channels": 6, "out_channels": 6, "groups": 6, "padding": 1},  # depthwise
])
def test_prepacked_convolution_computes_what_conv2d_does(kwargs):
    conv, packed = conv_pair(**kwargs)
    x = torch.randn(2, conv.in_channels, 11, 9)
    with torch.no_grad():
        got = packed(x)
        assert packed._packed is not None, "the prepacked path did not run"
        torch.testing.assert_close(got, conv(x), rtol=1e-5, atol=1e-5)
        # Another shape repacks for it, and still agrees.
        y = torch.randn(3, conv.in_channels, 7, 12)
        torch.testing.assert_close(packed(y), conv(y), rtol=1e-5, atol=1e-5)
        assert packed._packed[0][0] == tuple(y.shape)


@needs_onednn
def test_shares_the_parameters_so_the_state_dict_is_unchanged():
    conv, packed = conv_pair(bias=True)
    assert packed.weight is conv.weight and packed.bias is conv.bias
    assert list(packed.state_dict()) == ["weight", "bias"]


@needs_onednn
def test_a_changed_weight_is_packed_again():
    conv, packed = conv_pair()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        packed(x)
        conv.weight.mul_(-2.0)  # in place: the version counter moves
        torch.testing.assert_close(packed(x), conv(x), rtol=1e-5, atol=1e-5)
        packed.load_state_dict({"weight": torch.randn(6, 4, 3, 3), "bias": torch.randn(6)})
        expected = F.conv2d(x, packed.weight, packed.bias)
        torch.testing.assert_close(packed(x), expected, rtol=1e-5, atol=1e-5)


@needs_onednn
@pytest.mark.parametrize("case", ["autograd", "float64", "unbatched", "padding_mode", "same_padding"])
def test_falls_back_to_conv2d_where_the_operators_do_not_apply(case):
    kwargs = {"padding_mode": "reflect", "padding": 1} if case == "padding_mode" else \
        {"padding": "same"} if case == "same_padding" else {}
    conv, packed = conv_pair(**kwargs)
    x = torch.randn(2, 4, 8, 8)
    if case == "float64":
        conv.double()
        x = x.double()
    if case == "unbatched":
        x = x[0]
    if case == "autograd":
        x.requires_grad_(True)
        got = packed(x)
        got.sum().backward()  # the oneDNN operators have no backward: only the plain path gives one
        assert x.grad is not None
    else:
        with torch.no_grad():
            got = packed(x)
    assert packed._packed is None
    torch.testing.assert_close(got, conv(x), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_copies_drop_the_packed_weight_and_make_it_again():
    conv, packed = conv_pair()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        packed(x)
        twin = copy.deepcopy(packed)
        assert twin._packed is None
        torch.testing.assert_close(twin(x), conv(x), rtol=1e-5, atol=1e-5)


@needs_onednn
def test_fuse_prepacks_every_2d_convolution_and_keeps_the_values():
    # torchvision's resnet18 has 20 Conv2d: the stem, 16 in its 8 basic blocks and 3 projections.
    net = archspec.build(SPECS / "resnet18.yaml", input_shape=(3, 32, 32)).eval()
    fast, plain = archspec.fuse(net), archspec.fuse(net, prepack=False)
    assert fast.fusion.prepacked == 20 and plain.fusion.prepacked == 0
    assert sum(isinstance(m, PrepackedConv2d) for m in fast.modules()) == 20
    assert not any(isinstance(m, PrepackedConv2d) for m in plain.modules())
    assert fast.fusion.describe().endswith("; 20 convolutions prepacked for oneDNN")
    assert list(fast.state_dict()) == list(plain.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(fast.state_dict().values(), plain.state_dict().values()))
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    assert fast.conv1._packed is not None


def test_without_onednn_fuse_keeps_plain_convolutions(monkeypatch):
    monkeypatch.setattr(prepacked, "available", lambda: False)
    net = archspec.build(SPECS / "resnet18.yaml", input_shape=(3, 32, 32)).eval()
    fused = archspec.fuse(net)
    assert fused.fusion.prepacked == 0 and "prepacked" not in fused.fusion.describe()
    assert not any(isinstance(m, PrepackedConv2d) for m in fused.modules())


def test_available_is_a_checked_answer():
    # On a build with oneDNN (every x86 and arm64 wheel of torch) the detection call must
    # succeed; if it failed there, fuse would silently lose its fast path.
    assert prepacked.available() == torch.backends.mkldnn.is_available()
