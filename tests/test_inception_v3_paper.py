"""specs/inception_v3_paper.yaml: Inception v3 as seed 003 builds it.

There is no reference implementation here: the spec is held to the figures of
REFERENCE.md and of the article (with the arithmetic shown), and its graph is inspected for the one structural
choice it makes on purpose, each InceptionC stem as a single node feeding two convs.
"""
import pytest
import torch

import archspec
from archspec.spec import parse_override
from conftest import SPECS, flop_counter_macs

SPEC = SPECS / "inception_v3_paper.yaml"

# /work/shared/REFERENCE.md: 24,826,016 distinct parameters (seed 003's torchinfo total,
# 38,345,632, counts the shared InceptionC stems more than once).
PARAMS = 24_826_016
# The aux head: 1x1 conv 768 -> 1024 with bias (768*1024 + 1024 = 787,456), its BN
# (2*1024 = 2,048) and the classifier (1024*1000 + 1000 = 1,025,000): 1,814,504.
PARAMS_NO_AUX = PARAMS - 1_814_504
# Seed 003 prints "Total mult-adds (G): 11.19" for a batch of 2, with each InceptionC
# stem run twice. The second runs (in x out x kernel x 8*8 positions) cost:
#   C_1 (1280 in): 1x1->448 1280*448*64 = 36,700,160
#                  3x3 448->384 448*384*9*64 = 99,090,432
#                  1x1->384 1280*384*64 = 31,457,280
#   C_2 (2048 in): 1x1->448 2048*448*64 = 58,720,256
#                  3x3 448->384 = 99,090,432
#                  1x1->384 2048*384*64 = 50,331,648
STEM_REPEATS = 36_700_160 + 99_090_432 + 31_457_280 + 58_720_256 + 99_090_432 + 50_331_648
ARTICLE_MULT_ADDS_BATCH_2 = 11.19e9  # rounded to 0.01 G
INCEPTION_C_BLOCKS = ("inceptionC_1", "inceptionC_2")

# Per-sample shapes printed by the article's summary (seed 003, batch 2).
STAGE_SHAPES = {
    "conv1a": (32, 149, 149),
    "conv1b": (32, 147, 147),
    "conv1c": (64, 147, 147),
    "maxpool1": (64, 73, 73),
    "conv2a": (80, 71, 71),
    "conv2b": (192, 35, 35),
    "conv2c": (288, 35, 35),
    "inceptionA_1": (288, 35, 35),
    "inceptionA_2": (288, 35, 35),
    "gridreducA": (768, 17, 17),
    "inceptionB_1": (768, 17, 17),
    "inceptionB_2": (768, 17, 17),
    "inceptionB_3": (768, 17, 17),
    "inceptionB_4": (768, 17, 17),
    "gridreducB": (1280, 8, 8),
    "inceptionC_1": (2048, 8, 8),
    "inceptionC_2": (2048, 8, 8),
    "gap": (2048, 1, 1),
    "classifier": (1000,),
}

# Each InceptionC stem and the two convolutions its output feeds (kernel sizes).
STEMS = {
    "branch_5x5.1.layer.2": {"branch_5x5_1.layer.0": (1, 3), "branch_5x5_2.layer.0": (3, 1)},
    "branch_3x3.layer.2": {"branch_3x3_1.layer.0": (1, 3), "branch_3x3_2.layer.0": (3, 1)},
}

BATCH = 2


@pytest.fixture(scope="module")
def graph():
    inferred = archspec.compile_spec(SPEC).inferred
    return inferred.graph


def block_output(summary, name):
    """The summary row of a node, or of a block's output (its last node)."""
    rows = [r for r in summary.rows if r.name == name or r.name.startswith(name + ".")]
    assert rows, f"no node {name}"
    return rows[-1]


def test_parameter_count():
    assert archspec.summarize(SPEC).total_params == PARAMS
    assert archspec.summarize(SPEC, aux_logits=False).total_params == PARAMS_NO_AUX
    net = archspec.build(SPEC, device="meta")
    assert sum(p.numel() for p in net.parameters()) == PARAMS


def test_macs_count_each_stem_once():
    summary = archspec.summarize(SPEC)
    # The static count is what PyTorch's FlopCounterMode counts on the built network.
    net = archspec.build(SPEC, device="meta")
    assert summary.total_macs == flop_counter_macs(net, summary.input_shape)
    # Adding back the stems' second runs gives the article's figure within 0.5%: its
    # torchinfo also counts bias adds and batch norms, which FlopCounterMode does not.
    assert abs(2 * (summary.total_macs + STEM_REPEATS) - ARTICLE_MULT_ADDS_BATCH_2) <= 0.005 * 11.19e9


