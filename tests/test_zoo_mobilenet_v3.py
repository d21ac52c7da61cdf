"""MobileNetV3 Large and Small against torchvision: exact parameters, MACs as
FlopCounterMode counts them, torchvision's state-dict keys in order, strict loads with
equal outputs (eval and training mode); torchvision's width_mult, reduced_tail and
dilated keywords as args; shortcuts and squeeze-excitation exactly where
torchvision puts them."""
import pytest
import torch
import torchvision

import archspec
from conftest import SPECS
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs, randomize_batch_norms

# ../shared/REFERENCE.md (torchvision 0.29.1, 3x224x224): parameters, FlopCounterMode / 2.
REFERENCE = {
    "mobilenet_v3_large": (5_483_032, 216_589_760),
    "mobilenet_v3_small": (2_542_856, 56_510_400),
}
VARIANTS = [{"width_mult": 0.75}, {"width_mult": 1.25}, {"reduced_tail": True},
            {"dilated": True}, {"width_mult": 0.5, "reduced_tail": True, "dilated": True}]


def builder(name, **keywords):
    return lambda: getattr(torchvision.models, name)(weights=None, **keywords)


def randomized(name, **keywords):
    """torchvision's model with random batch-norm statistics and affine terms (fresh
    ones are the identity in eval mode, and would not show where each one sits)."""
    model = builder(name, **keywords)()
    randomize_batch_norms(model)
    return model


@pytest.mark.parametrize("name", REFERENCE)
def test_static_figures(name):
    summary = check_static(name, *REFERENCE[name], builder(name))
    assert summary.total_macs == REFERENCE[name][1]  # REFERENCE.md's column is FlopCounterMode / 2 too
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("name", REFERENCE)
def test_state_dict_keys_and_shapes(name):
    check_keys_on_meta(name, builder(name))


def test_small_loads_torchvision_weights_and_agrees():
    check_weights_and_outputs("mobilenet_v3_small", lambda: randomized("mobilenet_v3_small"),
                              input_shape=(3, 96, 96))


@pytest.mark.slow
def test_large_loads_torchvision_weights_and_agrees():
    check_weights_and_outputs("mobilenet_v3_large", lambda: randomized("mobilenet_v3_large"))


def test_training_mode_with_one_seed_matches():
    # Batch statistics, the classifier's dropout, and running statistics updated.
    theirs = randomized("mobilenet_v3_small").train()
    ours = archspec.build(SPECS / "mobilenet_v3_small.yaml").train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 3, 64, 64)
    torch.manual_seed(3)
    expected = theirs(x)
    torch.manual_seed(3)
    assert (ours(x) - expected).abs().max().item() <= 1e-5
    assert torch.allclose(ours.features[4].block[0][1].running_var, theirs.features[4].block[0][1].running_var)


@pytest.mark.parametrize("keywords", VARIANTS, ids=lambda k: ",".join(f"{a}={v}" for a, v in k.items()))
@pytest.mark.parametrize("name", REFERENCE)
def test_torchvision_keywords_are_args(name, keywords):
    # width_mult: make_divisible(c * width_mult, 8) for every width; reduced_tail halves
    # the last stage and the classifier; dilated trades the last stride for dilation 2.
    theirs = builder(name, **keywords)
    check_keys_on_meta(name, theirs, **keywords)
    summary = archspec.summarize(SPECS / f"{name}.yaml", **keywords)
    assert summary.total_params == sum(p.numel() for p in theirs().parameters())
    if name == "mobilenet_v3_small":
        check_weights_and_outputs(name, theirs, input_shape=(3, 64, 64), **keywords)


def test_shortcuts_and_squeeze_excitation_where_torchvision_has_them():
    for name in REFERENCE:
        theirs = torchvision.models.__dict__[name]()
        nodes = archspec.compile_spec(SPECS / f"{name}.yaml").inferred.graph.nodes
        blocks = [(i, m) for i, m in enumerate(theirs.features) if hasattr(m, "use_res_connect")]
        for index, block in blocks:
            assert (f"features.{index}.residual" in nodes) == block.use_res_connect, (name, index)
            has_se = any(isinstance(m, torchvision.ops.SqueezeExcitation) for m in block.block)
            assert any(n.startswith(f"features.{index}.block.") and n.endswith(".fc1") for n in nodes) == has_se
    # Large: blocks 1, 3, 5, 6, 8-10, 12, 14 and 15 keep their input's shape.
    large = archspec.compile_spec(SPECS / "mobilenet_v3_large.yaml").inferred.graph.nodes
    assert sorted(int(n.split(".")[1]) for n, v in large.items() if v.op == "add") == [1, 3, 5, 6, 8, 9, 10, 12, 14, 15]


def test_num_classes_changes_only_the_head():
    summary = archspec.summarize(SPECS / "mobilenet_v3_large.yaml", num_classes=10)
    # 5,483,032 - (1280 * 1000 + 1000) + (1280 * 10 + 10)
    assert summary.total_params == 5_483_032 - 1_281_000 + 12_810
    assert summary.outputs["output"] == (1, 10)
