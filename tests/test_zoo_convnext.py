"""The ConvNeXt family (specs/convnext_tiny.yaml and the three files that pick its other
scales) against torchvision's convnext builders (figures from shared/REFERENCE.md)."""
import pytest
import torch
import torchvision

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_same_stochastic_depth, check_static, check_weights_and_outputs

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2.
# FlopCounterMode counts each linear layer at every position, as archspec's linear op
# does; torchinfo counts it once (convnext_tiny: 322,371,592), far too low.
REFERENCE = {
    "convnext_tiny": (28_589_128, 4_455_531_264),
    "convnext_small": (50_223_688, 8_683_712_256),
    "convnext_base": (88_591_464, 15_354_729_472),
    "convnext_large": (197_767_336, 34_361_433_600),
}
BASE = SPECS / "convnext_tiny.yaml"
# Stages at 16, 8, 4 and 2 pixels: every block runs, at 1/12 of the work.
SMALL_INPUT = (3, 64, 64)


def randomised(model):
    """Random layer norm affine terms and layer scales (fresh ones are 1, 0 and 1e-6,
    which would hide a misplaced norm or a lost branch)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):  # LayerNorm2d too
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
            if isinstance(m, torchvision.models.convnext.CNBlock):
                m.layer_scale.copy_(torch.rand(m.layer_scale.shape, generator=g) + 0.5)
    return model


def reference(name, **keywords):
    """torchvision's builder; on the CPU, with random norms and layer scales."""
    def build():
        model = getattr(torchvision.models, name)(weights=None, **keywords)
        return model if next(model.parameters()).device.type == "meta" else randomised(model)
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
    check_weights_and_outputs("convnext_tiny", reference("convnext_tiny"), input_shape=SMALL_INPUT)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["convnext_small", "convnext_base"])
def test_weights_load_and_outputs_agree_full(name):
    check_weights_and_outputs(name, reference(name), input_shape=SMALL_INPUT)


def test_training_mode_draws_the_same_stochastic_depth():
    # convnext_tiny.yaml with nine narrow blocks against torchvision's ConvNeXt with the
    # same block settings (quick to build), and a high drop probability (0.8 for the
    # last block, rising from 0) so that many branches are dropped in a batch of 8:
    # with one seed, archspec's stochastic_depth draws the same noise as torchvision's,
    # in the same order, block by block.
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    dims, depths = [24, 48, 96, 192], [2, 2, 3, 2]
    setting = [CNBlockConfig(d, n, k) for d, n, k in zip(dims, dims[1:] + [None], depths)]
    theirs = randomised(ConvNeXt(setting, stochastic_depth_prob=0.8)).train()
    ours = archspec.build(BASE, dims=dims, depths=depths, stochastic_depth_prob=0.8).train()
    check_same_stochastic_depth(ours, theirs, torch.randn(8, *SMALL_INPUT))


@pytest.mark.slow
def test_training_mode_draws_the_same_stochastic_depth_full():
    # The same with convnext_tiny itself, at 32x32 (torchvision's smallest input).
    theirs = reference("convnext_tiny", stochastic_depth_prob=0.8)().train()
    ours = archspec.build(BASE, stochastic_depth_prob=0.8).train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(7)
    got = ours(x)
    torch.manual_seed(7)
    expected = theirs(x)
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_stochastic_depth_rises_linearly_through_the_blocks():
    # torchvision: sd_prob = stochastic_depth_prob * block_id / (total_stage_blocks - 1.0)
    with torch.device("meta"):
        theirs = torchvision.models.convnext_small(weights=None)
    expected = {name: m.p for name, m in theirs.named_modules()
                if isinstance(m, torchvision.ops.StochasticDepth)}
    nodes = archspec.compile_spec(SPECS / "convnext_small.yaml").inferred.graph.nodes
    ours = {name: node.args["p"] for name, node in nodes.items() if node.op == "stochastic_depth"}
    assert ours == expected
    assert len(ours) == 36 and ours["features.1.0.stochastic_depth"] == 0.0
    assert ours["features.7.2.stochastic_depth"] == 0.4


@pytest.mark.parametrize("name", REFERENCE)
def test_every_scale_of_the_base_file_is_its_builder(name):
    summary = archspec.summarize(BASE, scale=name.removeprefix("convnext_"))
    assert (summary.total_params, summary.total_macs) == REFERENCE[name]
