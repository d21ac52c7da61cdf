"""Each construct of the spec language, on small specs whose figures are worked by hand."""
import textwrap

import pytest
import torch
import torch.nn as nn

import archspec
from archspec import SpecError


def spec(text, **overrides):
    return archspec.loads(textwrap.dedent(text), **overrides)


def compiled(text, **overrides):
    return archspec.compile_spec(spec(text, **overrides)).inferred


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_chain_infers_in_channels_and_features():
    inferred = compiled("""
        input: [3, 8, 8]
        graph:
          - {op: conv, out: 4, k: 3, pad: 1}
          - {op: relu}
          - {op: flatten}
          - {op: linear, out: 5}
    """)
    # conv: 4*3*3*3 + 4 = 112; linear: 4*8*8*5 + 5 = 1285
    assert inferred.total_params == 112 + 1285
    assert inferred.shape("3") == (5,)
    net = archspec.build(spec("""
        input: [3, 8, 8]
        graph: [{op: conv, out: 4, k: 3, pad: 1}, {op: relu}, {op: flatten}, {op: linear, out: 5}]
    """))
    assert list(net.state_dict()) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 5)


def test_named_nodes_with_explicit_inputs_form_any_dag():
    net = archspec.build(spec("""
        input: [2, 4, 4]
        graph:
          a: {op: conv, out: 3, k: 1}
          b: {op: conv, out: 3, k: 1, from: input}
          c: {op: add, from: [a, b]}
          d: {op: concat, from: [c, a, input]}
    """), verify=True)
    x = torch.randn(1, 2, 4, 4)
    a, b = net.a(x), net.b(x)
    assert torch.allclose(net(x), torch.cat([a + b, a, x], 1))


def test_from_may_name_a_later_node():
    inferred = compiled("""
        input: [1, 4, 4]
        graph:
          late_reader: {op: add, from: [early, later]}
          early: {op: identity, from: input}
          later: {op: relu, from: early}
        outputs: {y: late_reader}
    """)
    assert inferred.graph.nodes["late_reader"].inputs == ("early", "later")


def test_nested_concat_names_branch_nodes_as_siblings():
    net = archspec.build(spec("""
        input: [4, 5, 5]
        graph:
          mix:
            seq:
              cat:
                concat:
                  - b1: {op: conv, out: 2, k: 1}
                  - b2_1: {op: conv, out: 3, k: 1}
                    b2_cat:
                      concat:
                        - {b2a: {op: conv, out: 1, k: [1, 3], pad: [0, 1]}}
                        - {b2b: {op: conv, out: 1, k: [3, 1], pad: [1, 0]}}
                  - pool: {op: avgpool, k: 3, stride: 1, pad: 1}
    """), verify=True)
    assert set(dict(net.named_children())["mix"]._modules) == {"b1", "b2_1", "b2a", "b2b"}
    assert net(torch.randn(1, 4, 5, 5)).shape == (1, 2 + 2 + 4, 5, 5)
    x = torch.randn(1, 4, 5, 5)
    m = net.mix
    inner = m.b2_1(x)
    expected = torch.cat([m.b1(x), torch.cat([m.b2a(inner), m.b2b(inner)], 1),
                          nn.functional.avg_pool2d(x, 3, 1, 1)], 1)
    assert torch.allclose(net(x), expected)


def test_residual_add_with_identity_and_projected_shortcuts():
    inferred = compiled("""
        input: [4, 8, 8]
        blocks:
          res:
            args: {out: ~, stride: 1}
            body:
              sum:
                add:
                  - conv: {op: conv, out: $out, k: 3, stride: $stride, pad: 1, bias: false}
                  - short: {op: project, from: [in, conv]}
        graph:
          same: {block: res, out: 4}
          down: {block: res, out: 6, stride: 2}
    """)
    # identity shortcut: only the 3x3 conv, 4*4*9 = 144; projection: 6*4*9 + (4*6 + 2*6)
    assert inferred.facts["same.short"].params == 0
    assert inferred.facts["down.short"].params == 4 * 6 + 2 * 6
    assert inferred.total_params == 144 + 6 * 4 * 9 + 36
    assert inferred.shape("down.sum") == (6, 4, 4)


