"""EfficientNet B0-B7 and V2-S/M/L against torchvision's builders. One base,
specs/efficientnet.yaml, holds the family with a scale per builder; each builder's file
names its scale, and its input is that builder's crop size. Checked: exact parameters,
MACs equal to FlopCounterMode on torchvision at the builder's own resolution and at
224x224 (REFERENCE.md's figure, exactly), torchvision's state-dict keys in order, the
stochastic depth probability of every block, strict loads with equal outputs in eval
mode, and in training mode with one seed (stochastic depth draws as torchvision's)."""
import json

import pytest
import torch
import torchvision

import archspec
from archspec.api import summarize_scales
from archspec.cli import main
from conftest import SPECS, flop_counter_macs
from zoo import check_keys_on_meta, check_static, check_weights_and_outputs, on_meta, randomize_batch_norms

# ../shared/REFERENCE.md (torchvision 0.29.1): parameters and FlopCounterMode / 2 at
# 3x224x224. Resolution: the crop size of the builder's published weights
# (crop_size in torchvision's EfficientNet_*_Weights transforms).
REFERENCE = {
    "efficientnet_b0": (5_288_548, 385_814_752, 224),
    "efficientnet_b1": (7_794_184, 569_651_680, 240),
    "efficientnet_b2": (9_109_994, 658_963_440, 288),
    "efficientnet_b3": (12_233_232, 962_708_240, 300),
    "efficientnet_b4": (19_341_616, 1_503_710_432, 380),
    "efficientnet_b5": (30_389_784, 2_356_493_184, 456),
    "efficientnet_b6": (43_040_704, 3_360_166_848, 528),
    "efficientnet_b7": (66_347_960, 5_169_865_152, 600),
    "efficientnet_v2_s": (21_458_488, 2_849_895_872, 384),
    "efficientnet_v2_m": (54_139_356, 5_362_207_200, 480),
    "efficientnet_v2_l": (118_515_272, 12_231_188_544, 480),
}
BASE = SPECS / "efficientnet.yaml"
SMALLEST = ["efficientnet_b0", "efficientnet_v2_s"]
# The nets pool adaptively: at 64x64 every layer still runs (the last stage at 2x2).
SMALL_INPUT = (3, 64, 64)


def builder(name, **keywords):
    return lambda: getattr(torchvision.models, name)(weights=None, **keywords)


def randomized(name, **keywords):
    """torchvision's model with random batch-norm statistics and affine terms: fresh
    ones are the identity in eval mode, and would not show where each one sits."""
    model = builder(name, **keywords)()
    randomize_batch_norms(model)
    return model


@pytest.mark.parametrize("name", REFERENCE)
def test_figures_keys_and_stochastic_depth_against_torchvision_on_meta(name):
    params, macs_224, size = REFERENCE[name]
    theirs = on_meta(builder(name))
    # At the builder's own resolution (the spec's input): MACs equal FlopCounterMode on
    # torchvision, and the spec's literal `expect: macs` is that measurement.
    summary = archspec.summarize(SPECS / f"{name}.yaml")
    assert summary.input_shape == (3, size, size) and summary.total_params == params
    measured = flop_counter_macs(theirs, (3, size, size))
    assert summary.total_macs == measured
    assert archspec.load(SPECS / f"{name}.yaml").document["expect"]["macs"] == measured
    # At 224x224, REFERENCE.md's FlopCounterMode column exactly.
    summary = check_static(name, params, macs_224, input_shape=(3, 224, 224))
    assert summary.total_macs == macs_224 and summary.outputs["output"] == (1, 1000)
    check_keys_on_meta(name, lambda: theirs)
    # torchvision gives block k of all N the probability 0.2 * k / N; only blocks with a
    # shortcut call it (use_res_connect), and only those keep the node.
    expected = {f"{stage}.{index}.stochastic_depth": block.stochastic_depth.p
                for stage, blocks in theirs.features.named_children() if isinstance(blocks, torch.nn.Sequential)
                for index, block in blocks.named_children() if getattr(block, "use_res_connect", False)}
    nodes = archspec.compile_spec(SPECS / f"{name}.yaml").inferred.graph.nodes
    ours = {n.removeprefix("features."): node.args["p"] for n, node in nodes.items()
            if node.op == "stochastic_depth"}
    assert ours == expected and len(ours) > 0


