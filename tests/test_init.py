"""Every shipped spec starts its weights as its reference does.

With one torch seed, archspec's build and the reference's constructor make the same
draws in the same order wherever the schemes are the same, so the weights are equal
bit for bit. ViT is the exception: torchvision's MLPBlock redraws its linear layers
inside its own constructor, before the later layers are even built, so the stream
of draws interleaves differently; there each tensor is held to the reference's
distribution (tests/init_check.py). Each spec is built with 10 classes (both sides),
which shrinks the classifier and changes nothing else; ViT with two encoder layers.
The largest networks are `slow`.
"""
from __future__ import annotations

import re

import pytest
import torch
import torchvision

import archspec
from conftest import SPECS
from init_check import bitwise_differences, distribution_problem, distribution_problems
from seed_references import GoogLeNet004, InceptionV3003

CLASSES = 10


def tv(name, **keywords):
    return lambda: getattr(torchvision.models, name)(weights=None, num_classes=CLASSES, **keywords)


def tv_video(name):
    return lambda: getattr(torchvision.models.video, name)(weights=None, num_classes=CLASSES)


def timm_xception():
    import timm  # the dev extra pins it: a missing oracle must fail, not skip

    return timm.create_model("legacy_xception", pretrained=False, num_classes=CLASSES)


# ViT: torchvision's scales (vit.py) with two encoder layers and a small image.
_VIT = {"vit_b_16": (16, 12, 768, 3072), "vit_b_32": (32, 12, 768, 3072), "vit_l_16": (16, 16, 1024, 4096),
        "vit_l_32": (32, 16, 1024, 4096), "vit_h_14": (14, 16, 1280, 5120)}
VIT_SMALL = {"num_layers": 2}


def tv_vit(name):
    patch, heads, hidden, mlp = _VIT[name]
    image = 4 * patch
    return (lambda: torchvision.models.VisionTransformer(image_size=image, patch_size=patch, num_layers=2,
                                                         num_heads=heads, hidden_dim=hidden, mlp_dim=mlp,
                                                         num_classes=CLASSES),
            {"image_size": image, **VIT_SMALL})


def article_003_keys(key: str) -> str:
    """The article's InceptionC holds each stem a second time at `branch_5x5_1.0` and
    the conv after it at `branch_5x5_1.1`; archspec runs the stem once and names that
    conv `branch_5x5_1`."""
    return re.sub(r"^(inceptionC_\d\.branch_(?:5x5|3x3)_[12])\.1\.layer\.", r"\1.layer.", key)


# spec -> (reference constructor, archspec overrides beside num_classes, key map).
# Every other spec is the torchvision builder of its name.
SPECIAL = {
    "efficientnet": (tv("efficientnet_b0"), {}, None),  # the family file as written is B0
    "googlenet": (tv("googlenet", aux_logits=True, init_weights=True), {}, None),
    "googlenet_cifar": (lambda: GoogLeNet004(3, CLASSES, aux_logits=True), {}, None),
    "inception_v3": (tv("inception_v3", aux_logits=True, init_weights=True), {}, None),
    "inception_v3_paper": (lambda: InceptionV3003(num_classes=CLASSES), {}, article_003_keys),
    "resnet50_v1": (tv("resnet50"), {}, None),  # the same modules; only a stride moves
    "xception": (timm_xception, {}, None),
    **{name: (tv_video(name), {}, None) for name in ("r3d_18", "mc3_18", "r2plus1d_18")},
    **{name: (*tv_vit(name), None) for name in _VIT},
}
# Not bitwise: the reference initialises inside sub-module constructors (see above).
BY_DISTRIBUTION = set(_VIT)
# The five the issue names, and others that build in well under a second.
FAST = {"resnet50", "inception_v3", "googlenet", "mobilenet_v3_large", "efficientnet_b0",
        "resnet18", "mobilenet_v2", "mobilenet_v3_small", "mnasnet0_5", "mnasnet1_0", "regnet_x_400mf",
        "regnet_y_400mf", "densenet121", "squeezenet1_0", "squeezenet1_1", "shufflenet_v2_x0_5",
        "shufflenet_v2_x1_0", "googlenet_cifar", "mc3_18", "vit_b_32"}

