"""Every shipped spec starts its weights as its reference does.

With one torch seed, archspec's build and the reference's constructor make the same
draws in the same order wherever the schemes are the same, so the weights are equal
bit for bit. ViT and Swin are the exceptions: torchvision's MLPBlock (and Swin's
blocks) redraw their linear layers inside their own constructors, before the later
layers are even built, so the stream of draws interleaves differently; there each
tensor is held to the reference's distribution (tests/init_check.py). Each spec is
built with 10 classes (both sides), which shrinks the classifier and changes nothing
else; ViT with two encoder layers.
The largest networks are `slow`.
"""
from __future__ import annotations

import os
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


def smp_unet():
    import segmentation_models_pytorch as smp

    return smp.Unet("resnet34", encoder_weights=None, classes=CLASSES)


def ultralytics_model(pattern):
    def make():
        os.environ.setdefault("YOLO_OFFLINE", "1")  # the YAMLs ship in the package
        from ultralytics.nn.tasks import DetectionModel

        return DetectionModel(pattern, nc=CLASSES, verbose=False)
    return make


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


# torchvision's segmentation builders, aux head on where they have one (as the specs).
_SEGMENTATION = ("fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
                 "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large")


def seg(name):
    aux = {} if name.startswith("lraspp") else {"aux_loss": True}
    return lambda: getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None,
                                                                  num_classes=CLASSES, **aux)