@pytest.mark.parametrize("block", ["inceptionC_1", "inceptionC_2"])
def test_shared_stems_are_one_node_feeding_two_convs(graph, block):
    readers = graph.consumers()
    nodes = {name: node for name, node in graph.nodes.items() if name.startswith(block + ".")}
    convs = [name for name, node in nodes.items() if node.op == "conv"]
    # The article's distinct conv modules: stem 1x1 + 3x3, its 1x3 and 3x1, stem 1x1, its
    # 1x3 and 3x1, the pool branch's 1x1, the 1x1 branch. Not one more.
    assert len(convs) == 9
    for stem, fed in STEMS.items():
        stem = f"{block}.{stem}"
        assert stem in nodes
        assert sorted(readers[stem]) == sorted(f"{block}.{conv}" for conv in fed)
        for conv, kernel in fed.items():
            assert nodes[f"{block}.{conv}"].args["k"] == kernel
    # Inside the block only the two stems (and the block's input, read by the four
    # branches) feed more than one node.
    block_input = nodes[convs[0]].inputs[0]
    inside = {name: [r for r in readers[name] if r in nodes] for name in (block_input, *nodes)}
    assert {name for name, r in inside.items() if len(r) > 1} == {
        block_input, *(f"{block}.{stem}" for stem in STEMS)}
    assert len(inside[block_input]) == 4


def test_stems_run_once_per_forward():
    net = archspec.build(SPEC).eval()
    calls = {}
    for block in INCEPTION_C_BLOCKS:
        for conv in ("branch_5x5.0.layer.0", "branch_5x5.1.layer.0", "branch_3x3.layer.0"):
            name = f"{block}.{conv}"
            calls[name] = 0
            net.get_submodule(name).register_forward_hook(
                lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    with torch.no_grad():
        net(torch.randn(BATCH, 3, 75, 75))  # small: only the call count matters
    assert calls == dict.fromkeys(calls, 1)


def test_aux_head_reads_first_grid_reduction(graph):
    gridreduc_out = graph.nodes["aux.avgpool_conv.0"].inputs[0]
    assert gridreduc_out.startswith("gridreducA.")
    assert graph.nodes[gridreduc_out].op == "concat"
    assert graph.consumers()[gridreduc_out].count("aux.avgpool_conv.0") == 1
    assert graph.nodes["aux.avgpool_conv.1.layer.0"].args["out"] == 1024


@pytest.mark.parametrize("aux", [True, False])
def test_stage_and_output_shapes(aux):
    summary = archspec.summarize(SPEC, batch=BATCH, aux_logits=aux)
    for name, shape in STAGE_SHAPES.items():
        assert block_output(summary, name).shape == (BATCH, *shape), name
    if aux:
        # the article's forward returns (aux, logits): the same order
        assert summary.outputs == {"aux": (BATCH, 1000), "logits": (BATCH, 1000)}
        assert summary.train_only_outputs == ("aux",)
        assert all(r.train_only for r in summary.rows if r.name.startswith("aux."))
    else:
        assert summary.outputs == {"logits": (BATCH, 1000)}


def test_train_returns_aux_and_logits_eval_logits_only():
    net = archspec.build(SPEC)
    assert net.output_names(training=True) == ("aux", "logits")
    assert net.output_names(training=False) == ("logits",)
    image = torch.randn(BATCH, 3, 299, 299)
    with torch.no_grad():
        aux, logits = net.train()(image)
        assert aux.shape == logits.shape == (BATCH, 1000)
        assert torch.isfinite(aux).all() and torch.isfinite(logits).all()
        # 75x75 reaches the aux head's input at 3x3, too small for its 5x5 pool: this
        # forward succeeds only because eval mode leaves the head out.
        out = net.eval()(torch.randn(BATCH, 3, 75, 75))
    assert isinstance(out, torch.Tensor) and out.shape == (BATCH, 1000)
    assert "aux" not in net.code(training=False)


def test_override_num_classes():
    key, value = parse_override("num_classes=10")  # what `--set num_classes=10` passes
    net = archspec.build(SPEC, device="meta", **{key: value}).train()
    aux, logits = net(torch.empty(BATCH, 3, 299, 299, device="meta"))
    assert aux.shape == logits.shape == (BATCH, 10)
    assert archspec.summarize(SPEC, **{key: value}).total_params == PARAMS - 990 * (2049 + 1025)


@pytest.mark.parametrize("aux", [True, False])
def test_verify(aux):
    archspec.build(SPEC, verify=True, aux_logits=aux)
