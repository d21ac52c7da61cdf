"""Token-sequence, resampling and transposed-convolution ops against the PyTorch and
torchvision code they imitate: the same weights give the same outputs and gradients,
and MACs are what FlopCounterMode counts."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.segmentation.deeplabv3 import ASPPPooling
from torchvision.models.vision_transformer import Encoder, EncoderBlock

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


# -- attention -------------------------------------------------------------------

def attention_pair(length, dim, heads, bias=True):
    """torchvision's ViT encoder block and a one-node spec holding its self-attention."""
    block = EncoderBlock(heads, dim, 4 * dim, dropout=0.0, attention_dropout=0.0)
    if not bias:
        block.self_attention = nn.MultiheadAttention(dim, heads, bias=False, batch_first=True)
    net = build(f"input: [{length}, {dim}]\ngraph:\n"
                f"  self_attention: {{op: attention, heads: {heads}, bias: {str(bias).lower()}}}\n")
    return block, net


@pytest.mark.parametrize("bias", [True, False])
def test_attention_is_torchvision_vit_self_attention(bias):
    block, net = attention_pair(10, 32, 4, bias)
    theirs = block.self_attention
    assert list(net.state_dict()) == [f"self_attention.{k}" for k in theirs.state_dict()]
    net.load_state_dict({f"self_attention.{k}": v for k, v in theirs.state_dict().items()}, strict=True)
    x = torch.randn(3, 10, 32)

    def reference(x):
        return theirs(x, x, x, need_weights=False)[0]  # as EncoderBlock calls it

    # Eval under no_grad is where nn.MultiheadAttention takes its fused fast path.
    net.eval()
    theirs.eval()
    with torch.no_grad():
        assert (net(x) - reference(x)).abs().max().item() <= 1e-6
    for training in (False, True):
        net.train(training)
        theirs.train(training)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        out, ref = net(xa), reference(xb)
        assert (out - ref).abs().max().item() <= 1e-6
        grad = torch.randn_like(out)
        out.backward(grad)
        ref.backward(grad)
        assert torch.allclose(xa.grad, xb.grad, atol=1e-6)
        assert same_grads(list(net.parameters()), list(theirs.parameters()))


def test_attention_dropout_acts_in_training_only():
    net = build("input: [6, 8]\ngraph:\n  attn: {op: attention, heads: 2, dropout: 0.5}\n")
    x = torch.randn(2, 6, 8)
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x), net(x))
    net.train()
    out = net(x)
    assert not torch.allclose(out, net(x))
    out.sum().backward()
    assert net.attn.in_proj_weight.grad.abs().sum() > 0


def test_attention_fused_and_plain_paths_agree():
    # The fused kernel runs on CUDA, plain matmuls elsewhere; both compute the same.
    from archspec.ops._transformer import attend

    q, k, v = torch.randn(3, 2, 4, 9, 8).unbind(0)
    assert torch.allclose(attend(q, k, v, 0.0, fused=True), attend(q, k, v, 0.0, fused=False), atol=1e-6)


def test_attention_macs_are_flop_counter_on_a_vit_encoder_block():
    length, dim, heads, mlp = 197, 768, 12, 3072  # ViT-B/16 at 224
    with torch.device("meta"):
        block = EncoderBlock(heads, dim, mlp, 0.0, 0.0)
        x = torch.empty(1, length, dim)
    counted = flop_counter_macs(block, x)
    # The block's MLP is two linear layers: L x D x mlp each.
    ours = summary(f"input: [{length}, {dim}]\ngraph:\n  attn: {{op: attention, heads: {heads}}}\n").total_macs
    assert ours + 2 * length * dim * mlp == counted
    # The formula, written out: projections L*D*3D + L*D*D, then q k^T and weights v.
    assert ours == length * dim * 3 * dim + length * dim * dim + 2 * length * length * dim


def test_attention_macs_are_counted_on_cpu_in_eval_too():
    # nn.MultiheadAttention's fast path (CPU, eval, no grad) hides its products from
    # FlopCounterMode; archspec's op must count the same there as on the meta device.
    net = build("input: [7, 16]\ngraph:\n  attn: {op: attention, heads: 4}\n").eval()
    with torch.no_grad():
        counted = flop_counter_macs(net, torch.randn(2, 7, 16))
    assert counted == 2 * (7 * 16 * 48 + 7 * 16 * 16 + 2 * 7 * 7 * 16)


def test_vit_b_16_macs_are_reference_figure():
    # ../shared/REFERENCE.md: vit_b_16 at 224, FlopCounterMode / 2 = 17,563,828,224.
    layers = summary("""
input: [197, 768]
blocks:
  layer:
    body:
      self_attention: {op: attention, heads: 12}
      fc1: {op: linear, out: 3072}
      gelu: {op: gelu}
      fc2: {op: linear, out: 768}
graph:
  layers: {repeat: 12, block: layer}
""").total_macs
    conv_proj = 768 * 3 * 16 * 16 * (14 * 14)  # 16x16 patches, 3 -> 768 channels, 14x14 positions
    head = 768 * 1000                          # the class token only
    assert layers + conv_proj + head == 17_563_828_224


# -- class token and position embedding ---------------------------------------------

VIT_TOKENS = """
input: [4, 6]
graph:
  class_token: {op: class_token}
  encoder:
    seq:
      pos_embedding: {op: pos_embedding}
"""


def test_class_token_and_pos_embedding_are_torchvisions():
    vit = torchvision.models.VisionTransformer(image_size=8, patch_size=4, num_layers=1, num_heads=2,
                                               hidden_dim=6, mlp_dim=8)
    with torch.no_grad():
        vit.class_token.normal_()  # zeros at init would hide a misplaced token
    vit.encoder.layers, vit.encoder.ln = nn.Identity(), nn.Identity()
    net = build(VIT_TOKENS)
    keys = ["class_token", "encoder.pos_embedding"]
    assert list(net.state_dict()) == keys
    net.load_state_dict({k: vit.state_dict()[k] for k in keys}, strict=True)

    def reference(x):
        # VisionTransformer.forward's lines, then its Encoder (layers and norm removed).
        x = torch.cat([vit.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        return vit.encoder(x)

    x = torch.randn(3, 4, 6)
    for training in (True, False):
        net.train(training)
        vit.train(training)
        out, ref = net(x), reference(x)
        assert out.shape == (3, 5, 6) and (out - ref).abs().max().item() <= 1e-6
        grad = torch.randn_like(out)
        out.backward(grad)
        ref.backward(grad)
        assert torch.allclose(net.class_token.grad, vit.class_token.grad, atol=1e-6)
        assert torch.allclose(net.encoder.pos_embedding.grad, vit.encoder.pos_embedding.grad, atol=1e-6)
        net.zero_grad()
        vit.zero_grad()


def test_tokens_are_initialised_as_torchvision_does():
    torch.manual_seed(3)
    encoder = Encoder(seq_length=5, num_layers=0, num_heads=2, hidden_dim=6, mlp_dim=8, dropout=0.0,
                      attention_dropout=0.0)
    torch.manual_seed(3)
    net = build(VIT_TOKENS)
    assert torch.equal(net.class_token, torch.zeros(1, 1, 6))
    assert torch.equal(net.encoder.pos_embedding, encoder.pos_embedding)


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
