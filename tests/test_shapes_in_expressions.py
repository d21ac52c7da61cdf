"""Shapes in expressions: `in_shape`, `in_channels` and `shape('node')`, and the width
rounding functions, on small specs whose figures are worked by hand."""
import textwrap

import pytest
import torch

import archspec
from archspec import SpecError
from archspec.expressions import make_divisible, resolve


def compiled(text, **overrides):
    return archspec.compile_spec(archspec.loads(textwrap.dedent(text), **overrides)).inferred


# An inverted residual in one block: the shortcut exists exactly when the input's
# shape allows it, and the expansion width comes from the input (MobileNetV2).
INVERTED_RESIDUAL = """
    input: [16, 8, 8]
    blocks:
      inverted:
        args: {out: ~, stride: 1, expand: 6, hidden: "${in_channels * expand}"}
        body:
          res:
            add:
              - shortcut: {op: identity, when: "${stride == 1 and in_channels == out}"}
              - conv:
                  - {op: conv, out: $hidden, k: 1, bias: false}
                  - {op: conv, k: 3, pad: 1, stride: $stride, depthwise: true, bias: false}
                  - {op: conv, out: $out, k: 1, bias: false}
    graph:
      same: {block: inverted, out: 16}
      wider: {block: inverted, out: 24}
      down: {block: inverted, out: 24, stride: 2}
"""


def test_a_block_reads_its_input_channels_and_keeps_a_shortcut_only_where_shapes_allow():
    inferred = compiled(INVERTED_RESIDUAL)
    nodes = inferred.graph.nodes
    # `same` keeps 16 channels at stride 1: an add of the shortcut and the body.
    assert nodes["same.res"].op == "add"
    # `wider` changes the channels and `down` the size: the body alone, no add node.
    assert "wider.res" not in nodes and "down.res" not in nodes
    assert inferred.shape("wider.conv.2") == (24, 8, 8) and inferred.shape("down.conv.2") == (24, 4, 4)
    # hidden = in_channels * 6: 16*6 = 96 for the first two, 24*6 = 144 for `down`
    assert inferred.shape("same.conv.0") == (96, 8, 8) and inferred.shape("down.conv.0") == (144, 8, 8)
    # params: same 16*96 + 96*9 + 96*16; wider 16*96 + 96*9 + 96*24; down 24*144 + 144*9 + 144*24
    assert inferred.total_params == (1536 + 864 + 1536) + (1536 + 864 + 2304) + (3456 + 1296 + 3456)

    net = archspec.build(archspec.loads(textwrap.dedent(INVERTED_RESIDUAL)), verify=True).eval()
    body = lambda block, x: block.conv[2](block.conv[1](block.conv[0](x)))
    x = torch.randn(2, 16, 8, 8)
    with torch.no_grad():
        same = x + body(net.same, x)
        expected = body(net.down, body(net.wider, same))
        assert torch.allclose(net(x), expected, atol=1e-5)


def test_transition_width_and_squeeze_width_come_from_the_input():
    inferred = compiled("""
        input: [256, 14, 14]
        blocks:
          transition:
            body:
              conv: {op: conv, out: "${in_channels // 2}", k: 1}
          squeeze:
            args: {width: "${make_divisible(in_channels // 4, 8)}"}
            body:
              pool: {op: adaptive_avgpool}
              fc1: {op: conv, out: $width, k: 1}
        graph:
          t: {block: transition}
          se: {block: squeeze}
    """)
    assert inferred.shape("t.conv") == (128, 14, 14)
    # make_divisible(128 // 4, 8) = 32
    assert inferred.shape("se.fc1") == (32, 1, 1)


def test_shape_of_a_named_node_and_of_the_network_input():
    inferred = compiled("""
        input: [3, 20, 24]
        graph:
          stem: {op: conv, out: 8, k: 3, stride: 2}
          pool: {op: adaptive_avgpool, out: "${[shape('stem')[1] // 3, in_shape[2] // 4]}"}
    """)
    # stem: (20 - 3) // 2 + 1 = 9, so 9 // 3 = 3; the input's width 24 // 4 = 6
    assert inferred.shape("pool") == (8, 3, 6)


def test_repeat_copies_each_read_their_own_input():
    inferred = compiled("""
        input: [4, 8, 8]
        graph:
          grow:
            repeat: 3
            op: conv
            out: "${in_channels * 2}"
            k: 1
    """)
    assert [inferred.shape(f"grow.{i}")[0] for i in range(3)] == [8, 16, 32]


def test_a_shape_not_known_yet_is_a_located_error():
    with pytest.raises(SpecError) as err:
        compiled("""
            input: [3, 8, 8]
            graph:
              a: {op: conv, out: "${shape('b')[0]}", k: 1}
              b: {op: conv, out: 4, k: 1, from: input}
        """)
    (d,) = err.value.diagnostics
    assert (d.code, d.pos.line, d.pos.col) == ("E0315", 4, 22)
    assert "not known yet" in d.message


def test_a_shape_read_after_residual_blocks_waits_on_each_body_once():
    # Two residual blocks in a row, then a block reading its input's channels. Inferring
    # that input walks back through both blocks: each shortcut and the body it skips
    # wait on the same node (a diamond, not a cycle).
    inferred = compiled("""
        input: [4, 8, 8]
        blocks:
          residual:
            body:
              sum:
                add:
                  - body: {op: conv, out: 8, k: 1}
                  - shortcut: {op: project, from: [in, body]}
          head:
            body:
              - {op: conv, out: "${in_channels // 4}", k: 1}
        graph:
          a: {block: residual}
          b: {block: residual}
          head: {block: head}
    """)
    assert inferred.shape("head.0") == (2, 8, 8)  # 8 // 4


def test_a_shape_that_depends_on_itself_is_a_located_error():
    with pytest.raises(SpecError) as err:
        compiled("""
            input: [3, 8, 8]
            blocks:
              head:
                body:
                  - {op: conv, out: "${in_channels}", k: 1}
            graph:
              x: {op: add, from: [input, y]}
              y: {op: relu, from: x}
              head: {block: head}
        """)
    assert err.value.diagnostics[0].code == "E0315"
    assert "depends on itself" in err.value.diagnostics[0].message


def test_width_rounding_matches_torchvision():
    from torchvision.models._utils import _make_divisible

    for value in (3.2, 8, 15.9, 16 * 0.75, 24 * 1.3, 40 * 0.35, 1280 * 1.1, 4, 11.9):
        for divisor in (8, 4, 1):
            assert make_divisible(value, divisor) == _make_divisible(value, divisor), (value, divisor)
    assert resolve("${make_divisible(16 * 0.35, 8, 16)}", {}) == _make_divisible(16 * 0.35, 8, 16)
    # Ultralytics rounds widths up: math.ceil(x / 8) * 8 (ultralytics.utils.ops.make_divisible)
    assert resolve("${round_up(64 * 0.25, 8)}", {}) == 16 and resolve("${round_up(1024 * 0.33, 8)}", {}) == 344
