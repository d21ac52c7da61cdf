"""torchvision's segmentation networks (FCN, DeepLabV3, LRASPP) against torchvision:
exact parameters with the auxiliary head on and off, MACs as FlopCounterMode counts
them, torchvision's state-dict keys in order, every convolution with torchvision's
stride, padding and dilation (the dilated backbones), strict loads with the same `out`
and `aux` maps in eval and training mode."""
import pytest
import torch
from torchvision.models import segmentation

import archspec
from conftest import SPECS, flop_counter_macs
from zoo import check_keys_on_meta, check_static, on_meta, randomize_batch_norms

# ../shared/REFERENCE.md (torchvision 0.29.1, 3x520x520, aux head on where torchvision
# has one): parameters, FlopCounterMode / 2.
REFERENCE = {
    "fcn_resnet50": (35_322_218, 152_716_512_000),
    "fcn_resnet101": (54_314_346, 232_737_606_400),
    "deeplabv3_resnet50": (42_004_074, 178_721_945_088),
    "deeplabv3_resnet101": (60_996_202, 258_743_039_488),
    "deeplabv3_mobilenet_v3_large": (11_029_328, 10_452_447_938),
    "lraspp_mobilenet_v3_large": (3_221_538, 2_086_219_688),
}
WITH_AUX = [name for name in REFERENCE if not name.startswith("lraspp")]
SMALL = ["deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]  # cheap enough for CI at 64x80


def builder(name, **keywords):
    """torchvision's builder as the spec is written: aux head on where it has one."""
    if name in WITH_AUX:
        keywords.setdefault("aux_loss", True)
    return lambda: getattr(segmentation, name)(weights=None, weights_backbone=None, **keywords)


def randomized(name, **keywords):
    """torchvision's model with random batch-norm statistics and affine terms."""
    return randomize_batch_norms(builder(name, **keywords)())


def check_maps(name, size=(64, 80), training=False, batch=2, **keywords):
    """Strict load of torchvision's weights, then the same `out` (and `aux`) maps: torchvision
    returns them in a dict in both modes, archspec as a tuple in output_names() order."""
    theirs = randomized(name, **keywords).train(training)
    ours = archspec.build(SPECS / f"{name}.yaml", **keywords).train(training)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(batch, 3, *size)
    with torch.no_grad():
        torch.manual_seed(3)
        expected = theirs(x)
        torch.manual_seed(3)
        got = ours(x)
    got = got if isinstance(got, tuple) else (got,)
    assert ours.output_names() == tuple(expected)
    for key, ours_map in zip(ours.output_names(), got):
        assert ours_map.shape == (batch, keywords.get("num_classes", 21), *size)
        assert expected[key].abs().max() > 0.1  # the maps compared are not trivially zero
        assert (ours_map - expected[key]).abs().max().item() <= 1e-5, (name, key)
    return ours, theirs


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures_at_520(name):
    summary = check_static(name, *REFERENCE[name], builder(name))
    assert summary.total_macs == REFERENCE[name][1]  # REFERENCE.md's column is FlopCounterMode / 2 too
    outputs = {"out": (1, 21, 520, 520), **({"aux": (1, 21, 520, 520)} if name in WITH_AUX else {})}
    assert summary.outputs == outputs


@pytest.mark.parametrize("name", [n for n in WITH_AUX if "101" not in n])
def test_aux_head_off_is_torchvisions_default(name):
    # torchvision's builders leave the aux head off when no weights are asked for.
    theirs = on_meta(lambda: getattr(segmentation, name)(weights=None, weights_backbone=None))
    summary = archspec.summarize(SPECS / f"{name}.yaml", aux_loss=False, input_shape=(3, 96, 96))
    assert summary.total_params == sum(p.numel() for p in theirs.parameters())
    assert summary.total_macs == flop_counter_macs(theirs, (3, 96, 96))
    assert list(summary.outputs) == ["out"]
    check_keys_on_meta(name, lambda: getattr(segmentation, name)(weights=None, weights_backbone=None),
                       aux_loss=False)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    check_keys_on_meta(name, builder(name))


@pytest.mark.parametrize("name", REFERENCE)
def test_every_conv_has_torchvisions_stride_padding_and_dilation(name):
    # The dilated backbones: layer3/layer4 (ResNet) and the last stage (MobileNetV3)
    # keep their input's size; a stage's first block keeps the dilation before it,
    # and a ResNet shortcut projection stays a stride-1 1x1 conv.
    ours = archspec.build(SPECS / f"{name}.yaml", device="meta")
    theirs = on_meta(builder(name))
    convs = {n: m for n, m in theirs.named_modules() if isinstance(m, torch.nn.Conv2d)}
    mine = dict(ours.named_modules())
    for key, conv in convs.items():
        got = mine[key]
        assert (got.kernel_size, got.stride, got.padding, got.dilation, got.groups) == \
               (conv.kernel_size, conv.stride, conv.padding, conv.dilation, conv.groups), key
    if "resnet" in name:
        assert convs["backbone.layer3.0.conv2"].dilation == (1, 1) and convs["backbone.layer3.1.conv2"].dilation == (2, 2)
        assert convs["backbone.layer4.0.conv2"].dilation == (2, 2) and convs["backbone.layer4.2.conv2"].dilation == (4, 4)
        assert convs["backbone.layer4.0.downsample.0"].stride == (1, 1)


@pytest.mark.parametrize("name", SMALL)
def test_loads_torchvision_weights_and_agrees(name):
    check_maps(name)


def test_dilated_resnet_loads_torchvision_weights_and_agrees():
    check_maps("fcn_resnet50", size=(48, 64), batch=1)


@pytest.mark.slow
def test_deeplabv3_resnet50_loads_torchvision_weights_and_agrees():
    check_maps("deeplabv3_resnet50", size=(48, 64), batch=1)


def test_training_mode_with_one_seed_matches():
    # Batch statistics (the ASPP pooling branch normalises 1x1 maps over the batch) and
    # the heads' dropout, drawn in torchvision's order: classifier, then aux_classifier.
    ours, theirs = check_maps("deeplabv3_mobilenet_v3_large", training=True, batch=3)
    assert torch.allclose(ours.classifier[0].convs[4][2].running_var, theirs.classifier[0].convs[4][2].running_var)


@pytest.mark.slow
def test_lraspp_training_mode_matches():
    ours, theirs = check_maps("lraspp_mobilenet_v3_large", training=True, batch=3)
    assert torch.allclose(ours.classifier.cbr[1].running_var, theirs.classifier.cbr[1].running_var)


@pytest.mark.slow
def test_aux_head_off_still_agrees():
    check_maps("deeplabv3_mobilenet_v3_large", aux_loss=False)


def test_num_classes_changes_only_the_heads():
    summary = archspec.summarize(SPECS / "fcn_resnet50.yaml", num_classes=5)
    # 35,322,218 - (512 + 1) * 21 - (256 + 1) * 21 + (512 + 1) * 5 + (256 + 1) * 5
    assert summary.total_params == 35_322_218 - 770 * 16
    assert summary.total_params == sum(p.numel() for p in on_meta(builder("fcn_resnet50", num_classes=5)).parameters())
    assert summary.outputs["out"] == (1, 5, 520, 520)


def test_replace_stride_with_dilation_is_torchvisions():
    # torchvision's resnet50 keyword under the same heads (its private _fcn_resnet joins them).
    from torchvision.models import resnet50
    from torchvision.models.segmentation.fcn import _fcn_resnet

    flags = [False, False, True]
    theirs = lambda: _fcn_resnet(resnet50(replace_stride_with_dilation=flags), 21, True)
    summary = archspec.summarize(SPECS / "fcn_resnet50.yaml", replace_stride_with_dilation=flags,
                                 input_shape=(3, 64, 64))
    assert summary.total_macs == flop_counter_macs(on_meta(theirs), (3, 64, 64))
    inferred = archspec.compile_spec(SPECS / "fcn_resnet50.yaml", replace_stride_with_dilation=flags,
                                     input_shape=(3, 64, 64)).inferred
    layer = lambda name: inferred.shape(inferred.graph.aliases[name])
    assert layer("backbone.layer3") == (1024, 4, 4)   # 64 / 16: strided again
    assert layer("backbone.layer4") == (2048, 4, 4)   # dilated


@pytest.mark.slow
@pytest.mark.parametrize("name", ["fcn_resnet101", "deeplabv3_resnet101"])
def test_resnet101_heads_load_torchvision_weights_and_agree(name):
    check_maps(name, size=(64, 64))


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALL)
def test_agrees_at_520(name):
    check_maps(name, size=(520, 520), batch=1)
