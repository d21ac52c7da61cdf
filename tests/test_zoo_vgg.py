"""The VGG family (specs/vgg16.yaml and the seven files that pick its other scales)
against torchvision's vgg builders (figures from shared/REFERENCE.md)."""
import pytest
import torchvision

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs, with_random_norms

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2.
REFERENCE = {
    "vgg11": (132_863_336, 7_609_090_048),
    "vgg11_bn": (132_868_840, 7_609_090_048),
    "vgg13": (133_047_848, 11_308_466_176),
    "vgg13_bn": (133_053_736, 11_308_466_176),
    "vgg16": (138_357_544, 15_470_264_320),
    "vgg16_bn": (138_365_992, 15_470_264_320),
    "vgg19": (143_667_240, 19_632_062_464),
    "vgg19_bn": (143_678_248, 19_632_062_464),
}
SMALLEST = ("vgg11", "vgg11_bn")  # one of each layout of `features`: with and without BN
# The adaptive pool takes any size to 7x7, so a 64x64 input (2x2 after the five pools)
# runs every layer at 1/12 of the work of 224x224.
SMALL_INPUT = (3, 64, 64)


def reference(name):
    """torchvision's builder, with random batch-norm statistics and affine terms so
    that eval mode tests where each BN sits (fresh ones are the identity)."""
    return with_random_norms(torchvision.models, name)


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures(name):
    params, macs = REFERENCE[name]
    summary = check_static(name, params, macs, reference(name))
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    check_keys_on_meta(name, reference(name))


@pytest.mark.parametrize("name", SMALLEST)
def test_weights_load_and_outputs_agree(name):
    check_weights_and_outputs(name, reference(name), input_shape=SMALL_INPUT)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in REFERENCE if n not in SMALLEST])
def test_weights_load_and_outputs_agree_full(name):
    check_weights_and_outputs(name, reference(name), input_shape=SMALL_INPUT)


@pytest.mark.parametrize("scale", REFERENCE)
def test_every_scale_of_the_base_file_is_its_builder(scale):
    # vgg16.yaml --scale NAME is the network of NAME.yaml: same figures, same key layout.
    params, macs = REFERENCE[scale]
    summary = archspec.summarize(SPECS / "vgg16.yaml", scale=scale)
    assert (summary.total_params, summary.total_macs) == (params, macs)


def test_the_params_formula_holds_for_variants():
    # vgg16.yaml writes its parameter count as an expression of layers, batch_norm and
    # num_classes; a scale and a class count it was not written for still pass.
    compiled = archspec.compile_spec(SPECS / "vgg16.yaml", scale="vgg19_bn", num_classes=10)
    # 143,678,248 - (4096*1000 + 1000) + (4096*10 + 10)
    assert compiled.inferred.total_params == 143_678_248 - 4_097_000 + 40_970
    assert compiled.expect.checked == 2 and compiled.expect.skipped >= 1  # params and output


def test_batch_norm_shifts_positions_as_torchvision_does():
    # make_layers: conv, (bn,) relu per convolution, one max pool per stage.
    plain = archspec.build(SPECS / "vgg11.yaml", device="meta")
    bn = archspec.build(SPECS / "vgg11_bn.yaml", device="meta")
    assert [k for k, m in plain.features.named_children()] == ["0", "3", "6", "8", "11", "13", "16", "18"]
    assert [k for k, m in bn.features.named_children()][:6] == ["0", "1", "4", "5", "8", "9"]