def test_empty_branch_is_the_identity():
    net = archspec.build(spec("""
        input: [3, 4, 4]
        graph:
          r:
            add:
              - {conv: {op: conv, out: 3, k: 1}}
              - {}
    """))
    x = torch.randn(1, 3, 4, 4)
    assert torch.allclose(net(x), net.conv(x) + x)


@pytest.mark.parametrize("conv, params, shape", [
    # separable: depthwise 8*1*3*3 then pointwise 16*8 (no biases)
    ("[{op: conv, depthwise: true, k: 3, pad: 1, bias: false}, {op: conv, out: 16, k: 1, bias: false}]",
     8 * 9 + 16 * 8, (16, 9, 9)),
    # grouped: 12 * (8/4) * 3 * 3 + 12
    ("{op: conv, out: 12, k: 3, groups: 4}", 12 * 2 * 9 + 12, (12, 7, 7)),
    # dilated 3x3 with dilation 2 spans 5: 9 - 5 + 1 = 5
    ("{op: conv, out: 2, k: 3, dilation: 2, bias: false}", 2 * 8 * 9, (2, 5, 5)),
    # asymmetric 1x7 kernel with [0, 3] padding keeps the size
    ("{op: conv, out: 2, k: [1, 7], pad: [0, 3], bias: false}", 2 * 8 * 7, (2, 9, 9)),
    # stride 2 on 9 with k 3, pad 1: (9 + 2 - 3) // 2 + 1 = 5
    ("{op: conv, out: 2, k: 3, stride: 2, pad: 1}", 2 * 8 * 9 + 2, (2, 5, 5)),
])
def test_convolution_variants(conv, params, shape):
    text = f"input: [8, 9, 9]\ngraph:\n  c: {conv}\n"
    inferred = compiled(text)
    assert inferred.total_params == params
    last = list(inferred.graph.nodes)[-1]
    assert inferred.shape(last) == shape
    net = archspec.build(spec(text), verify=True)
    assert n_params(net) == params
    assert net(torch.randn(1, 8, 9, 9)).shape[1:] == shape


def test_pools_follow_pytorch_arithmetic():
    inferred = compiled("""
        input: [1, 10, 10]
        graph:
          ceil: {op: maxpool, k: 3, stride: 2, ceil_mode: true}
          floor: {op: maxpool, k: 3, stride: 2, from: input}
          avg: {op: avgpool, k: 3, stride: 1, pad: 1, count_include_pad: false, from: input}
          ada: {op: adaptive_maxpool, out: [2, 3], from: input}
        outputs: {ceil: ceil, floor: floor, avg: avg, ada: ada}
    """)
    # ceil((10 - 3) / 2) + 1 = 5; floor: (10 - 3) // 2 + 1 = 4
    assert inferred.shape("ceil") == (1, 5, 5)
    assert inferred.shape("floor") == (1, 4, 4)
    assert inferred.shape("avg") == (1, 10, 10)
    assert inferred.shape("ada") == (1, 2, 3)


def test_blocks_take_arguments_with_defaults():
    inferred = compiled("""
        input: [3, 8, 8]
        blocks:
          cbr:
            args: {out: ~, k: 1, eps: 0.001}
            body:
              conv: {op: conv, out: $out, k: $k, pad: "${k // 2}", bias: false}
              bn: {op: bn, eps: $eps}
              relu: {op: relu}
        graph:
          a: {block: cbr, out: 4}
          b: {block: cbr, out: 6, k: 3}
    """)
    assert inferred.graph.nodes["a.bn"].args["eps"] == 0.001
    assert inferred.graph.nodes["b.conv"].args["pad"] == 1
    # a: 4*3 + 8; b: 6*4*9 + 12
    assert inferred.total_params == 12 + 8 + 216 + 12


