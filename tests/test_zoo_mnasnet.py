"""MNASNet against torchvision: one spec with four scales (alpha), exact parameters,
MACs as FlopCounterMode counts them, torchvision's state-dict keys in order, equal
outputs, and torchvision's depth rounding (_get_depths)."""
import pytest
import torch
import torchvision
from torchvision.models.mnasnet import _get_depths

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs

# alpha, parameters and FlopCounterMode / 2 at 224x224 from ../shared/REFERENCE.md.
REFERENCE = {
    "mnasnet0_5": (0.5, 2_218_512, 104_455_968),
    "mnasnet0_75": (0.75, 3_170_208, 215_493_104),
    "mnasnet1_0": (1.0, 4_383_312, 314_415_872),
    "mnasnet1_3": (1.3, 6_282_256, 526_362_432),
}


def reference(name):
    return lambda: getattr(torchvision.models, name)(weights=None)


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures(name):
    _, params, macs = REFERENCE[name]
    summary = check_static(name, params, macs, reference(name))
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    check_keys_on_meta(name, reference(name))


def test_mnasnet0_5_loads_torchvision_weights_and_agrees():
    check_weights_and_outputs("mnasnet0_5", reference("mnasnet0_5"), input_shape=(3, 112, 112))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnasnet0_75", "mnasnet1_0", "mnasnet1_3"])
def test_larger_members_load_torchvision_weights_and_agree(name):
    check_weights_and_outputs(name, reference(name))


@pytest.mark.parametrize("name", REFERENCE)
def test_each_file_is_a_scale_of_the_base(name):
    alpha, params, _ = REFERENCE[name]
    assert archspec.load(SPECS / f"{name}.yaml").args["alpha"] == alpha
    assert archspec.summarize(SPECS / "mnasnet1_0.yaml", scale=name).total_params == params


@pytest.mark.parametrize("name", REFERENCE)
def test_depths_are_torchvisions(name):
    alpha = REFERENCE[name][0]
    inferred = archspec.compile_spec(SPECS / f"{name}.yaml").inferred
    # _get_depths(alpha): the stem's two convs, then the output of each stack.
    aliases = inferred.graph.aliases  # a stack's name -> the node that is its output
    ours = [inferred.shape(aliases.get(f"layers.{i}", f"layers.{i}"))[0] for i in (0, 6, 8, 9, 10, 11, 12, 13)]
    assert ours == _get_depths(alpha)


def test_batch_norm_momentum_and_training_mode_agree():
    theirs = torchvision.models.mnasnet0_5(weights=None, dropout=0.0).train()
    ours = archspec.build(SPECS / "mnasnet0_5.yaml", dropout=0.0).train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert ours.layers[1].momentum == theirs.layers[1].momentum == pytest.approx(0.0003)
    x = torch.randn(4, 3, 64, 64)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert torch.allclose(ours.layers[8][0].layers[1].running_mean, theirs.layers[8][0].layers[1].running_mean)
