"""specs/googlenet.yaml against torchvision's GoogLeNet (figures from shared/REFERENCE.md)."""
import pytest
import torch
import torchvision

import archspec

from conftest import SPECS, flop_counter_macs, outputs_agree, within

SPEC = SPECS / "googlenet.yaml"

# REFERENCE.md: torchvision googlenet, 3x224x224.
PARAMS_AUX = 13_004_888
PARAMS_NO_AUX = 6_624_904
TORCHINFO_MACS = 1_498_391_752  # torchinfo mult-adds, batch 1, eval mode (aux heads do not run)


def torchvision_googlenet(aux_logits: bool, **kwargs):
    return torchvision.models.googlenet(weights=None, aux_logits=aux_logits, init_weights=False, **kwargs)


def randomise_batch_norms(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics and affine terms, so eval mode really tests them."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


@pytest.fixture(scope="module")
def pair_aux():
    """(ours, torchvision's) with aux heads, same weights; dropout off in both."""
    torch.manual_seed(0)
    theirs = torchvision_googlenet(True)
    randomise_batch_norms(theirs)
    for m in (theirs.dropout, theirs.aux1.dropout, theirs.aux2.dropout):
        m.p = 0.0
    ours = archspec.build(SPEC, aux_logits=True, dropout=0.0, dropout_aux=0.0)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


@pytest.mark.parametrize("aux, expected", [(True, PARAMS_AUX), (False, PARAMS_NO_AUX)])
def test_param_counts(aux, expected):
    assert archspec.summarize(SPEC, aux_logits=aux).total_params == expected
    net = archspec.build(SPEC, aux_logits=aux)
    assert sum(p.numel() for p in net.parameters()) == expected
    assert sum(p.numel() for p in torchvision_googlenet(aux).parameters()) == expected


def test_param_expression_follows_num_classes():
    # the expect: block's expression is checked on every build; it must hold off 1000 too
    for aux in (True, False):
        ours = archspec.summarize(SPEC, aux_logits=aux, num_classes=10).total_params
        theirs = sum(p.numel() for p in torchvision_googlenet(aux, num_classes=10).parameters())
        assert ours == theirs


@pytest.mark.parametrize("aux", [True, False])
def test_torchvision_state_dict_loads_strict(aux):
    net = archspec.build(SPEC, aux_logits=aux)
    theirs = torchvision_googlenet(aux).state_dict()
    net.load_state_dict(theirs, strict=True)
    ours = net.state_dict()
    # same keys, shapes, and registration order (aux1/aux2 after inception5b)
    assert list(ours) == list(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in theirs)


@pytest.mark.parametrize("aux", [True, False])
def test_eval_outputs_agree(aux):
    theirs = torchvision_googlenet(aux)
    randomise_batch_norms(theirs)
    ours = archspec.build(SPEC, aux_logits=aux)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    ours.eval(), theirs.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a, b = ours(x), theirs(x)
    assert isinstance(a, torch.Tensor) and a.shape == (2, 1000)
    assert torch.allclose(a, b, atol=1e-5, rtol=0), outputs_agree(a, b)


def test_train_mode_outputs_agree(pair_aux):
    ours, theirs = pair_aux
    ours.train(), theirs.train()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        a = ours(x)
        b = theirs(x)  # GoogLeNetOutputs(logits, aux_logits2, aux_logits1)
    assert ours.output_names(True) == ("logits", "aux2", "aux1")
    assert isinstance(a, tuple) and len(a) == 3
    for got, want in zip(a, (b.logits, b.aux_logits2, b.aux_logits1)):
        assert got.shape == (2, 1000)
        assert torch.allclose(got, want, atol=1e-5, rtol=0), outputs_agree(got, want)


def test_train_mode_dropout_defaults():
    net = archspec.build(SPEC).train()
    out = net(torch.randn(2, 3, 224, 224))
    assert len(out) == 3 and all(t.shape == (2, 1000) for t in out)
    code = net.code(training=True)
    assert "p = 0.2" in code and "p = 0.7" in code


def test_eval_mode_skips_aux_heads():
    net = archspec.build(SPEC)
    eval_code, train_code = net.code(training=False), net.code(training=True)
    assert "aux" not in eval_code
    assert "self.aux1" in train_code and "self.aux2" in train_code
    assert "dropout" not in eval_code
    assert net.output_names(False) == ("logits",)
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 224, 224))
    assert isinstance(out, torch.Tensor) and out.shape == (1, 1000)


def test_no_aux_heads_when_switched_off():
    net = archspec.build(SPEC, aux_logits=False)
    assert net.output_names(True) == ("logits",)
    assert not any(k.startswith("aux") for k in net.state_dict())
    out = net.train()(torch.randn(2, 3, 224, 224))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1000)


@pytest.mark.parametrize("aux", [True, False])
def test_macs(aux):
    s = archspec.summarize(SPEC, aux_logits=aux)
    reference = torchvision.models.googlenet(weights=None, aux_logits=aux, init_weights=False)
    assert s.total_macs == flop_counter_macs(reference, (3, 224, 224))
    assert within(s.total_macs, TORCHINFO_MACS)
    assert s.outputs["logits"] == (1, 1000)


@pytest.mark.parametrize("aux", [True, False])
def test_verify(aux):
    archspec.build(SPEC, verify=True, aux_logits=aux)
