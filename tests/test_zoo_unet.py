"""U-Net with a ResNet-34 encoder against segmentation_models_pytorch 0.6.0: exact
parameters, MACs as FlopCounterMode counts them, the same state-dict keys in the same
order, and the same masks in eval and in training mode."""
import pytest
import torch

import archspec
from conftest import SPECS, flop_counter_macs
from zoo import check_keys_on_meta, check_weights_and_outputs, on_meta

smp = pytest.importorskip("segmentation_models_pytorch")

SPEC = SPECS / "unet_resnet34.yaml"
PARAMS = 24_436_369  # ../shared/REFERENCE.md: Unet("resnet34", encoder_weights=None), 1 class


def reference(classes=1):
    return smp.Unet("resnet34", encoder_weights=None, classes=classes)


@pytest.mark.parametrize("size", [256, 96])
def test_params_and_macs_are_smps(size):
    summary = archspec.summarize(SPEC, input_shape=(3, size, size))
    assert summary.total_params == PARAMS
    # FlopCounterMode on smp's model (meta device) at the same input: convolutions only,
    # the decoder's nearest upsampling and concatenations count nothing.
    assert summary.total_macs == flop_counter_macs(on_meta(reference), (3, size, size))
    assert summary.outputs["output"] == (1, 1, size, size)


def test_more_classes_change_only_the_head():
    summary = archspec.summarize(SPEC, classes=3)
    # the head's 3x3 conv from 16 channels: 16 * 9 * c + c
    assert summary.total_params == PARAMS - 145 + 3 * 145
    assert summary.total_params == sum(p.numel() for p in on_meta(lambda: reference(3)).parameters())
    assert summary.outputs["output"] == (1, 3, 256, 256)


def test_state_dict_keys_in_order_on_meta():
    check_keys_on_meta("unet_resnet34", reference)


def test_smp_weights_load_strictly_and_masks_agree():
    check_weights_and_outputs("unet_resnet34", reference, input_shape=(3, 64, 64))


def test_training_mode_agrees_too():
    torch.manual_seed(0)
    theirs = reference().train()
    ours = archspec.build(SPEC).train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    # A non-square input: each decoder block upsamples to its skip's own height and width.
    x = torch.randn(2, 3, 64, 96)
    out_ours, out_theirs = ours(x), theirs(x)
    assert out_ours.shape == (2, 1, 64, 96)
    assert (out_ours - out_theirs).abs().max().item() <= 1e-5
    out_ours.square().mean().backward()
    out_theirs.square().mean().backward()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), name
    # Batch statistics moved the same way.
    assert torch.allclose(ours.decoder.blocks[3].conv1[1].running_mean,
                          theirs.decoder.blocks[3].conv1[1].running_mean, atol=1e-6)
