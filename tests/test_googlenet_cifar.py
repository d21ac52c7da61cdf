"""specs/googlenet_cifar.yaml: the CIFAR-10 GoogLeNet of seed article 004.

Figures are the literals of shared/REFERENCE.md (seed 004, input 3x32x32, 10 classes).
"""
import pytest
import torch

import archspec

from conftest import SPECS, flop_counter_macs, within

SPEC = SPECS / "googlenet_cifar.yaml"

# REFERENCE.md: GoogLeNet for CIFAR-10 (seed 004), 3x32x32, 10 classes.
PARAMS_AUX = 6_150_062
PARAMS_NO_AUX = 5_998_362
TORCHINFO_MACS = 32_369_178  # torchinfo mult-adds, batch 1, eval mode

# The article's printed block outputs (per sample), keyed by the node that ends each block.
BLOCK_SHAPES = {
    "maxpool1": (64, 8, 8),          # block 1
    "maxpool2": (192, 4, 4),         # block 2
    "maxpool3": (480, 2, 2),         # block 3
    "maxpool4": (832, 1, 1),         # block 4
    "inception5b.cat": (1024, 1, 1),  # block 5: the concat that ends inception5b
}


@pytest.mark.parametrize("aux, expected", [(True, PARAMS_AUX), (False, PARAMS_NO_AUX)])
def test_param_counts(aux, expected):
    assert archspec.summarize(SPEC, aux_logits=aux).total_params == expected
    net = archspec.build(SPEC, aux_logits=aux)
    assert sum(p.numel() for p in net.parameters()) == expected


@pytest.mark.parametrize("batch", [1, 3])
def test_block_shapes(batch):
    rows = {r.name: r for r in archspec.summarize(SPEC, batch=batch).rows}
    for name, shape in BLOCK_SHAPES.items():
        assert rows[name].shape == (batch, *shape), name


def test_conv_bias_on():
    sd = archspec.build(SPEC).state_dict()
    assert "conv1.conv.bias" in sd and "inception5b.branch5x5.1.conv.bias" in sd
    assert sd["inception5b.branch5x5.1.conv.weight"].shape[-2:] == (5, 5)
    assert sd["aux1.fc1.0.weight"].shape == (64, 128)


@pytest.mark.parametrize("batch", [2, 3])
def test_train_mode_three_outputs(batch):
    net = archspec.build(SPEC).train()
    assert net.output_names(True) == ("logits", "aux2", "aux1")
    out = net(torch.randn(batch, 3, 32, 32))
    assert isinstance(out, tuple) and len(out) == 3
    assert all(t.shape == (batch, 10) for t in out)


def test_eval_mode_one_output():
    net = archspec.build(SPEC).eval()
    assert "aux" not in net.code(training=False)
    with torch.no_grad():
        out = net(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


def test_no_aux_heads_when_switched_off():
    net = archspec.build(SPEC, aux_logits=False).train()
    out = net(torch.randn(2, 3, 32, 32))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)


@pytest.mark.parametrize("aux", [True, False])
def test_macs(aux):
    # No library holds this network: the static count is held to PyTorch's own
    # FlopCounterMode on the built module, and to the article's torchinfo figure
    # (which also counts bias adds and batch norms) within 1%.
    macs = archspec.summarize(SPEC, aux_logits=aux).total_macs
    assert macs == flop_counter_macs(archspec.build(SPEC, aux_logits=aux), (3, 32, 32))
    assert within(macs, TORCHINFO_MACS)


def test_verify():
    archspec.build(SPEC, verify=True)
    archspec.build(SPEC, verify=True, aux_logits=False)
