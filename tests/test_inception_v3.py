"""specs/inception_v3.yaml against torchvision's inception_v3 and the figures of REFERENCE.md."""
import pytest
import torch
import torchvision

import archspec
from archspec.spec import parse_override
from conftest import SPECS, flop_counter_macs, outputs_agree, within

SPEC = SPECS / "inception_v3.yaml"

# Figures from /work/shared/REFERENCE.md (torchvision 0.29.1, torchinfo 1.8.0).
PARAMS = {True: 27_161_264, False: 23_834_568}   # aux_logits on / off
TORCHINFO_MACS = 5_713_251_528                    # batch 1, eval mode: aux head not run
# Training mode runs the aux head too (17x17 -> pool 5x5), as FlopCounterMode counts it:
#   conv0 768->128 1x1 at 5x5: 768*128*25 = 2,457,600
#   conv1 128->768 5x5 at 1x1: 128*768*25 = 2,457,600
#   fc 768->1000: 768*1000 = 768,000                           total 5,683,200
AUX_MACS = 2_457_600 + 2_457_600 + 768_000

# Per-sample shapes from REFERENCE.md, "Shapes quoted by the seeds", Inception v3 (seed 000).
STAGE_SHAPES = {
    "Conv2d_1a_3x3": (32, 149, 149),
    "Conv2d_2a_3x3": (32, 147, 147),
    "Conv2d_2b_3x3": (64, 147, 147),
    "maxpool1": (64, 73, 73),
    "Conv2d_3b_1x1": (80, 73, 73),
    "Conv2d_4a_3x3": (192, 71, 71),
    "maxpool2": (192, 35, 35),
    "Mixed_5b": (256, 35, 35),
    "Mixed_5c": (288, 35, 35),
    "Mixed_5d": (288, 35, 35),
    "Mixed_6a": (768, 17, 17),
    "Mixed_6b": (768, 17, 17),
    "Mixed_6c": (768, 17, 17),
    "Mixed_6d": (768, 17, 17),
    "Mixed_6e": (768, 17, 17),
    "Mixed_7a": (1280, 8, 8),
    "Mixed_7b": (2048, 8, 8),
    "Mixed_7c": (2048, 8, 8),
    "avgpool": (2048, 1, 1),
    "fc": (1000,),
}

BATCH = 2


def torchvision_model(aux_logits, **kwargs):
    """torchvision's network with random weights and random BN statistics, so that a
    wrong eps or a swapped mean/var would show in the outputs."""
    torch.manual_seed(1)
    model = torchvision.models.inception_v3(weights=None, aux_logits=aux_logits,
                                            init_weights=False, **kwargs)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def ours_loaded_from(theirs, **overrides):
    net = archspec.build(SPEC, **overrides)
    net.load_state_dict(theirs.state_dict(), strict=True)  # raises on any missing/extra key
    return net


@pytest.fixture(scope="module")
def image():
    return torch.randn(BATCH, 3, 299, 299, generator=torch.Generator().manual_seed(2))


@pytest.fixture(scope="module")
def small_image():
    # 75x75 is the smallest input the trunk takes, at 1/16 of the cost of 299x299: enough
    # for eval-mode shape checks. The aux head needs the full 299x299 (its 5x5 pool and
    # 5x5 conv on Mixed_6e's 17x17 map), so an eval forward at 75x75 would fail if the
    # head ran.
    return torch.randn(BATCH, 3, 75, 75, generator=torch.Generator().manual_seed(3))


def meta_image():
    # Shapes without computing: a training forward on the meta device.
    return torch.empty(BATCH, 3, 299, 299, device="meta")


@pytest.fixture(scope="module", params=[True, False], ids=["aux", "noaux"])
def pair(request):
    theirs = torchvision_model(request.param).eval()
    ours = ours_loaded_from(theirs, aux_logits=request.param).eval()
    return request.param, theirs, ours


def block_output(summary, name):
    """The summary row of a node, or of a block's output (its last node)."""
    rows = [r for r in summary.rows if r.name == name or r.name.startswith(name + ".")]
    assert rows, f"no node {name}"
    return rows[-1]


@pytest.mark.parametrize("aux", [True, False])
def test_parameter_count(aux):
    assert archspec.summarize(SPEC, aux_logits=aux).total_params == PARAMS[aux]
    net = archspec.build(SPEC, device="meta", aux_logits=aux)
    assert sum(p.numel() for p in net.parameters()) == PARAMS[aux]


