"""Xception against timm's `legacy_xception`: parameters, state dict, outputs, MACs."""
import pytest
import torch

import archspec

from conftest import SPECS, flop_counter_macs, outputs_agree, within

SPEC = SPECS / "xception.yaml"

# REFERENCE.md: timm `legacy_xception`, 3x299x299.
XCEPTION_PARAMS = 22_855_952
XCEPTION_TORCHINFO_MACS = 8_357_459_024

# One middle-flow block: three units of a 3x3 depthwise conv (728 * 9), a 1x1
# pointwise conv (728 * 728) and a BN (weight and bias, 2 * 728), no shortcut
# projection (728 -> 728 at stride 1):
#   3 x (728*9 + 728*728 + 2*728) = 3 x (6,552 + 529,984 + 1,456) = 3 x 537,992 = 1,613,976
MIDDLE_BLOCK_PARAMS = 3 * (728 * 9 + 728 * 728 + 2 * 728)


@pytest.fixture(scope="module")
def timm_model():
    import timm  # the dev extra pins it: a missing oracle must fail, not skip

    return timm.create_model("legacy_xception", pretrained=False).eval()


@pytest.fixture(scope="module")
def ours():
    return archspec.build(SPEC)


def _randomise_bn_stats(model, seed=1):
    """Non-trivial running statistics, so a BN wired to the wrong place shows."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def test_params_match_reference(ours):
    assert MIDDLE_BLOCK_PARAMS == 1_613_976
    assert sum(p.numel() for p in ours.parameters()) == XCEPTION_PARAMS
    assert archspec.summarize(SPEC).total_params == XCEPTION_PARAMS


def test_timm_state_dict_loads_strict(ours, timm_model):
    theirs = timm_model.state_dict()
    mine = ours.state_dict()
    assert set(mine) == set(theirs)
    for key, value in theirs.items():
        assert mine[key].shape == value.shape, key
    ours.load_state_dict(theirs, strict=True)


def test_eval_outputs_agree_with_timm(timm_model):
    _randomise_bn_stats(timm_model)
    net = archspec.build(SPEC)
    net.load_state_dict(timm_model.state_dict(), strict=True)
    net.eval()
    x = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        expected = timm_model(x)
        got = net(x)
    assert got.shape == expected.shape == (2, 1000)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), outputs_agree(got, expected)


def test_macs_match_reference():
    import timm

    summary = archspec.summarize(SPEC)
    assert summary.total_macs == flop_counter_macs(timm.create_model("legacy_xception"), (3, 299, 299))
    assert within(summary.total_macs, XCEPTION_TORCHINFO_MACS)
    assert summary.outputs["output"] == (1, 1000)


def test_shapes_of_the_three_flows():
    shapes = {row.name: row.shape[1:] for row in archspec.summarize(SPEC).rows}
    assert shapes["block3.residual"] == (728, 19, 19)     # entry flow
    assert shapes["block11.residual"] == (728, 19, 19)    # middle flow
    assert shapes["block12.residual"] == (1024, 10, 10)   # exit flow
    assert shapes["act3"] == (1536, 10, 10)
    assert shapes["act4"] == (2048, 10, 10)


def test_verify_passes():
    archspec.build(SPEC, verify=True, device="meta")


@pytest.mark.parametrize("middle_blocks", [6, 7])
def test_middle_blocks_override(middle_blocks):
    summary = archspec.summarize(SPEC, middle_blocks=middle_blocks)
    assert summary.total_params - XCEPTION_PARAMS == (middle_blocks - 8) * MIDDLE_BLOCK_PARAMS
    net = archspec.build(SPEC, device="meta", middle_blocks=middle_blocks)
    assert sum(p.numel() for p in net.parameters()) == summary.total_params


def test_fewer_middle_blocks_keep_timm_names():
    """Dropping middle blocks removes the last timm names; the survivors keep theirs."""
    keys = archspec.build(SPEC, device="meta", middle_blocks=6).state_dict().keys()
    assert any(k.startswith("block9.") for k in keys)
    assert not any(k.startswith(("block10.", "block11.", "block12.rep.9.")) for k in keys)
    assert any(k.startswith("block12.") for k in keys)


def test_a_ninth_middle_block_would_take_the_exit_blocks_name():
    # timm numbers the exit block after eight middle blocks; block4 + 8 = block12.
    with pytest.raises(archspec.SpecError) as err:
        archspec.summarize(SPEC, middle_blocks=9)
    assert err.value.code == "E0306" and "block12" in str(err.value)