def test_input_224_on_the_command_line_gives_the_reference_figure(capsys):
    assert main(["summary", str(SPECS / "efficientnet_b7.yaml"), "--input", "3x224x224", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_macs"] == REFERENCE["efficientnet_b7"][1]  # REFERENCE.md


def test_the_base_is_b0_and_its_scales_are_the_builders():
    check_static("efficientnet", *REFERENCE["efficientnet_b0"][:2], builder("efficientnet_b0"))
    for summary in summarize_scales(BASE):
        name = f"efficientnet_{summary.scale}"
        params, _, size = REFERENCE[name]
        assert (summary.total_params, summary.input_shape) == (params, (3, size, size)), name


@pytest.mark.parametrize("name", SMALLEST)
def test_smallest_load_torchvision_weights_and_agree(name):
    check_weights_and_outputs(name, lambda: randomized(name), input_shape=SMALL_INPUT)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in REFERENCE if n not in SMALLEST])
def test_larger_load_torchvision_weights_and_agree(name):
    check_weights_and_outputs(name, lambda: randomized(name), input_shape=(3, 128, 128))


def test_training_mode_with_one_seed_matches_stochastic_depth_included():
    # A high probability so that many rows are dropped; MBConv blocks throughout.
    theirs = randomized("efficientnet_b0", stochastic_depth_prob=0.6).train()
    ours = archspec.build(SPECS / "efficientnet_b0.yaml", stochastic_depth_prob=0.6).train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(7)
    expected = theirs(x)
    torch.manual_seed(7)
    got = ours(x)
    assert (got - expected).abs().max().item() <= 1e-5
    # Batch norm updated its running statistics as torchvision's did.
    assert torch.allclose(ours.features[1][0].block[0][1].running_mean,
                          theirs.features[1][0].block[0][1].running_mean, atol=1e-6)
    # Another seed drops other rows: the noise is really drawn.
    torch.manual_seed(8)
    assert (ours(x) - expected).abs().max().item() > 1e-3


@pytest.mark.slow
def test_training_mode_with_one_seed_matches_for_fused_blocks_too():
    theirs = randomized("efficientnet_v2_s", stochastic_depth_prob=0.6).train()
    ours = archspec.build(SPECS / "efficientnet_v2_s.yaml", stochastic_depth_prob=0.6).train()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(4, 3, 32, 32)
    torch.manual_seed(7)
    expected = theirs(x)
    torch.manual_seed(7)
    assert (ours(x) - expected).abs().max().item() <= 1e-5


def test_block_layout_follows_torchvision():
    nodes = archspec.compile_spec(SPECS / "efficientnet_v2_s.yaml").inferred.graph.nodes
    # Fused-MBConv at expand_ratio 1: one 3x3 conv, a shortcut, no projection.
    assert "features.1.0.block.0.0" in nodes and "features.1.0.block.1.0" not in nodes
    assert nodes["features.1.0.residual"].op == "add"
    # At expand_ratio 4: a strided 3x3 expansion and a 1x1 projection, no shortcut.
    assert nodes["features.2.0.block.0.0"].args["k"] == 3 and nodes["features.2.0.block.1.0"].args["k"] == 1
    assert "features.2.0.residual" not in nodes
    # MBConv without expansion (B0's first stage): the depthwise conv is block.0, the
    # squeeze-excitation block.1, squeezing to a quarter of the block's input (32 / 4).
    b0 = archspec.compile_spec(SPECS / "efficientnet_b0.yaml").inferred
    assert b0.graph.nodes["features.1.0.block.0.0"].args["depthwise"]
    assert b0.shape("features.1.0.block.1.fc1") == (8, 1, 1)
    # With expansion, 16 -> 96: the squeeze is still from the input, 16 / 4 = 4.
    assert b0.shape("features.2.0.block.2.fc1") == (4, 1, 1)


def test_num_classes_changes_only_the_head():
    summary = archspec.summarize(SPECS / "efficientnet_b3.yaml", num_classes=10)
    # 12,233,232 - (1536 * 1000 + 1000) + (1536 * 10 + 10)
    assert summary.total_params == 12_233_232 - 1_537_000 + 15_370
    assert summary.outputs["output"] == (1, 10)
