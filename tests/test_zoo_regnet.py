"""The RegNet family (specs/regnet_y_400mf.yaml and the fourteen files that pick its other
scales) against torchvision's regnet builders (figures from shared/REFERENCE.md)."""
from unittest import mock

import pytest
import torch
import torchvision
from torchvision.models.regnet import BlockParams

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs, randomize_batch_norms

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2.
REFERENCE = {
    "regnet_y_400mf": (4_344_144, 401_842_848),
    "regnet_y_800mf": (6_432_512, 833_856_256),
    "regnet_y_1_6gf": (11_202_430, 1_612_076_160),
    "regnet_y_3_2gf": (19_436_338, 3_176_482_752),
    "regnet_y_8gf": (39_381_472, 8_473_070_592),
    "regnet_y_16gf": (83_590_140, 15_911_510_272),
    "regnet_y_32gf": (145_046_770, 32_279_552_832),
    "regnet_y_128gf": (644_812_894, 127_517_815_680),
    "regnet_x_400mf": (5_495_976, 413_812_608),
    "regnet_x_800mf": (7_259_656, 799_699_712),
    "regnet_x_1_6gf": (9_190_136, 1_602_849_792),
    "regnet_x_3_2gf": (15_296_552, 3_176_621_952),
    "regnet_x_8gf": (39_572_648, 7_995_132_416),
    "regnet_x_16gf": (54_278_536, 15_940_755_456),
    "regnet_x_32gf": (107_811_560, 31_735_929_792),
}
BASE = SPECS / "regnet_y_400mf.yaml"
SMALLEST = ["regnet_y_400mf", "regnet_x_400mf"]
# 100M+ parameters: compared on meta only (keys, shapes, figures).
HUGE = ["regnet_y_32gf", "regnet_y_128gf", "regnet_x_32gf"]
# Stem 32, stages at 16, 8, 4 and 2 pixels: every layer runs, at 1/12 of the work.
SMALL_INPUT = (3, 64, 64)


def scale_of(builder):
    return builder.removeprefix("regnet_")


def builder_block_params(builder):
    """The BlockParams torchvision's builder computes (from its own init params)."""
    seen = []
    original = BlockParams.from_init_params.__func__

    def record(cls, *args, **kwargs):
        with torch.device("cpu"):
            seen.append(original(cls, *args, **kwargs))
        return seen[-1]

    with mock.patch.object(BlockParams, "from_init_params", classmethod(record)), torch.device("meta"):
        getattr(torchvision.models, builder)()
    return seen[0]


def reference(name):
    """torchvision's builder. Its from_init_params computes the stage widths with tensors,
    which cannot be read on the meta device, so that step runs on the CPU. Batch-norm
    statistics and affine terms are random, so that eval mode tests where each BN sits
    and which channels it reads (fresh ones are the identity)."""
    builder = getattr(torchvision.models, name)
    original = BlockParams.from_init_params.__func__

    def on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return original(cls, *args, **kwargs)

    def build():
        with mock.patch.object(BlockParams, "from_init_params", classmethod(on_cpu)):
            model = builder()
        randomize_batch_norms(model)
        return model
    return build


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
@pytest.mark.parametrize("name", [n for n in REFERENCE if n not in SMALLEST + HUGE])
def test_weights_load_and_outputs_agree_full(name):
    check_weights_and_outputs(name, reference(name), input_shape=SMALL_INPUT)


@pytest.mark.parametrize("name", REFERENCE)
def test_scale_tables_are_torchvisions_derived_stages(name):
    # The base file writes out what BlockParams.from_init_params derives from each
    # builder's (depth, w_0, w_a, w_m, group_width, se_ratio): recompute it.
    expected = builder_block_params(name)
    args = archspec.load(BASE, scale=scale_of(name)).args
    assert args["depths"] == expected.depths
    assert args["widths"] == expected.widths
    assert args["group_widths"] == expected.group_widths
    assert [args["bottleneck_multiplier"]] * 4 == expected.bottleneck_multipliers
    assert args["se_ratio"] == (expected.se_ratio or 0)
    assert expected.strides == [2, 2, 2, 2]


@pytest.mark.parametrize("name", REFERENCE)
def test_every_scale_of_the_base_file_is_its_builder(name):
    summary = archspec.summarize(BASE, scale=scale_of(name))
    assert (summary.total_params, summary.total_macs) == REFERENCE[name]


def test_squeeze_width_follows_the_block_input_and_the_shortcut_the_widths():
    nodes = archspec.compile_spec(BASE).inferred
    # RegNetY-400MF stage 2 (width 104) reads 48 channels in its first block:
    # int(round(0.25 * 48)) = 12 squeeze channels there, int(round(0.25 * 104)) = 26 after.
    assert nodes.shape("trunk_output.block2.block2-0.f.se.fc1") == (12, 1, 1)
    assert nodes.shape("trunk_output.block2.block2-1.f.se.fc1") == (26, 1, 1)
    graph = nodes.graph.nodes
    assert "trunk_output.block2.block2-0.proj.0" in graph
    assert "trunk_output.block2.block2-1.proj.0" not in graph
    # RegNetX-400MF's first stage keeps the stem's 32 channels: projected for the stride alone.
    x400 = archspec.compile_spec(BASE, scale="x_400mf").inferred.graph.nodes
    assert "trunk_output.block1.block1-0.proj.0" in x400
    assert not any(".se." in name for name in x400)
