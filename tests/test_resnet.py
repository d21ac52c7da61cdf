"""The ResNet family against torchvision: exact parameters, strict state dicts, equal outputs."""
import pytest
import torch
import torchvision

import archspec
from conftest import SPECS, flop_counter_macs, within

# Parameter counts and torchinfo mult-adds from ../shared/REFERENCE.md.
REFERENCE = {
    "resnet18": (torchvision.models.resnet18, 11_689_512, 1_814_083_944),
    "resnet34": (torchvision.models.resnet34, 21_797_672, 3_663_779_432),
    "resnet50": (torchvision.models.resnet50, 25_557_032, 4_089_238_376),
    "resnet101": (torchvision.models.resnet101, 44_549_160, 7_801_511_784),
    "resnet152": (torchvision.models.resnet152, 60_192_808, 11_513_779_048),
}


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures_match_reference(name):
    constructor, params, torchinfo_macs = REFERENCE[name]
    summary = archspec.summarize(SPECS / f"{name}.yaml")
    assert summary.total_params == params
    # archspec counts MACs as FlopCounterMode does, measured here on torchvision's model;
    # torchinfo's figure also counts biases and batch norms, within a fraction of 1%.
    assert summary.total_macs == flop_counter_macs(constructor(weights=None), (3, 224, 224))
    assert within(summary.total_macs, torchinfo_macs)
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("name", REFERENCE)
def test_torchvision_weights_load_strictly_and_outputs_agree(name):
    constructor, params, _ = REFERENCE[name]
    theirs = constructor(weights=None).eval()
    ours = archspec.build(SPECS / f"{name}.yaml").eval()
    assert sum(p.numel() for p in ours.parameters()) == params
    ours.load_state_dict(theirs.state_dict(), strict=True)
    # A smaller input keeps the deep networks quick; every layer still runs.
    x = torch.randn(2, 3, 112, 112)
    with torch.no_grad():
        diff = (ours(x) - theirs(x)).abs().max().item()
    assert diff <= 1e-5


def test_state_dict_keys_are_torchvision_keys_in_order():
    ours = archspec.build(SPECS / "resnet50.yaml")
    theirs = torchvision.models.resnet50(weights=None)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_training_mode_agrees_too():
    theirs = torchvision.models.resnet18(weights=None).train()
    ours = archspec.build(SPECS / "resnet18.yaml").train()
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 3, 64, 64)
    out_ours, out_theirs = ours(x), theirs(x)
    assert torch.allclose(out_ours, out_theirs, atol=1e-5)
    out_ours.sum().backward()
    out_theirs.sum().backward()
    assert torch.allclose(ours.conv1.weight.grad, theirs.conv1.weight.grad, atol=1e-4)
    assert torch.equal(ours.layer1[0].bn1.running_mean, theirs.layer1[0].bn1.running_mean)


def test_resnet50_v1_moves_the_stride_to_the_first_1x1():
    v15 = archspec.build(SPECS / "resnet50.yaml").eval()
    v1 = archspec.build(SPECS / "resnet50_v1.yaml").eval()
    # Same weights: torchvision's resnet50 loads into both.
    weights = torchvision.models.resnet50(weights=None).state_dict()
    v15.load_state_dict(weights, strict=True)
    v1.load_state_dict(weights, strict=True)
    assert sum(p.numel() for p in v1.parameters()) == 25_557_032  # REFERENCE.md
    assert v1.layer2[0].conv1.stride == (2, 2) and v1.layer2[0].conv2.stride == (1, 1)
    assert v15.layer2[0].conv1.stride == (1, 1) and v15.layer2[0].conv2.stride == (2, 2)
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert not torch.allclose(v1(x), v15(x), atol=1e-3)
    # Striding before the 1x1 leaves the 3x3 at a quarter of the positions in each
    # downsampling block, so the article's layout needs fewer MACs.
    assert archspec.summarize(SPECS / "resnet50_v1.yaml").total_macs < archspec.summarize(SPECS / "resnet50.yaml").total_macs


def test_num_classes_override_changes_only_the_head():
    summary = archspec.summarize(SPECS / "resnet50.yaml", num_classes=10)
    # 25,557,032 - (2048*1000 + 1000) + (2048*10 + 10)
    assert summary.total_params == 25_557_032 - 2_049_000 + 20_490
    assert summary.outputs["output"] == (1, 10)


@pytest.mark.parametrize("name", ["resnet18", pytest.param("resnet50", marks=pytest.mark.slow)])
@pytest.mark.parametrize("size", [200, 225])
def test_odd_input_sizes_match_torchvision(name, size):
    # At 200x200 layer3 receives 25x25 and its stride-2 body gives ceil(25 / 2) = 13;
    # the shortcut's 1x1 conv must take stride 2 to match, as torchvision's does.
    constructor = REFERENCE[name][0]
    theirs = constructor(weights=None).eval()
    ours = archspec.build(SPECS / f"{name}.yaml", input_shape=(3, size, size), check=False).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert ours.layer3[0].downsample[0].stride == theirs.layer3[0].downsample[0].stride == (2, 2)
    summary = archspec.summarize(SPECS / f"{name}.yaml", input_shape=(3, size, size))
    assert summary.total_macs == flop_counter_macs(constructor(weights=None), (3, size, size))
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        assert (ours(x) - theirs(x)).abs().max().item() <= 1e-5


def test_every_small_input_size_torchvision_accepts_is_accepted():
    # Any size from 1 up takes ResNet-18 to a 1x1 layer4 or larger; each stage's
    # shortcut must size itself after its body at every one of them, odd or even.
    theirs = torchvision.models.resnet18(weights=None)
    for size in range(1, 70):
        summary = archspec.summarize(SPECS / "resnet18.yaml", input_shape=(3, size, size))
        assert summary.total_macs == flop_counter_macs(theirs, (3, size, size)), size
