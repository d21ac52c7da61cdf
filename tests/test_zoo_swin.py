"""Swin-T (specs/swin_t.yaml, with swin_s and swin_b as its scales) against
torchvision's swin builders (figures from shared/REFERENCE.md), and the
`window_attention` op against torchvision's ShiftedWindowAttention itself."""
import pytest
import torch
import torchvision
from torchvision.models.swin_transformer import ShiftedWindowAttention, SwinTransformerBlock

import archspec
from conftest import SPECS, flop_counter_macs
from zoo import check_keys_on_meta, check_same_stochastic_depth, check_static, check_weights_and_outputs

# REFERENCE.md, torchvision 0.29.1 at 3x224x224: parameters, FlopCounterMode / 2.
REFERENCE = {
    "swin_t": (28_288_354, 4_490_566_656),
    "swin_s": (49_606_258, 8_740_875_264),
    "swin_b": (87_768_224, 15_430_946_816),
}
BASE = SPECS / "swin_t.yaml"
# Stages at 16, 8, 4 and 2 tokens a side: the first two shift their 7x7 windows over
# a padded map (21 and 14 a side), the last two have one window and no shift.
SMALL_INPUT = (3, 64, 64)


def randomised(model):
    """Random layer norm affine terms and relative position bias tables (fresh ones are
    1, 0 and N(0, 0.02^2), which would hide a misplaced norm or a misread table)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) - 0.5)
            if isinstance(m, ShiftedWindowAttention):
                table = m.relative_position_bias_table
                table.copy_(torch.randn(table.shape, generator=g))
    return model


def reference(name="swin_t", **keywords):
    """torchvision's builder; on the CPU, with random norms and bias tables."""
    def build():
        model = getattr(torchvision.models, name)(weights=None, **keywords)
        return model if next(model.parameters()).device.type == "meta" else randomised(model)
    return build


def test_static_figures():
    summary = check_static("swin_t", *REFERENCE["swin_t"], reference())
    assert summary.outputs["output"] == (1, 1000)


@pytest.mark.parametrize("shape", [SMALL_INPUT, (3, 96, 128), (3, 200, 168)])
def test_macs_at_other_inputs_are_flop_counter_mode(shape):
    # Padding to whole windows and the no-shift rule change the count with the input.
    summary = archspec.summarize(BASE, input_shape=shape)
    assert summary.total_macs == flop_counter_macs(reference()(), shape)


@pytest.mark.parametrize("scale", ["s", "b"])
def test_every_scale_of_the_file_is_its_builder(scale):
    summary = archspec.summarize(BASE, scale=scale)
    assert (summary.total_params, summary.total_macs) == REFERENCE[f"swin_{scale}"]


def test_state_dict_keys_and_shapes():
    check_keys_on_meta("swin_t", reference())


@pytest.mark.parametrize("scale", ["s", "b"])
def test_every_scale_has_its_builders_keys_and_shapes(scale):
    check_keys_on_meta("swin_t", reference(f"swin_{scale}"), scale=scale)


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["s", "b"])
def test_every_scale_loads_its_builders_weights_and_agrees(scale):
    check_weights_and_outputs("swin_t", reference(f"swin_{scale}"), scale=scale)


def test_weights_load_and_outputs_agree():
    check_weights_and_outputs("swin_t", reference(), input_shape=SMALL_INPUT)


@pytest.mark.parametrize("shape", [(3, 224, 224), (3, 96, 128), (3, 200, 168)])
def test_outputs_agree_at_other_inputs(shape):
    # 224: every stage's map is whole windows, the last one window without a shift;
    # 96 x 128: padding to whole windows, a stage-3 map of 6 x 8 in 7 x 14, shifted
    # along the width only; 200 x 168: patch merging pads odd maps (50 x 42 -> 25 x 21
    # -> 13 x 11). Built for that input: its pads are worked out from the shapes.
    theirs = reference()().eval()
    ours = archspec.build(BASE, input_shape=shape).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        got, expected = ours(x), theirs(x)
    assert (got - expected).abs().max() <= 1e-5


def test_training_mode_draws_the_same_stochastic_depth():
    # swin_t.yaml narrowed to a width of 32 (heads 1 to 8; quick to run), against
    # torchvision's SwinTransformer with the same settings, and a high drop probability
    # (0.8 for the last block) so that many branches are dropped in a batch of 8: with
    # one seed both draw the same noise in the same order (torchvision applies one
    # StochasticDepth module twice per block, the spec has two nodes; neither holds
    # state). Gradients agree too.
    heads = [1, 2, 4, 8]
    theirs = randomised(torchvision.models.SwinTransformer(
        patch_size=[4, 4], embed_dim=32, depths=[2, 2, 6, 2], num_heads=heads, window_size=[7, 7],
        stochastic_depth_prob=0.8)).train()
    ours = archspec.build(BASE, embed_dim=32, num_heads=heads, stochastic_depth_prob=0.8).train()
    check_same_stochastic_depth(ours, theirs, torch.randn(8, *SMALL_INPUT))


def test_stochastic_depth_and_shifts_follow_torchvision():
    # sd_prob = stochastic_depth_prob * block_id / (total_stage_blocks - 1); odd blocks
    # of a stage shift by window // 2.
    with torch.device("meta"):
        theirs = torchvision.models.swin_t(weights=None)
    blocks = {name: m for name, m in theirs.named_modules() if isinstance(m, SwinTransformerBlock)}
    nodes = archspec.compile_spec(BASE).inferred.graph.nodes
    for name, block in blocks.items():
        for branch in ("stochastic_depth", "stochastic_depth_mlp"):
            assert nodes[f"{name}.{branch}"].args["p"] == block.stochastic_depth.p, name
        assert nodes[f"{name}.attn"].args["shift"] == block.attn.shift_size[0], name
    assert len(blocks) == 12


# (H, W, C, heads, window, shift): whole windows, padding at the bottom and right, a
# shift, a shift turned off because the window spans the padded map, rectangular windows.
WINDOW_CASES = [
    (8, 8, 12, 3, [4, 4], [0, 0]),
    (8, 8, 12, 3, [4, 4], [2, 2]),
    (10, 7, 8, 2, [3, 3], [1, 1]),
    (5, 9, 8, 4, [7, 7], [3, 3]),
    (9, 6, 6, 1, [4, 3], [2, 1]),
]


@pytest.mark.parametrize("height, width, dim, heads, window, shift", WINDOW_CASES)
def test_window_attention_is_torchvisions(height, width, dim, heads, window, shift):
    theirs = ShiftedWindowAttention(dim, window, shift, heads)
    with torch.no_grad():
        theirs.relative_position_bias_table.normal_()
    spec = archspec.loads(f"input: [{height}, {width}, {dim}]\ngraph:\n  attn: {{op: window_attention, "
                          f"heads: {heads}, window: {window}, shift: {shift}}}\n")
    ours = archspec.build(spec).eval()
    ours.load_state_dict({f"attn.{k}": v for k, v in theirs.state_dict().items()}, strict=True)
    assert torch.equal(ours.attn.relative_position_index, theirs.relative_position_index)
    x = torch.randn(2, height, width, dim)
    with torch.no_grad():
        expected = theirs.eval()(x)
        assert torch.allclose(ours(x), expected, atol=1e-5)
        if any(shift) and window[0] < height:  # the shift and its mask matter
            theirs.shift_size = [0, 0]
            assert not torch.allclose(theirs(x), expected, atol=1e-3)
    assert archspec.summarize(spec).total_macs == flop_counter_macs(theirs, (height, width, dim))
