"""ResNeXt and Wide ResNet against torchvision: ResNet-50's spec with grouped or wider
bottlenecks (`groups`, `width_per_group`), exact parameters, MACs as FlopCounterMode
counts them, torchvision's state-dict keys in order, and equal outputs."""
import pytest
import torchvision

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs

# Parameters and FlopCounterMode / 2 at 224x224 from ../shared/REFERENCE.md.
REFERENCE = {
    "resnext50_32x4d": (torchvision.models.resnext50_32x4d, 25_028_904, 4_230_479_872),
    "resnext101_32x8d": (torchvision.models.resnext101_32x8d, 88_791_336, 16_414_015_488),
    "resnext101_64x4d": (torchvision.models.resnext101_64x4d, 83_455_272, 15_460_270_080),
    "wide_resnet50_2": (torchvision.models.wide_resnet50_2, 68_883_240, 11_398_021_120),
    "wide_resnet101_2": (torchvision.models.wide_resnet101_2, 126_886_696, 22_753_050_624),
}


def reference(name, **keywords):
    return lambda: REFERENCE[name][0](weights=None, **keywords)


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures(name):
    _, params, macs = REFERENCE[name]
    summary = check_static(name, params, macs, reference(name))
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    check_keys_on_meta(name, reference(name))


def test_resnext50_loads_torchvision_weights_and_agrees():
    # 112x112 keeps it quick; every block still runs (layer4 at 4x4).
    check_weights_and_outputs("resnext50_32x4d", reference("resnext50_32x4d"), input_shape=(3, 112, 112))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["wide_resnet50_2", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2"])
def test_larger_members_load_torchvision_weights_and_agree(name):
    check_weights_and_outputs(name, reference(name), input_shape=(3, 112, 112), batch=1)


def test_inner_width_is_torchvisions_formula():
    # torchvision's Bottleneck: width = int(planes * (base_width / 64.)) * groups
    for name, groups, base_width in [("resnext50_32x4d", 32, 4), ("resnext101_32x8d", 32, 8),
                                     ("resnext101_64x4d", 64, 4), ("wide_resnet50_2", 1, 128)]:
        net = archspec.build(SPECS / f"{name}.yaml", device="meta")
        for stage, planes in zip((net.layer1, net.layer2, net.layer3, net.layer4), (64, 128, 256, 512)):
            conv2 = stage[0].conv2
            assert conv2.out_channels == int(planes * (base_width / 64)) * groups, (name, planes)
            assert conv2.groups == groups


def test_resnet50_with_resnext_args_is_resnext50():
    # The family's arguments on ResNet-50's own file give the same network (whose
    # figures are no longer ResNet-50's: check=False leaves its expect: aside).
    ours = archspec.build(SPECS / "resnet50.yaml", device="meta", check=False, groups=32, width_per_group=4)
    assert sum(p.numel() for p in ours.parameters()) == 25_028_904  # REFERENCE.md, torchvision resnext50_32x4d
    check_keys_on_meta("resnet50", reference("resnext50_32x4d"), check=False, groups=32, width_per_group=4)


def test_num_classes_changes_only_the_head():
    summary = archspec.summarize(SPECS / "resnext50_32x4d.yaml", num_classes=10)
    # 25,028,904 - (2048 * 1000 + 1000) + (2048 * 10 + 10)
    assert summary.total_params == 25_028_904 - 2_049_000 + 20_490
    assert summary.outputs["output"] == (1, 10)
