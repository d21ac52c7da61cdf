"""The ShuffleNet V2 family (specs/shufflenet_v2_x1_0.yaml and the three files that pick its
other scales) against torchvision's shufflenet_v2 builders (figures from
shared/REFERENCE.md)."""
import pytest
import torch
import torchvision

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2.
REFERENCE = {
    "shufflenet_v2_x0_5": (1_366_792, 40_476_448),
    "shufflenet_v2_x1_0": (2_278_604, 144_907_992),
    "shufflenet_v2_x1_5": (3_503_624, 295_759_392),
    "shufflenet_v2_x2_0": (7_393_996, 583_253_464),
}
BASE = SPECS / "shufflenet_v2_x1_0.yaml"
# Stages at 8, 4 and 2 pixels: every unit runs, at 1/12 of the work.
SMALL_INPUT = (3, 64, 64)


def reference(name):
    """torchvision's builder with batch-norm statistics taken from a random batch and
    random affine terms, so that eval mode tests which channels each BN reads after a
    split or a shuffle (fresh statistics are the identity; random ones would swamp
    the input's contribution to the output over this many layers)."""
    def build():
        model = getattr(torchvision.models, name)(weights=None)
        if next(model.parameters()).device.type == "meta":
            return model
        norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for m in norms:
                m.momentum = None  # a cumulative average: one batch's statistics
            model.train()(torch.randn(8, *SMALL_INPUT, generator=g))
            for m in norms:
                m.momentum = 0.1
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) - 0.5)
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


def test_weights_load_and_outputs_agree():
    check_weights_and_outputs("shufflenet_v2_x0_5", reference("shufflenet_v2_x0_5"), input_shape=SMALL_INPUT)


def test_training_mode_agrees_too():
    # Batch statistics in training: the split halves and the shuffle must line up with
    # torchvision's for each BN to see the same channels.
    theirs = torchvision.models.shufflenet_v2_x0_5(weights=None).train()
    ours = archspec.build(SPECS / "shufflenet_v2_x0_5.yaml").train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, *SMALL_INPUT)
    assert torch.allclose(ours(x), theirs(x), atol=1e-5)
    assert torch.allclose(ours.stage3[1].branch2[1].running_mean, theirs.stage3[1].branch2[1].running_mean)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"])
def test_weights_load_and_outputs_agree_full(name):
    check_weights_and_outputs(name, reference(name), input_shape=SMALL_INPUT)


@pytest.mark.parametrize("name", REFERENCE)
def test_every_scale_of_the_base_file_is_its_builder(name):
    summary = archspec.summarize(BASE, scale=name.removeprefix("shufflenet_v2_"))
    assert (summary.total_params, summary.total_macs) == REFERENCE[name]


def test_a_unit_splits_at_stride_1_and_runs_two_branches_at_stride_2():
    nodes = archspec.compile_spec(BASE).inferred.graph.nodes
    # stage2.0 strides: branch1 (depthwise 3x3, 1x1) and branch2 both read the input.
    assert "stage2.0.branch1.0" in nodes and "stage2.0.x1" not in nodes
    # stage2.1 keeps its size: the first half passes through, branch2 reads the second.
    assert "stage2.1.branch1.0" not in nodes
    assert nodes["stage2.1.x1"].op == "chunk" and nodes["stage2.1.x2"].op == "chunk"
    assert nodes["stage2.1.shuffle"].op == "channel_shuffle"
