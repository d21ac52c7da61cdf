"""The DenseNet family (specs/densenet121.yaml and the three files that pick its other
scales) against torchvision's densenet builders (figures from shared/REFERENCE.md)."""
import pytest
import torch
import torchvision

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs, with_random_norms

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2.
REFERENCE = {
    "densenet121": (7_978_856, 2_834_161_664),
    "densenet161": (28_681_000, 7_727_907_072),
    "densenet169": (14_149_480, 3_359_843_328),
    "densenet201": (20_013_928, 4_291_365_888),
}
# 64x64 keeps every layer (blocks at 16, 8, 4 and 2 pixels) at 1/12 of the work.
SMALL_INPUT = (3, 64, 64)


def reference(name):
    """torchvision's builder, with random batch-norm statistics and affine terms so
    that eval mode tests where each BN sits and which channels it reads (fresh ones
    are the identity)."""
    return with_random_norms(torchvision.models, name)


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures(name):
    params, macs = REFERENCE[name]
    summary = check_static(name, params, macs, reference(name))
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    check_keys_on_meta(name, reference(name))


def test_weights_load_and_outputs_agree():
    check_weights_and_outputs("densenet121", reference("densenet121"), input_shape=SMALL_INPUT)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["densenet161", "densenet169", "densenet201"])
def test_weights_load_and_outputs_agree_full(name):
    check_weights_and_outputs(name, reference(name), input_shape=SMALL_INPUT)


@pytest.mark.parametrize("scale", REFERENCE)
def test_every_scale_of_the_base_file_is_its_builder(scale):
    params, macs = REFERENCE[scale]
    summary = archspec.summarize(SPECS / "densenet121.yaml", scale=scale)
    assert (summary.total_params, summary.total_macs) == (params, macs)


def test_transitions_halve_what_they_read():
    # A growth rate that makes odd widths: 64 + 6*33 = 262 -> 131; 131 + 12*33 = 527 ->
    # 263 (rounded down, as torchvision's num_features // 2); 263 + 24*33 = 1055 -> 527.
    compiled = archspec.compile_spec(SPECS / "densenet121.yaml", growth_rate=33)
    widths = [compiled.inferred.shape(f"features.transition{i}.conv")[0] for i in (1, 2, 3)]
    assert widths == [131, 263, 527]
    ours = archspec.build(SPECS / "densenet121.yaml", device="meta", growth_rate=33)
    with torch.device("meta"):
        theirs = torchvision.models.DenseNet(growth_rate=33)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_drop_rate_puts_dropout_after_each_dense_layer_in_training_only():
    with_drop = archspec.compile_spec(SPECS / "densenet121.yaml", drop_rate=0.2).inferred.graph.nodes
    without = archspec.compile_spec(SPECS / "densenet121.yaml").inferred.graph.nodes
    assert with_drop["features.denseblock1.denselayer1.dropout"].op == "dropout"
    assert "features.denseblock1.denselayer1.dropout" not in without
    # 6 + 12 + 24 + 16 dense layers
    assert sum(n.op == "dropout" for n in with_drop.values()) == 58