def test_repeat_with_index_override_and_index_variable():
    inferred = compiled("""
        input: [4, 16, 16]
        graph:
          stage:
            repeat: 3
            op: conv
            out: ${4 * (i + 1)}
            k: 3
            pad: 1
            at: {0: {stride: 2}, -1: {bias: false}}
    """)
    nodes = inferred.graph.nodes
    assert list(nodes) == ["stage.0", "stage.1", "stage.2"]
    assert nodes["stage.0"].args["stride"] == 2 and nodes["stage.1"].args["stride"] == 1
    assert nodes["stage.2"].args["bias"] is False
    assert inferred.shape("stage.2") == (12, 8, 8)


def test_expressions_compute_arguments():
    inferred = compiled("""
        args: {planes: 16, wide: true}
        input: [3, 4, 4]
        graph:
          c: {op: conv, k: 1, out: "${planes * (2 if wide else 1) + max(1, planes // 8)}"}
    """)
    assert inferred.shape("c")[0] == 16 * 2 + 2


def test_when_removes_a_node_and_the_chain_closes_over_it():
    text = """
        args: {extra: false}
        input: [2, 4, 4]
        graph:
          a: {op: conv, out: 3, k: 1}
          b: {op: conv, out: 5, k: 1, when: $extra}
          c: {op: relu}
    """
    off = compiled(text)
    assert "b" not in off.graph.nodes and off.graph.nodes["c"].inputs == ("a",)
    on = compiled(text, extra=True)
    assert on.graph.nodes["c"].inputs == ("b",)


def test_training_only_outputs_are_skipped_in_eval():
    net = archspec.build(spec("""
        input: [3, 8, 8]
        graph:
          trunk: {op: conv, out: 4, k: 3}
          pool: {op: adaptive_avgpool}
          flat: {op: flatten}
          head: {op: linear, out: 7}
          aux: {from: trunk, seq: [{op: adaptive_avgpool}, {op: flatten}, {op: linear, out: 7}]}
        outputs:
          logits: head
          aux: {from: aux, train_only: true}
    """))
    x = torch.randn(2, 3, 8, 8)
    logits, aux = net.train()(x)
    assert logits.shape == aux.shape == (2, 7)
    assert net.output_names(True) == ("logits", "aux")
    calls = []
    net.aux[2].register_forward_hook(lambda *a: calls.append(1))
    assert net.eval()(x).shape == (2, 7)
    assert calls == [] and "aux" not in net.code(training=False)


def test_file_args_are_overridden_by_keyword():
    text = """
        args: {n: 3}
        input: [2]
        graph: [{op: linear, out: $n}]
    """
    assert compiled(text).total_params == 2 * 3 + 3
    assert compiled(text, n=5).total_params == 2 * 5 + 5
    with pytest.raises(SpecError) as err:
        compiled(text, m=5)
    assert err.value.code == "E0601"
    with pytest.raises(SpecError) as err:
        compiled(text, n="five")
    assert err.value.code == "E0602"


def test_extends_merges_args_and_blocks(tmp_path):
    (tmp_path / "base.yaml").write_text(textwrap.dedent("""
        args: {n: 3, width: 4}
        input: [2, 4, 4]
        blocks:
          unit: {args: {w: ~}, body: {c: {op: conv, out: $w, k: 1}}}
        graph:
          u: {block: unit, w: $width}
          f: {op: flatten}
          fc: {op: linear, out: $n}
    """))
    (tmp_path / "child.yaml").write_text(textwrap.dedent("""
        extends: base.yaml
        args: {width: 6}
        blocks:
          unit: {args: {w: ~}, body: {c: {op: conv, out: $w, k: 1, bias: false}}}
    """))
    child = archspec.load(tmp_path / "child.yaml")
    assert dict(child.args) == {"n": 3, "width": 6}
    inferred = archspec.compile_spec(child).inferred
    # conv 6*2 (no bias) + linear 6*16*3 + 3
    assert inferred.total_params == 12 + 288 + 3


