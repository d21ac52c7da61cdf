"""torchvision's vision transformers (specs/vit_b_16.yaml and the four files that pick
its other scales) against torchvision's vit builders (figures from shared/REFERENCE.md).

torchvision builds every ViT with dropout and attention dropout 0.0, so its training
forward computes what its eval forward does (tested below on a small configuration);
dropout is compared under one seed on that configuration with p > 0."""
import pytest
import torch
import torchvision
from torchvision.models import VisionTransformer

import archspec
from conftest import SPECS, flop_counter_macs
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs, on_meta

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2 (which
# counts the attention products; torchinfo's mult-adds miss them and count each linear
# layer once: 173,232,616 for vit_b_16).
REFERENCE = {
    "vit_b_16": (86_567_656, 17_563_828_224),
    "vit_b_32": (88_224_232, 4_409_186_304),
    "vit_l_16": (304_326_632, 61_554_712_576),
    "vit_l_32": (306_535_400, 15_377_539_072),
    "vit_h_14": (632_045_800, 167_295_109_120),
}
SMALLEST = "vit_b_32"                 # 4.4 GMACs at 224: loaded and run in CI
LOADED_WHEN_SLOW = ("vit_b_16", "vit_l_32")  # vit_l_16 and vit_h_14: on meta only


def randomised(model, generator=None):
    """torchvision starts the class token and the classifier at zeros, which would make
    every output 0 (and hide a misplaced token): draw them at random."""
    if next(model.parameters()).device.type != "meta":
        g = generator or torch.Generator().manual_seed(1)
        with torch.no_grad():
            model.class_token.copy_(torch.randn(model.class_token.shape, generator=g) * 0.02)
            model.heads.head.weight.copy_(torch.randn(model.heads.head.weight.shape, generator=g) * 0.05)
            model.heads.head.bias.copy_(torch.randn(model.heads.head.bias.shape, generator=g) * 0.05)
    return model


def reference(name, **kwargs):
    return lambda: randomised(getattr(torchvision.models, name)(weights=None, **kwargs))


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures(name):
    params, macs = REFERENCE[name]
    # MACs: archspec's arithmetic equals FlopCounterMode on torchvision's model on meta
    # to the unit, attention products included.
    summary = check_static(name, params, macs, reference(name))
    assert summary.total_macs == macs
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    check_keys_on_meta(name, reference(name))


def test_weights_load_and_outputs_agree():
    # 224 is the only size torchvision's vit_b_32 takes (it asserts the image size).
    check_weights_and_outputs(SMALLEST, reference(SMALLEST), batch=1)


@pytest.mark.slow
@pytest.mark.parametrize("name", LOADED_WHEN_SLOW)
def test_weights_load_and_outputs_agree_full(name):
    check_weights_and_outputs(name, reference(name), batch=1)


@pytest.mark.parametrize("scale", REFERENCE)
def test_every_scale_of_the_base_file_is_its_builder(scale):
    params, macs = REFERENCE[scale]
    summary = archspec.summarize(SPECS / "vit_b_16.yaml", scale=scale)
    assert (summary.total_params, summary.total_macs) == (params, macs)


def test_vit_h_14_at_the_size_of_its_published_weights():
    # torchvision's ViT_H_14 weights are for 518x518 (a 37x37 grid, 1370 tokens); its
    # builder takes image_size=518 for them. vit_b_16.yaml writes its parameter count as
    # an expression of the scale and the input, so `expect:` checks this variant too.
    spec = archspec.load(SPECS / "vit_h_14.yaml", image_size=518)
    assert spec.input_shape == (3, 518, 518)
    ours = archspec.build(spec, device="meta")
    theirs = on_meta(lambda: torchvision.models.vit_h_14(weights=None, image_size=518))
    assert ours.encoder.pos_embedding.shape == theirs.encoder.pos_embedding.shape == (1, 1370, 1280)
    # 632,045,800 + (1370 - 257) * 1280 more position embeddings
    summary = archspec.summarize(spec)
    assert summary.total_params == 632_045_800 + 1113 * 1280
    assert summary.total_macs == flop_counter_macs(theirs, (3, 518, 518))


def test_num_classes_changes_only_the_head():
    summary = archspec.summarize(SPECS / "vit_b_32.yaml", num_classes=10)
    # 88,224,232 - (768 * 1000 + 1000) + (768 * 10 + 10)
    assert summary.total_params == 88_224_232 - 769_000 + 7_690
    assert summary.outputs["output"] == (1, 10)


# -- training mode, on a small configuration of the same code -------------------------

SMALL = dict(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64,
             num_classes=10)


def small_pair(**dropouts):
    """torchvision's VisionTransformer and vit_b_16.yaml with the same small arguments,
    sharing randomised weights."""
    theirs = VisionTransformer(**SMALL, **dropouts)
    with torch.no_grad():
        for p in theirs.parameters():
            p.normal_(std=0.2)
    ours = archspec.build(SPECS / "vit_b_16.yaml", **SMALL, **dropouts)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


def test_training_mode_is_eval_mode_at_torchvisions_dropout_of_zero():
    ours, theirs = small_pair()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        evaluated = theirs.eval()(x)
    ours.train()
    theirs.train()
    out, ref = ours(x), theirs(x)
    assert torch.allclose(ref, evaluated, atol=1e-5)  # p = 0: training changes nothing
    assert (out - ref).abs().max().item() <= 1e-5
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    ours_grads = dict(ours.named_parameters())
    for key, p in theirs.named_parameters():
        assert torch.allclose(ours_grads[key].grad, p.grad, atol=1e-4), key


# Dropout after the attention: nn.MultiheadAttention(batch_first=True) returns a
# transposed view, and dropout draws its mask in memory order (empty_like keeps
# strides); archspec's attention returns the same layout, so with one seed every dropout
# zeroes the same elements. Attention dropout draws inside the attention, as torchvision's.
@pytest.mark.parametrize("rate", [{"attention_dropout": 0.2}, {"dropout": 0.2}])
def test_dropout_draws_as_torchvision_does(rate):
    ours, theirs = small_pair(**rate)
    ours.train()
    theirs.train()
    x = torch.randn(3, 3, 32, 32)
    torch.manual_seed(5)
    out = ours(x)
    torch.manual_seed(5)
    ref = theirs(x)
    torch.manual_seed(6)
    other = theirs(x)
    assert (out - ref).abs().max().item() <= 1e-5
    assert (other - ref).abs().max().item() > 1e-2  # the dropout did act