ALL_SPECS = sorted(p.stem for p in SPECS.glob("*.yaml"))


def reference_for(name):
    return SPECIAL.get(name, (tv(name), {}, None))


def build_pair(name: str, seed: int = 0, reference_seed: int | None = None):
    make, overrides, key_map = reference_for(name)
    torch.manual_seed(seed if reference_seed is None else reference_seed)
    theirs = make().state_dict()
    if key_map:
        theirs = {key_map(k): v for k, v in theirs.items()}
    torch.manual_seed(seed)
    ours = archspec.build(SPECS / f"{name}.yaml", num_classes=CLASSES, **overrides).state_dict()
    if key_map:  # the article's state dict lists shared modules under every path
        assert set(ours) <= set(theirs), sorted(set(ours) - set(theirs))[:5]
        return ours, {k: theirs[k] for k in ours}
    assert list(ours) == list(theirs)
    return ours, theirs


def _params():
    for name in ALL_SPECS:
        marks = [] if name in FAST else [pytest.mark.slow]
        yield pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", list(_params()))
def test_weights_start_as_the_reference_does(name):
    ours, theirs = build_pair(name)
    if name in BY_DISTRIBUTION:
        assert distribution_problems(ours, theirs) == {}
        return
    differing = bitwise_differences(ours, theirs)
    if differing:  # say whether only the order of draws differs, or the schemes too
        problems = distribution_problems(ours, theirs)
        pytest.fail(f"{len(differing)} tensors differ from the reference bit for bit, first {differing[0]}; "
                    f"by distribution: {problems or 'all agree (the draws come in another order)'}")


def test_every_shipped_spec_declares_its_initialisation():
    for name in ALL_SPECS:
        assert "init" in archspec.load(SPECS / f"{name}.yaml").document, name


def test_without_init_the_reference_is_not_matched():
    """The comparison above can fail: PyTorch's defaults are not ResNet's start."""
    _, theirs = build_pair("resnet18")
    torch.manual_seed(0)
    plain = archspec.build(SPECS / "resnet18.yaml", num_classes=CLASSES, init=False).state_dict()
    assert "conv1.weight" in bitwise_differences(plain, theirs)
    assert "conv1.weight" in distribution_problems(plain, theirs)


def test_distributions_agree_across_seeds_and_tell_schemes_apart():
    """Draws of one scheme under two seeds pass the distribution check; He-normal and
    He-uniform, whose standard deviations are equal, do not."""
    ours, theirs = build_pair("mobilenet_v3_small", seed=0, reference_seed=1)
    assert bitwise_differences(ours, theirs)
    assert distribution_problems(ours, theirs) == {}
    weight = torch.empty(256, 128, 3, 3)
    normal = torch.nn.init.kaiming_normal_(weight.clone(), mode="fan_out")
    uniform = torch.nn.init.kaiming_uniform_(weight.clone(), mode="fan_out")
    assert abs(normal.std() - uniform.std()) < 1e-3
    assert "Kolmogorov-Smirnov" in distribution_problem(normal, uniform)


def test_zero_init_residual_zeroes_the_last_norm_of_each_residual_branch():
    for name, block_norm in (("resnet50", "bn3"), ("resnet18", "bn2")):
        torch.manual_seed(0)
        theirs = getattr(torchvision.models, name)(num_classes=CLASSES, zero_init_residual=True).state_dict()
        torch.manual_seed(0)
        ours = archspec.build(SPECS / f"{name}.yaml", num_classes=CLASSES, zero_init_residual=True).state_dict()
        assert bitwise_differences(ours, theirs) == []
        zeroed = [k for k, v in ours.items() if k.endswith(".weight") and v.dim() == 1 and not v.any()]
        assert zeroed and all(k.endswith(f".{block_norm}.weight") for k in zeroed), zeroed