def test_expect_figures_are_checked():
    text = """
        input: [2]
        graph: [{op: linear, out: 3}]
        expect: {params: 10, output: [3]}
    """
    with pytest.raises(SpecError) as err:
        compiled(text)
    assert err.value.code == "E0701" and err.value.exit_code == 1
    assert "expected params 10, the spec gives 9" in str(err.value)


def test_build_on_the_meta_device_allocates_no_storage():
    net = archspec.build(spec("input: [3, 8, 8]\ngraph: [{op: conv, out: 4, k: 3}]"), device="meta")
    assert all(p.is_meta for p in net.parameters())


def test_build_in_a_dtype():
    net = archspec.build(spec("input: [3, 8, 8]\ngraph: [{op: conv, out: 4, k: 3}, {op: bn}]"),
                         dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in net.parameters())


def test_nodes_that_feed_no_output_are_dropped_with_a_warning():
    # API users get the warning through the warnings module, as archspec.SpecWarning.
    with pytest.warns(archspec.SpecWarning, match=r"warning\[W0308\]: node `unused` feeds no output") as caught:
        inferred = compiled("""
            input: [2]
            graph:
              used: {op: linear, out: 3}
              unused: {op: linear, out: 4, from: input}
            outputs: {y: used}
        """)
    assert caught[0].message.diagnostic.pos.line == 5
    assert list(inferred.graph.nodes) == ["used"]
    assert [w.code for w in inferred.graph.warnings] == ["W0308"]
    assert inferred.total_params == 9


def test_in_place_ops_never_overwrite_a_tensor_read_elsewhere():
    net = archspec.build(spec("""
        input: [2, 4, 4]
        graph:
          a: {op: conv, out: 3, k: 1}
          r: {op: relu}
          s: {op: add, from: [a, r]}
          t: {op: add, from: [s, r]}
          u: {op: relu, from: s}
          v: {op: add, from: [t, u]}
    """))
    x = torch.randn(2, 2, 4, 4)
    for training in (True, False):
        net.train(training)
        a = net.a(x)
        r = torch.relu(a)
        s = a + r
        expected = (s + r) + torch.relu(s)
        assert torch.allclose(net(x), expected)


@pytest.mark.parametrize("op, reference", [
    ("relu", torch.relu), ("relu6", nn.functional.relu6), ("silu", nn.functional.silu),
    ("gelu", nn.functional.gelu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh),
])
def test_activations_compute_what_pytorch_does(op, reference):
    net = archspec.build(spec(f"input: [3, 4, 4]\ngraph:\n  c: {{op: conv, out: 2, k: 1}}\n  a: {{op: {op}}}\n"))
    x = torch.randn(2, 3, 4, 4) * 4
    assert torch.allclose(net(x), reference(net.c(x)))


def test_pool_options_reach_pytorch():
    net = archspec.build(spec("""
        input: [2, 7, 7]
        graph:
          m: {op: maxpool, k: 3, stride: 2, pad: 1, ceil_mode: true}
          a: {op: avgpool, k: 3, stride: 2, pad: 1, ceil_mode: true, count_include_pad: false, from: input}
          g: {op: adaptive_maxpool, out: [2, 3], from: input}
        outputs: {m: m, a: a, g: g}
    """), verify=True)
    x = torch.randn(1, 2, 7, 7)
    m, a, g = net.eval()(x)
    F = nn.functional
    assert torch.equal(m, F.max_pool2d(x, 3, 2, 1, ceil_mode=True))
    assert torch.allclose(a, F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False))
    assert torch.equal(g, F.adaptive_max_pool2d(x, (2, 3)))


