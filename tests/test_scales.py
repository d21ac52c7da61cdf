"""Named scales: a table of arg values chosen with --scale / scale=, and one summary
row per scale."""
import textwrap

import pytest

import archspec
from archspec.cli import main

# A family whose members differ in width and depth, as a builder's suffixes would.
FAMILY = """\
    archspec: 1
    name: tiny
    args: {width: 8, depth: 1, size: 16, classes: 10}
    scales:
      s: {width: 4, depth: 1}
      m: {width: 8, depth: 2, size: 24}
      l: {width: "${8 * 2}", depth: 3, size: 32}
    input: [3, $size, $size]
    graph:
      stages: {repeat: $depth, op: conv, out: $width, k: 3, pad: 1}
      pool: {op: adaptive_avgpool}
      flat: {op: flatten}
      fc: {op: linear, out: $classes}
    expect:
      params: 842            # 3*8*9 + 8 conv, 8*10 + 10 fc: the spec as written
      output: [$classes]
"""


@pytest.fixture
def family(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(textwrap.dedent(FAMILY))
    return path


def conv_params(cin, cout):
    return cin * cout * 9 + cout


@pytest.mark.parametrize("scale, width, depth, size", [("s", 4, 1, 16), ("m", 8, 2, 24), ("l", 16, 3, 32)])
def test_a_scale_sets_its_args(family, scale, width, depth, size):
    summary = archspec.summarize(family, scale=scale)
    convs = conv_params(3, width) + (depth - 1) * conv_params(width, width)
    assert summary.total_params == convs + width * 10 + 10
    assert summary.input_shape == (3, size, size) and summary.scale == scale


def test_set_applies_after_the_scale(family):
    summary = archspec.summarize(family, scale="m", width=4)
    assert summary.total_params == conv_params(3, 4) + conv_params(4, 4) + 4 * 10 + 10


def test_a_scale_is_a_variant_so_literal_figures_are_not_checked(family, capsys):
    assert main(["build", str(family), "--scale", "m"]) == 0
    out = capsys.readouterr().out
    assert "expect: 1 figure written as expressions hold; 1 literal figure describe the spec as written" in out


def test_a_child_spec_is_one_scale_of_its_family(family, tmp_path):
    (tmp_path / "tiny_l.yaml").write_text("archspec: 1\nextends: tiny.yaml\nname: tiny_l\nscale: l\n"
                                          "expect: {params: 5258}  # 3*16*9+16 + 2*(16*16*9+16) + 16*10+10\n")
    compiled = archspec.compile_spec(tmp_path / "tiny_l.yaml")
    assert compiled.spec.scale == "l" and not compiled.spec.is_variant
    assert compiled.expect.checked == 1 and compiled.inferred.total_params == 5258


def test_summary_scales_prints_one_row_per_scale(family, capsys):
    assert main(["summary", str(family), "--scales"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.startswith(("s ", "m ", "l "))]
    assert [row[0] for row in rows] == ["s", "m", "l"]
    assert rows[1][1] == f"{conv_params(3, 8) + conv_params(8, 8) + 90:,}" and rows[1][3] == "[3,"


def test_unknown_scale_on_the_command_line(family, capsys):
    assert main(["summary", str(family), "--scale", "xl"]) == 2
    err = capsys.readouterr().err
    assert "error[E0607]: " in err and "has no scale `xl`" in err and "its scales: s, m, l" in err
