"""torchvision's video ResNets (specs/r3d_18.yaml and the two files that pick its other
scales, mc3_18 and r2plus1d_18) against torchvision.models.video (figures from
shared/REFERENCE.md). They need no op beyond conv, bn, relu, project, add and the pools,
which take their 3-D form from a (C, T, H, W) input."""
import pytest
import torch
import torchvision

import archspec
from conftest import SPECS, flop_counter_macs
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs, on_meta, with_random_norms

# REFERENCE.md, torchvision 0.29.1 at 3x16x112x112: parameters, FlopCounterMode / 2.
REFERENCE = {
    "r3d_18": (33_371_472, 40_696_553_472),
    "mc3_18": (11_695_440, 43_342_635_008),
    "r2plus1d_18": (31_505_325, 40_519_080_960),
}
# 8 frames of 32x32 keep every layer (time 8 -> 4 -> 2 -> 1 where it is strided, space
# 16 -> 8 -> 4 -> 2 after the stem) at a 100th of the work of 16x112x112. Sizes that a
# stride-2 stage leaves odd (56 -> 28 -> 14 -> 7 -> 4) cannot be written with `project`
# yet: it infers its stride from the shapes, and 7 -> 4 is no integer stride.
SMALL_INPUT = (3, 8, 32, 32)
TINY_INPUT = (3, 4, 16, 16)  # for a training step: time 4 -> 2 -> 1, space 8 -> 4 -> 2 -> 1


def reference(name):
    """torchvision's builder, with random batch-norm statistics and affine terms so
    that eval mode tests where each BN sits (fresh ones are nearly the identity)."""
    return with_random_norms(torchvision.models.video, name)


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures(name):
    params, macs = REFERENCE[name]
    summary = check_static(name, params, macs, reference(name))
    assert summary.total_macs == macs
    assert summary.outputs["output"] == (1, 400)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    # r2plus1d_18's `mid` widths (144, 230, 288, 460, 576, 921, 1152) are among the shapes.
    check_keys_on_meta(name, reference(name))


@pytest.mark.parametrize("name", REFERENCE)
def test_weights_load_and_outputs_agree(name):
    check_weights_and_outputs(name, reference(name), input_shape=SMALL_INPUT)


@pytest.mark.parametrize("name", REFERENCE)
def test_macs_at_a_smaller_input_are_flop_counters(name):
    # Off the spec's own input `expect: macs` is not checked; the arithmetic still is
    # FlopCounterMode's on torchvision's model.
    summary = archspec.summarize(SPECS / f"{name}.yaml", input_shape=SMALL_INPUT)
    assert summary.total_macs == flop_counter_macs(on_meta(reference(name)), SMALL_INPUT)


def training_pair(name):
    theirs = reference(name)().train()
    ours = archspec.build(SPECS / f"{name}.yaml").train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


@pytest.mark.parametrize("name", REFERENCE)
def test_training_mode_agrees_too(name):
    # In training batch norm normalises by the batch and updates its running statistics.
    ours, theirs = training_pair(name)
    x = torch.randn(2, *TINY_INPUT)
    assert (ours(x) - theirs(x)).abs().max().item() <= 1e-5
    ours_buffers = dict(ours.named_buffers())
    for key, b in theirs.named_buffers():
        assert torch.allclose(ours_buffers[key], b, atol=1e-6), key


def test_training_gradients_agree():
    # r2plus1d_18: every kind of node the three networks have but the 3x3x3 conv.
    ours, theirs = training_pair("r2plus1d_18")
    x = torch.randn(2, *TINY_INPUT)
    ours(x).square().sum().backward()
    theirs(x).square().sum().backward()
    ours_params = dict(ours.named_parameters())
    for key, p in theirs.named_parameters():
        assert torch.allclose(ours_params[key].grad, p.grad, atol=1e-4, rtol=1e-4), key


@pytest.mark.parametrize("scale", REFERENCE)
def test_every_scale_of_the_base_file_is_its_builder(scale):
    # r3d_18.yaml --scale NAME is the network of NAME.yaml: same figures, same keys.
    params, macs = REFERENCE[scale]
    summary = archspec.summarize(SPECS / "r3d_18.yaml", scale=scale)
    assert (summary.total_params, summary.total_macs) == (params, macs)
    ours = archspec.build(SPECS / "r3d_18.yaml", scale=scale, device="meta")
    theirs = on_meta(reference(scale))
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_mc3_keeps_time_after_layer1_and_its_shortcuts_stride_space_only():
    ours = archspec.build(SPECS / "mc3_18.yaml", device="meta")
    theirs = on_meta(reference("mc3_18"))
    for layer in ("layer2", "layer3", "layer4"):
        ds_ours, ds_theirs = getattr(ours, layer)[0].downsample[0], getattr(theirs, layer)[0].downsample[0]
        assert ds_ours.stride == ds_theirs.stride == (1, 2, 2)
        assert getattr(ours, layer)[0].conv1[0].kernel_size == (1, 3, 3)
    assert archspec.summarize(SPECS / "mc3_18.yaml").outputs["output"] == (1, 400)


def test_num_classes_changes_only_the_head():
    summary = archspec.summarize(SPECS / "r2plus1d_18.yaml", num_classes=10)
    # 31,505,325 - (512 * 400 + 400) + (512 * 10 + 10)
    assert summary.total_params == 31_505_325 - 205_200 + 5_130
    assert summary.outputs["output"] == (1, 10)