def test_window_arithmetic_matches_pytorch_everywhere():
    from archspec.ops.base import OpError, spatial_out

    F = nn.functional
    for size in range(1, 13):
        for k in (1, 2, 3, 5):
            for stride in (1, 2, 3):
                for pad in range(k // 2 + 1):
                    for ceil in (False, True):
                        try:
                            ours = spatial_out(size, k, stride, pad, 1, ceil)
                        except OpError:
                            ours = None
                        try:
                            theirs = F.max_pool2d(torch.zeros(1, 1, size, size), k, stride, pad,
                                                  ceil_mode=ceil).shape[-1] or None
                        except RuntimeError:
                            theirs = None
                        assert ours == theirs, (size, k, stride, pad, ceil)


def test_add_sums_every_input():
    net = archspec.build(spec("""
        input: [2, 4, 4]
        graph:
          r:
            add: [{}, {a: {op: relu}}, {b: {op: sigmoid}}]
          s: {op: add, from: [input, a, b, r]}
    """), verify=True)
    x = torch.randn(1, 2, 4, 4)
    r = x + torch.relu(x) + torch.sigmoid(x)
    for training in (True, False):
        assert torch.allclose(net.train(training)(x), x + torch.relu(x) + torch.sigmoid(x) + r)


def test_in_place_ops_respect_views_of_a_tensor():
    net = archspec.build(spec("""
        input: [2, 3, 3]
        graph:
          c: {op: conv, out: 2, k: 1}
          f: {op: flatten}
          r: {op: relu}
        outputs: {y: r, feat: c}
    """))
    x = torch.randn(1, 2, 3, 3)
    for training in (True, False):
        y, feat = net.train(training)(x)
        assert torch.allclose(feat, net.c(x))
        assert torch.allclose(y, torch.relu(net.c(x)).flatten(1))


def test_local_names_win_over_top_level_names():
    inferred = compiled("""
        input: [4, 8, 8]
        blocks:
          unit:
            body:
              c1: {op: conv, out: 4, k: 1}
              r: {op: relu}
              s: {op: add, from: [r, c1]}
        graph:
          c1: {op: conv, out: 4, k: 3, pad: 1}
          u: {block: unit}
    """)
    assert inferred.graph.nodes["u.s"].inputs == ("u.r", "u.c1")


def test_overrides_accumulate_on_a_loaded_spec():
    text = """
        args: {n: 3, m: 2}
        input: [2]
        graph: [{op: linear, out: $n}, {op: linear, out: $m}]
    """
    loaded = spec(text, n=5, input_shape=[4])
    again = loaded.with_overrides(m=7)
    assert dict(again.args) == {"n": 5, "m": 7} and again.input_shape == (4,)
    # 4*5 + 5 and 5*7 + 7
    assert archspec.summarize(loaded, m=7).total_params == 25 + 42


def test_node_names_taken_by_torch_are_refused():
    from archspec.builder import CompiledNetwork, Namespace
    from archspec.expand import TAKEN_BY_TORCH

    public = {n for cls in (nn.Module, CompiledNetwork, Namespace) for n in dir(cls) if not n.startswith("_")}
    public |= {n for n in vars(CompiledNetwork("x", {})) if not n.startswith("_")}
    assert public <= TAKEN_BY_TORCH
    with pytest.raises(SpecError) as err:
        compiled("input: [3, 4, 4]\ngraph:\n  type: {op: conv, out: 2, k: 1}\n")
    assert err.value.code == "E0408" and "`type`" in str(err.value)


def test_names_resolve_locally_then_fully_qualified_for_nodes_blocks_and_seqs():
    inferred = compiled("""
        input: [3, 8, 8]
        blocks:
          unit:
            body:
              conv: {op: conv, out: 4, k: 1}
          reader:
            body:
              plain: {op: relu, from: stem}            # a top-level plain node
              block: {op: relu, from: first}           # a top-level block, by its name
              inner: {op: relu, from: first.conv}      # a node inside it, fully qualified
              seqd: {op: relu, from: chain}            # a top-level seq
              both: {add: [~, [{op: relu}]], from: in}
        graph:
          stem: {op: conv, out: 4, k: 1}
          first: {block: unit}
          chain: [{op: relu}]
          r: {block: reader, from: stem}
        outputs: {a: r.plain, b: r.block, c: r.inner, d: r.seqd, e: r.both}
    """)
    inputs = {name: inferred.graph.nodes[name].inputs for name in ("r.plain", "r.block", "r.inner", "r.seqd")}
    assert inputs == {"r.plain": ("stem",), "r.block": ("first.conv",), "r.inner": ("first.conv",),
                      "r.seqd": ("chain.0",)}


def test_an_unknown_name_inside_a_block_hints_at_the_qualified_form():
    with pytest.raises(SpecError) as err:
        compiled("""
            input: [3, 8, 8]
            blocks:
              reader:
                body:
                  x: {op: relu, from: conv9}
            graph:
              r: {block: reader}
        """)
    (d,) = err.value.diagnostics
    assert d.code == "E0305" and "named in full from the top, as in `layer1.0.relu`" in d.hint


def test_lists_number_their_items_as_nn_sequential_does():
    # torchvision's make_layers: conv, (bn,) relu per convolution, a pool per stage,
    # all appended to one nn.Sequential. Items switched off take no number, a repeat
    # spreads its copies over the next numbers, and splice inserts its items.
    text = """
        args: {bn: true}
        input: [3, 16, 16]
        graph:
          features:
            - repeat: 2
              as: stage
              splice:
                - repeat: "${stage + 1}"
                  splice:
                    - {op: conv, out: "${4 * (stage + 1)}", k: 3, pad: 1}
                    - {op: bn, when: $bn}
                    - {op: relu}
                - {op: maxpool, k: 2}
            - {op: relu, name: last}
    """
    # stage 0: one conv unit (0-2) and its pool (3); stage 1: two units (4-9), pool 10
    nodes = compiled(text).graph.nodes
    assert list(nodes) == [f"features.{n}" for n in [*range(11), "last"]]
    assert [nodes[f"features.{n}"].op for n in (0, 1, 2, 3, 4, 7, 10)] == \
        ["conv", "bn", "relu", "maxpool", "conv", "conv", "maxpool"]
    # Without batch norm every convolution takes two places: pools at 2 and 2 + 2 * 2 + 1.
    plain = compiled(text, bn=False).graph.nodes
    assert [n for n in plain if plain[n].op == "maxpool"] == ["features.2", "features.7"]


def test_a_repeat_in_a_list_takes_the_next_numbers_and_a_nested_list_is_a_namespace():
    nodes = compiled("""
        input: [3, 8, 8]
        graph:
          layers:
            - {op: conv, out: 4, k: 1}
            - {repeat: 2, op: conv, out: 4, k: 1}
            - [{repeat: 3, op: relu}]
            - {op: conv, out: 2, k: 1, when: false}
            - {op: conv, out: 2, k: 1}
    """).graph.nodes
    assert list(nodes) == ["layers.0", "layers.1", "layers.2", "layers.3.0", "layers.3.1", "layers.3.2", "layers.4"]


def test_splice_belongs_in_a_list_and_as_to_a_repeat():
    for text, words in (("input: [3, 8, 8]\ngraph:\n  a: {splice: [{op: relu}]}\n", "`splice:` inserts items into a list"),
                        ("input: [3, 8, 8]\ngraph:\n  a: {op: relu, as: j}\n", "`as:` only applies to a node with `repeat:`")):
        with pytest.raises(SpecError) as err:
            compiled(text)
        assert err.value.code == "E0408" and words in str(err.value), str(err.value)
