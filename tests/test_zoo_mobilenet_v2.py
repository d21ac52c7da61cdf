"""MobileNetV2 against torchvision: exact parameters, MACs as FlopCounterMode counts
them, torchvision's state-dict keys in order, equal outputs; one inverted-residual
block whose shortcut exists exactly where torchvision's `use_res_connect` is true."""
import pytest
import torchvision

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs

PARAMS, MACS = 3_504_872, 300_774_272  # ../shared/REFERENCE.md: mobilenet_v2 at 224x224


def reference(**keywords):
    return lambda: torchvision.models.mobilenet_v2(weights=None, **keywords)


def test_static_figures():
    summary = check_static("mobilenet_v2", PARAMS, MACS, reference())
    assert summary.outputs["output"] == (1, 1000)


def test_state_dict_keys_and_shapes():
    check_keys_on_meta("mobilenet_v2", reference())


def test_loads_torchvision_weights_and_agrees():
    check_weights_and_outputs("mobilenet_v2", reference())


def test_shortcut_exactly_where_torchvision_adds_one():
    theirs = torchvision.models.mobilenet_v2(weights=None)
    nodes = archspec.compile_spec(SPECS / "mobilenet_v2.yaml").inferred.graph.nodes
    for index in range(1, 18):
        block = theirs.features[index]
        assert (f"features.{index}.residual" in nodes) == block.use_res_connect, index
    # Blocks 3, 5, 6, 8-10, 12, 13, 15 and 16 keep their input's shape: ten adds.
    assert sum(node.op == "add" for node in nodes.values()) == 10


@pytest.mark.parametrize("width_mult", [0.5, 0.75, 1.4])
def test_width_mult_rounds_as_torchvision_does(width_mult):
    # _make_divisible(c * width_mult, 8) for every width, 1280 * max(1, width_mult) last.
    check_keys_on_meta("mobilenet_v2", reference(width_mult=width_mult), width_mult=width_mult)
    theirs = sum(p.numel() for p in torchvision.models.mobilenet_v2(width_mult=width_mult).parameters())
    assert archspec.summarize(SPECS / "mobilenet_v2.yaml", width_mult=width_mult).total_params == theirs


def test_num_classes_changes_only_the_head():
    summary = archspec.summarize(SPECS / "mobilenet_v2.yaml", num_classes=10)
    # 3,504,872 - (1280 * 1000 + 1000) + (1280 * 10 + 10)
    assert summary.total_params == PARAMS - 1_281_000 + 12_810
    assert summary.outputs["output"] == (1, 10)