@pytest.mark.parametrize("aux", [True, False])
def test_macs(aux):
    summary = archspec.summarize(SPEC, aux_logits=aux)
    reference = torchvision.models.inception_v3(weights=None, aux_logits=aux, init_weights=False)
    eval_macs = flop_counter_macs(reference, (3, 299, 299))
    assert summary.total_macs == eval_macs
    assert within(summary.total_macs, TORCHINFO_MACS)
    assert summary.train_macs == eval_macs + (AUX_MACS if aux else 0)


def test_state_dict_keys_in_torchvision_order(pair):
    _, theirs, ours = pair
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_eval_outputs_match_torchvision(pair, image):
    _, theirs, ours = pair
    with torch.no_grad():
        expected, got = theirs(image), ours(image)
    assert isinstance(got, torch.Tensor) and got.shape == (BATCH, 1000)
    assert torch.allclose(got, expected, atol=1e-5, rtol=0), outputs_agree(got, expected)


def test_train_outputs_match_torchvision(image):
    # Dropout p=0 on both sides makes the training forward deterministic, so the main
    # logits can be compared as well as the aux head (BN uses batch statistics).
    theirs = torchvision_model(True, dropout=0.0).train()
    ours = ours_loaded_from(theirs, dropout=0.0).train()
    with torch.no_grad():
        expected = theirs(image)
        got = ours(image)
    assert ours.output_names() == ("logits", "aux")
    assert isinstance(got, tuple) and len(got) == 2
    logits, aux = got
    assert logits.shape == aux.shape == (BATCH, 1000)
    assert torch.allclose(logits, expected.logits, atol=1e-5, rtol=0), outputs_agree(logits, expected.logits)
    assert torch.allclose(aux, expected.aux_logits, atol=1e-5, rtol=0), outputs_agree(aux, expected.aux_logits)
    # Both sides updated their BN running statistics alike.
    theirs_bn, ours_bn = theirs.state_dict(), ours.state_dict()
    for key in ("Mixed_6e.branch_pool.bn.running_mean", "AuxLogits.conv1.bn.running_var"):
        assert torch.allclose(ours_bn[key], theirs_bn[key], atol=1e-6)


def test_train_without_aux_returns_logits_only():
    net = archspec.build(SPEC, device="meta", aux_logits=False).train()
    out = net(meta_image())
    assert isinstance(out, torch.Tensor) and out.shape == (BATCH, 1000)


def test_eval_does_not_run_aux_head(small_image):
    net = archspec.build(SPEC)
    calls = []
    net.AuxLogits.conv0.conv.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        net.eval()(small_image)
    assert calls == []
    assert "AuxLogits" not in net.code(training=False)
    assert "AuxLogits" in net.code(training=True)

    without = archspec.build(SPEC, device="meta", aux_logits=False)
    assert not hasattr(without, "AuxLogits")


@pytest.mark.parametrize("aux", [True, False])
def test_stage_shapes(aux):
    summary = archspec.summarize(SPEC, batch=BATCH, aux_logits=aux)
    for name, shape in STAGE_SHAPES.items():
        assert block_output(summary, name).shape == (BATCH, *shape), name
    assert summary.outputs["logits"] == (BATCH, 1000)
    if aux:
        assert summary.outputs["aux"] == (BATCH, 1000)
        assert summary.train_only_outputs == ("aux",)
        assert all(r.train_only for r in summary.rows if r.name.startswith("AuxLogits."))
    else:
        assert "aux" not in summary.outputs


def test_override_num_classes(small_image):
    key, value = parse_override("num_classes=10")  # what `--set num_classes=10` passes
    net = archspec.build(SPEC, **{key: value})
    with torch.no_grad():
        assert net.eval()(small_image).shape == (BATCH, 10)
    logits, aux = archspec.build(SPEC, device="meta", **{key: value}).train()(meta_image())
    assert logits.shape == aux.shape == (BATCH, 10)
    # params follow the spec's formula: fc 2049 per class, aux fc 769 per class
    assert archspec.summarize(SPEC, num_classes=10).total_params == PARAMS[True] - 990 * (2049 + 769)


@pytest.mark.parametrize("aux", [True, False])
def test_verify(aux):
    archspec.build(SPEC, verify=True, aux_logits=aux)