# spec -> (reference constructor, archspec overrides besides num_classes, key map).
# Every other spec is the torchvision builder of its name. An override of None drops
# num_classes (for specs that call it otherwise).
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
    "unet_resnet34": (smp_unet, {"num_classes": None, "classes": CLASSES, "input_shape": (3, 64, 64)}, None),
    "yolov8n": (ultralytics_model("yolov8n.yaml"), {"num_classes": None, "nc": CLASSES,
                                                    "input_shape": (3, 64, 64)}, None),
    "yolo11n": (ultralytics_model("yolo11n.yaml"), {"num_classes": None, "nc": CLASSES,
                                                    "input_shape": (3, 64, 64)}, None),
    **{name: (seg(name), {}, None) for name in _SEGMENTATION},
}
# Not bitwise: the reference initialises inside sub-module constructors (ViT, see
# above; Swin, whose blocks draw Xavier weights for their MLPs and trunc-normal bias
# tables as they are built, before its final loop redraws every linear layer); smp's
# encoder is a torchvision ResNet that draws its classifier (then deleted) and
# re-initialises before the decoder is built; Ultralytics' C3k2 lets C2f build its
# inner Bottlenecks (drawing their weights) and then builds them again.
# YOLOv8 (C2f only) draws as archspec does: bitwise. The segmentation builders draw
# their backbone's classifier too, then drop it.
BY_DISTRIBUTION = set(_VIT) | {"unet_resnet34", "yolo11n", "swin_t"} | set(_SEGMENTATION)
# Three of the five the issue names, and others that build in well under a second.
# Inception v3 and GoogLeNet (trunc_normal over every weight, 4-8 s) run under -m slow.
FAST = {"resnet50", "mobilenet_v3_large", "efficientnet_b0",
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
    arguments = {k: v for k, v in {"num_classes": CLASSES, **overrides}.items() if v is not None}
    ours = archspec.build(SPECS / f"{name}.yaml", **arguments).state_dict()
    if key_map:  # the article's state dict lists shared modules under every path
        assert set(ours) <= set(theirs), sorted(set(ours) - set(theirs))[:5]
        return ours, {k: theirs[k] for k in ours}
    if name in BY_DISTRIBUTION:
        assert set(ours) == set(theirs)
    else:  # the same draws in the same order need the same tensors in the same order
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
    """Each spec has `init:` (its own or its parent's); one that keeps PyTorch's
    defaults says `init: default` with a comment above it saying why."""
    for name in ALL_SPECS:
        assert "init" in archspec.load(SPECS / f"{name}.yaml").document, name
        lines = (SPECS / f"{name}.yaml").read_text(encoding="utf-8").split("\n")
        for index, line in enumerate(lines):
            if line.startswith("init:") and line.split("#")[0].split(":", 1)[1].strip() in ("default", "[]"):
                assert lines[index - 1].startswith("#"), f"{name}: say why init is PyTorch's default"


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


# -- the language, on a small spec --------------------------------------------------

SMALL = """
archspec: 1
args: {zero_last: false}
input: [3, 8, 8]
graph:
  stem: {op: conv, out: 4, k: 3}
  stem_bn: {op: bn}
  block:
    - {op: conv, out: 4, k: 3}
    - {op: bn}
  pool: {op: adaptive_avgpool}
  flatten: {op: flatten}
  fc: {op: linear, out: 2}
init:
"""


def small(rules: str, **overrides) -> dict:
    torch.manual_seed(0)
    return archspec.build(archspec.loads(SMALL + rules, **overrides)).state_dict()


def test_later_rules_win_and_default_undoes_an_earlier_rule():
    sd = small("  - {op: conv, weight: 0.5, bias: {constant: 0.25}}\n"
               "  - {name: \"block.*\", op: conv, weight: ones}\n"
               "  - {op: linear, weight: zeros, bias: 3}\n"
               "  - {name: fc, bias: default}\n")
    assert (sd["stem.weight"] == 0.5).all() and (sd["stem.bias"] == 0.25).all()
    assert (sd["block.0.weight"] == 1).all() and (sd["block.0.bias"] == 0.25).all()
    assert not sd["fc.weight"].any()
    plain = small("  - {name: stem, weight: 1}\n")  # the same draws before fc, fc untouched
    assert torch.equal(sd["fc.bias"], plain["fc.bias"])  # nn.Linear's own draw, not 3


def test_when_switches_a_rule_and_star_stays_within_one_part():
    rules = "  - {op: bn, weight: 2}\n  - {name: \"*.1\", weight: zeros, when: $zero_last}\n"
    assert (small(rules)["block.1.weight"] == 2).all()
    off = small(rules, zero_last=True)
    assert not off["block.1.weight"].any() and (off["stem_bn.weight"] == 2).all()


def test_schemes_draw_what_torch_draws():
    """Fans as torch computes them: kaiming_normal with fan_out of a 4x3x3x3 weight is
    torch's own call on the same generator state."""
    sd = small("  - {op: conv, weight: {kaiming_normal: {mode: fan_out, nonlinearity: relu}}}\n")
    torch.manual_seed(0)
    net = archspec.build(archspec.loads(SMALL + "  []\n"))
    expected = torch.nn.init.kaiming_normal_(torch.empty(4, 3, 3, 3), mode="fan_out", nonlinearity="relu")
    assert torch.equal(sd["stem.weight"], expected)
    assert not torch.equal(net.state_dict()["stem.weight"], expected)


def test_init_false_and_weights_draw_nothing_for_init(tmp_path):
    """`init=False` keeps the constructors' draws; with `weights=` the generator ends
    where it does without init (nothing drawn only to be overwritten)."""
    spec = SPECS / "resnet18.yaml"
    torch.manual_seed(0)
    plain = archspec.build(spec, init=False)
    after_plain = torch.get_rng_state()
    torch.manual_seed(0)
    loaded = archspec.build(spec, weights=plain.state_dict())
    assert torch.equal(torch.get_rng_state(), after_plain)
    assert bitwise_differences(loaded.state_dict(), plain.state_dict()) == []


def test_cli_seed_and_no_init(tmp_path, capsys):
    from archspec.cli import main

    spec = str(SPECS / "resnet18.yaml")
    for flags, init in (([], True), (["--no-init"], False)):
        out = tmp_path / "net.pt"
        assert main(["build", spec, "--seed", "3", "-o", str(out), *flags]) == 0
        torch.manual_seed(3)
        expected = archspec.build(spec, init=init).state_dict()
        assert bitwise_differences(archspec.load_built(out).state_dict(), expected) == []
