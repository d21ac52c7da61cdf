"""`archspec draw`: what each format shows (shapes, figures, folding, a residual's two
edges, a concat's branches, training-only parts), its errors, and the HTML page as
headless Chromium displays it.

Expected figures are arithmetic shown beside them (torchvision's layers: a conv has
in x out x kh x kw weights and as many MACs per output position; a BN 2 x out
parameters and, as FlopCounterMode counts, no MACs) or REFERENCE.md's."""
from __future__ import annotations

import hashlib
import base64
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

import archspec
from archspec.cli import main
from archspec.draw import render
from browser import Page, dump_dom, need
from conftest import ROOT, SPECS

RESNET18 = str(SPECS / "resnet18.yaml")
INCEPTION = str(SPECS / "inception_v3.yaml")


def conv_bn(cin, cout, kh, kw=None):
    """Parameters of torchvision's BasicConv2d: a conv without bias, then BN."""
    return cin * cout * kh * (kw or kh) + 2 * cout


# Inception v3's Mixed_5b on its 192x35x35 input (torchvision InceptionA, pool_features=32).
MIXED_5B = {"branch1x1": (192, 64, 1), "branch5x5_1": (192, 48, 1), "branch5x5_2": (48, 64, 5),
            "branch3x3dbl_1": (192, 64, 1), "branch3x3dbl_2": (64, 96, 3), "branch3x3dbl_3": (96, 96, 3),
            "branch_pool": (192, 32, 1)}
MIXED_5B_PARAMS = sum(conv_bn(*c) for c in MIXED_5B.values())                      # 255,904
MIXED_5B_MACS = sum(cin * cout * k * k for cin, cout, k in MIXED_5B.values()) * 35 * 35  # 312,345,600
# ResNet-18's layer1: two basic blocks, each two 3x3 64->64 convs and two BNs, at 56x56.
LAYER1_PARAMS = 2 * (2 * 64 * 64 * 9 + 2 * 2 * 64)  # 147,968
LAYER1_MACS = 4 * 64 * 64 * 9 * 56 * 56             # 462,422,016


def draw(argv, capsys) -> tuple[int, str, str]:
    rc = main(["draw", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


# -- DOT and Mermaid as text ------------------------------------------------------

def parse_dot(text: str):
    """Boxes (id -> attributes), clusters (name -> label) and edges of our DOT."""
    attrs = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    boxes = {m[1]: dict(attrs.findall(m[2])) for m in re.finditer(r'^\s*"([^"]+)" \[(.*)\];$', text, re.M)}
    clusters = {m[1]: m[2] for m in re.finditer(r'subgraph "cluster_([^"]+)" \{\n\s*label="((?:[^"\\]|\\.)*)"', text)}
    edges = [(m[1], m[2], m[3] or "") for m in re.finditer(r'^\s*"([^"]+)" -> "([^"]+)"(.*);$', text, re.M)]
    return boxes, clusters, edges


def parse_mermaid(text: str):
    labels = {m[1]: m[2] for m in re.finditer(r'^\s*(?:subgraph )?(n\d+)\["(.*)"\]$', text, re.M)}
    edges = [(labels[m[1]], m[2], labels[m[3]]) for m in re.finditer(r"^\s*(n\d+) (-->|-\.->) (n\d+)$", text, re.M)]
    classes = {m[2]: [labels[i] for i in m[1].split(",")] for m in re.finditer(r"^\s*class (\S+) (\w+)$", text, re.M)}
    return labels, edges, classes


def test_mermaid_folds_resnet18_to_its_stages(capsys):
    rc, out, _ = draw([RESNET18, "--format", "mermaid", "--depth", "1"], capsys)
    assert rc == 0 and out.startswith("flowchart TD\n")
    labels, edges, classes = parse_mermaid(out)
    by_title = {label.split("<br/>")[0]: label.split("<br/>")[1:] for label in labels.values()}
    assert by_title["layer1: repeat x2"] == ["64x56x56", f"{LAYER1_PARAMS:,} params · {LAYER1_MACS:,} MACs"]
    assert by_title["conv1: conv"] == ["64x112x112", "9,408 params · 118,013,952 MACs"]  # 3*64*49; x 112*112
    assert by_title["layer4: repeat x2"][0] == "512x7x7" and by_title["input"] == ["3x224x224"]
    assert not any("layer1.0" in label or title.startswith("0: basic") for title, label in by_title.items())
    chain = [a.split("<br/>")[0] + " > " + b.split("<br/>")[0] for a, _, b in edges]
    assert chain[:6] == ["input > conv1: conv", "conv1: conv > bn1: bn", "bn1: bn > relu", "relu > maxpool",
                         "maxpool > layer1: repeat x2", "layer1: repeat x2 > layer2: repeat x2"]
    assert len(classes["block"]) == 4 and "trainOnly" not in classes


def test_dot_draws_a_residual_with_its_two_edges(capsys):
    rc, out, _ = draw([RESNET18, "--format", "dot"], capsys)
    assert rc == 0
    boxes, clusters, edges = parse_dot(out)
    pairs = {(a, b) for a, b, _ in edges}
    # the body and the shortcut both read the block's input and meet at the add
    assert {("maxpool", "layer1.0.conv1"), ("maxpool", "layer1.0.downsample"),
            ("layer1.0.bn2", "layer1.0.residual"), ("layer1.0.downsample", "layer1.0.residual")} <= pairs
    # the projection's second input only lends its shape: no data flows there
    assert ("layer1.0.bn2", "layer1.0.downsample") not in pairs
    assert boxes["layer1.0.downsample"]["label"] == r"downsample: identity\n64x56x56"
    # layer2.0's shortcut projects 64 -> 128 channels with a stride-2 1x1 conv and a BN
    assert boxes["layer2.0.downsample"]["label"] == (
        rf"downsample: project\n128x28x28\n{64 * 128 + 2 * 128:,} params · {64 * 128 * 28 * 28:,} MACs")
    assert clusters["layer1"].startswith(r"layer1: repeat x2\l64x56x56\l" + f"{LAYER1_PARAMS:,} params")
    assert "layer1.0" in clusters and len(boxes) == 71 + 2  # every node, the input and the output


def test_dot_draws_inception_branches_into_their_concat(capsys):
    rc, out, _ = draw([INCEPTION, "--format", "dot", "--depth", "2"], capsys)
    assert rc == 0
    boxes, clusters, edges = parse_dot(out)
    pairs = {(a, b) for a, b, _ in edges}
    starts = ["Mixed_5b.branch1x1", "Mixed_5b.branch5x5_1", "Mixed_5b.branch3x3dbl_1", "Mixed_5b.pool"]
    ends = ["Mixed_5b.branch1x1", "Mixed_5b.branch5x5_2", "Mixed_5b.branch3x3dbl_3", "Mixed_5b.branch_pool"]
    assert {("maxpool2", s) for s in starts} <= pairs
    assert sorted(a for a, b in pairs if b == "Mixed_5b.cat") == sorted(ends)
    assert clusters["Mixed_5b"] == (r"Mixed_5b: inception_a\l256x35x35\l"
                                    f"{MIXED_5B_PARAMS:,} params · {MIXED_5B_MACS:,} MACs\\l")
    for branch, (cin, cout, k) in MIXED_5B.items():  # folded at depth 2: one box each, summed
        assert boxes[f"Mixed_5b.{branch}"]["shape"] == "box3d"
        assert f"{conv_bn(cin, cout, k):,} params" in boxes[f"Mixed_5b.{branch}"]["label"]
    assert "Mixed_5b.branch1x1.conv" not in boxes


def test_training_only_parts_are_dashed(capsys):
    rc, out, _ = draw([INCEPTION, "--format", "dot", "--depth", "1"], capsys)
    assert rc == 0
    boxes, _, edges = parse_dot(out)
    assert "dashed" in boxes["AuxLogits"]["style"] and "training only" in boxes["AuxLogits"]["label"]
    assert "dashed" in boxes["output:aux"]["style"] and "dashed" not in boxes["output:logits"]["style"]
    assert "dashed" not in boxes["Mixed_6e"]["style"]
    # the aux head: 768*128 + 2*128 (1x1 conv, BN), 128*768*25 + 2*768 (5x5), 768*1000 + 1000 (fc)
    assert f"{98_560 + 2_459_136 + 769_000:,} params" in boxes["AuxLogits"]["label"]
    assert [s for a, b, s in edges if (a, b) == ("Mixed_6e", "AuxLogits")] == [' [style=dashed, color="#8a8a8a"]']
    rc, out, _ = draw([INCEPTION, "--format", "mermaid", "--depth", "1"], capsys)
    labels, edges, classes = parse_mermaid(out)
    assert [label.split("<br/>")[0] for label in classes["trainOnly"]] == ["AuxLogits: inception_aux", "output aux"]
    assert [arrow for a, arrow, b in edges if b.startswith("AuxLogits")] == ["-.->"]


def test_folded_boxes_carry_the_summary_figures(capsys):
    """Every box at --depth 2 has the figures of the summary's folded row; together
    they hold ResNet-50's 25,557,032 parameters (REFERENCE.md)."""
    boxes, _, _ = parse_dot(render(SPECS / "resnet50.yaml", "dot", depth=2))
    rows = archspec.summarize(SPECS / "resnet50.yaml", depth=2).rows
    assert sorted(boxes) == sorted([r.name for r in rows] + ["input", "output:output"])
    for row in rows:
        lines = boxes[row.name]["label"].split(r"\n")
        assert lines[1] == "x".join(map(str, row.shape[1:])), row.name
        if row.params or row.macs:
            assert f"{row.params:,} params" in lines[2] or not row.params, row.name
            assert f"{row.macs:,} MACs" in lines[2] or not row.macs, row.name
    total = sum(int(m[1].replace(",", "")) for b in boxes.values() for m in re.finditer(r"([\d,]+) params", b["label"]))
    assert total == 25_557_032


def test_set_input_and_scale_reach_the_drawing(capsys):
    rc, out, _ = draw([RESNET18, "--format", "mermaid", "--depth", "1", "--set", "num_classes=10",
                       "--input", "3x64x64"], capsys)
    assert rc == 0
    labels, _, _ = parse_mermaid(out)
    assert "input<br/>3x64x64" in labels.values()
    assert "fc: linear<br/>10<br/>5,130 params · 5,120 MACs" in labels.values()  # 512*10 + 10
    rc, _, err = draw([RESNET18, "--format", "dot", "--scale", "huge"], capsys)
    assert rc == 2 and "error[E0607]" in err


def test_drawing_builds_nothing(monkeypatch):
    import archspec.builder

    def refuse(*args, **kwargs):
        raise AssertionError("draw built the network")

    monkeypatch.setattr(archspec.builder, "build_module", refuse)
    assert render(INCEPTION, "mermaid").startswith("flowchart TD")


# -- output files and errors ------------------------------------------------------

def test_output_file_is_written_whole_or_not_at_all(tmp_path, capsys):
    target = tmp_path / "r18.mmd"  # the format follows the extension
    target.write_text("keep me")
    bad = tmp_path / "bad.yaml"
    bad.write_text("archspec: 1\ninput: [3, 8, 8]\ngraph:\n  conv: {op: conv, out: 4, k: 9}\n")
    rc, _, err = draw([str(bad), "-o", str(target)], capsys)
    assert rc == 2 and "error[E0404]" in err and target.read_text() == "keep me"
    rc, out, _ = draw([RESNET18, "--depth", "1", "-o", str(target)], capsys)
    assert rc == 0 and out == f"wrote {target}\n" and target.read_text().startswith("flowchart TD")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "r18.mmd"]  # no temporary left
    rc, _, err = draw([RESNET18, "-o", str(tmp_path / "no" / "dir" / "x.dot")], capsys)
    assert rc == 2 and "error[E0605]: cannot write" in err
    rc, _, err = draw([RESNET18, "-o", str(tmp_path / "r18.png")], capsys)
    assert rc == 2 and "error[E0604]: cannot tell the drawing format" in err and "--format" in err
    rc, _, err = draw([RESNET18, "--format", "dot", "--depth", "0"], capsys)
    assert rc == 2 and "error[E0604]: depth must be a whole number" in err


def test_svg_without_graphviz_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` anywhere
    target = tmp_path / "r18.svg"
    rc, out, err = draw([RESNET18, "-o", str(target)], capsys)
    assert rc == 2 and out == "" and not target.exists()
    assert err.startswith("archspec: error[E0610]: --format svg needs Graphviz's `dot` program")
    assert "apt-get install graphviz" in err and "brew install graphviz" in err and "conda" in err
    assert "Traceback" not in err
    rc, out, _ = draw([RESNET18, "--format", "dot"], capsys)  # the text formats need nothing
    assert rc == 0 and out.startswith('digraph "resnet18"')


def test_graphviz_failure_is_reported(tmp_path, capsys, monkeypatch):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    rc, _, err = draw([RESNET18, "--format", "svg"], capsys)
    assert rc == 2 and "error[E0611]: Graphviz `dot`" in err and "status 3: Error: syntax error in line 1" in err


def test_svg_and_html_ask_for_a_file_on_a_terminal(tmp_path):
    """Written to a terminal, a page of markup helps nobody: E0612 asks for -o."""
    import pty

    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "archspec", "draw", RESNET18, "--format", "html"],
                              stdout=follower, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert done.stderr.startswith("archspec: error[E0612]: --format html writes a file, not terminal text")
    assert "-o resnet18.html" in done.stderr


def test_svg_is_laid_out_by_graphviz(tmp_path, capsys):
    need("dot")
    rc, out, _ = draw([INCEPTION, "--depth", "2", "--format", "svg"], capsys)  # stdout is no terminal here
    assert rc == 0
    svg = ET.fromstring(out)
    texts = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
    assert f"{MIXED_5B_PARAMS:,} params · {MIXED_5B_MACS:,} MACs" in texts
    assert "training only" in texts and "AuxLogits: inception_aux" in texts
    # the unfolded DOT of the largest shipped network is valid: dot renders it
    dot_text = render(SPECS / "resnet152.yaml", "dot")
    done = subprocess.run([need("dot"), "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert done.stdout.count('class="node"') == len(parse_dot(dot_text)[0])


# -- the HTML page ----------------------------------------------------------------

def test_html_page_is_self_contained(tmp_path, capsys):
    target = tmp_path / "inception.html"
    rc, _, _ = draw([INCEPTION, "-o", str(target)], capsys)
    assert rc == 0
    page = target.read_text(encoding="utf-8")
    assert not re.search(r"<link|<script[^>]* src=|<img|<iframe|@import|url\((?!#)|https?://(?!www\.w3\.org/2000/svg)", page)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)[1]
    script = re.search(r"<script>(.*?)</script>", page, re.S)[1]
    style = re.search(r"<style>(.*?)</style>", page, re.S)[1]

    def digest(text):
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    # nothing but the page's own script and style may run or load
    assert policy == (f"default-src 'none'; script-src '{digest(script)}'; style-src '{digest(style)}'; "
                      "img-src data:")


@pytest.fixture(scope="module")
def inception_page(tmp_path_factory):
    need("chromium")
    path = tmp_path_factory.mktemp("page") / "inception_v3.html"
    path.write_text(render(INCEPTION, "html"), encoding="utf-8")
    return path


def test_page_opens_with_blocks_folded(inception_page):
    page = Page(dump_dom(inception_page))
    assert page.body.get("data-ready") == "1" and "data-error" not in page.body
    assert {"closed", "block"} <= page.boxes["Mixed_5b"]["class"]
    assert page.text("Mixed_5b") == (f"▸ Mixed_5b : inception_a 256x35x35 "
                                     f"{MIXED_5B_PARAMS:,} params · {MIXED_5B_MACS:,} MACs")
    assert not any(name.startswith("Mixed_5b.") for name in page.boxes)
    assert "train" in page.boxes["AuxLogits"]["class"] and "training only" in page.text("AuxLogits")
    assert "train" in page.boxes["output:aux"]["class"] and "train" not in page.boxes["Mixed_6e"]["class"]
    assert ("maxpool2", "Mixed_5b", "edge") in page.edges and ("Mixed_6e", "AuxLogits", "edge train") in page.edges


def test_clicking_a_block_unfolds_one_level(inception_page):
    page = Page(dump_dom(inception_page, "expand=Mixed_5b"))
    assert page.notes == "" and "data-error" not in page.body
    assert {"open", "block"} <= page.boxes["Mixed_5b"]["class"]
    assert page.text("Mixed_5b") == (f"▾ Mixed_5b : inception_a 256x35x35 · "
                                     f"{MIXED_5B_PARAMS:,} params · {MIXED_5B_MACS:,} MACs")
    children = {name for name in page.boxes if name.startswith("Mixed_5b.")}
    assert children == {f"Mixed_5b.{b}" for b in MIXED_5B} | {"Mixed_5b.pool", "Mixed_5b.cat"}
    for branch, (cin, cout, k) in MIXED_5B.items():  # folded one level down, with their figures
        assert page.text(f"Mixed_5b.{branch}") == (f"▸ {branch} : conv_bn {cout}x35x35 "
                                                   f"{conv_bn(cin, cout, k):,} params · "
                                                   f"{cin * cout * k * k * 35 * 35:,} MACs")
    assert page.text("Mixed_5b.pool") == "pool : avgpool 192x35x35"
    assert page.text("Mixed_5b.cat") == "cat : concat 256x35x35"  # 64 + 64 + 96 + 32 channels
    inside = {(a, b) for a, b, _ in page.edges if a.startswith("Mixed_5b") or b.startswith("Mixed_5b")}
    # the four branches leave the block's input and meet at the concat
    assert {b for a, b in inside if a == "Mixed_5b:in"} == {
        "Mixed_5b.branch1x1", "Mixed_5b.branch5x5_1", "Mixed_5b.branch3x3dbl_1", "Mixed_5b.pool"}
    assert {a for a, b in inside if b == "Mixed_5b.cat"} == {
        "Mixed_5b.branch1x1", "Mixed_5b.branch5x5_2", "Mixed_5b.branch3x3dbl_3", "Mixed_5b.branch_pool"}
    assert ("Mixed_5b.cat", "Mixed_5b:out") in inside and ("maxpool2", "Mixed_5b") in inside
    # the figures are the summary's, folded as `summary --depth` folds them
    rows = {r.name: r for r in archspec.summarize(INCEPTION, depth=2).rows}
    assert rows["Mixed_5b.branch5x5_2"].params == conv_bn(48, 64, 5)
    assert f"{rows['Mixed_5b.branch5x5_2'].macs:,} MACs" in page.text("Mixed_5b.branch5x5_2")


def test_page_draws_a_residual_and_folds_on_a_second_click(tmp_path):
    path = tmp_path / "resnet18.html"
    path.write_text(render(RESNET18, "html"), encoding="utf-8")
    page = Page(dump_dom(path, "expand=layer1,layer1.0,layer2,layer2.0,layer2,layer9"))
    assert page.notes == "No block to click named layer9."  # a wrong name is said, not ignored
    assert "closed" in page.boxes["layer2"]["class"]  # unfolded, then folded with what it held
    assert not any(name.startswith("layer2.") for name in page.boxes)
    edges = {(a, b) for a, b, _ in page.edges}
    assert {("layer1:in", "layer1.0"), ("layer1.0:in", "layer1.0.conv1"), ("layer1.0:in", "layer1.0.downsample"),
            ("layer1.0.bn2", "layer1.0.residual"), ("layer1.0.downsample", "layer1.0.residual"),
            ("layer1.0", "layer1.1"), ("layer1.1", "layer1:out")} <= edges
    assert ("layer1.0.bn2", "layer1.0.downsample") not in edges
    assert page.text("layer1.0.downsample") == "downsample : identity 64x56x56"
    assert page.text("layer1") == f"▾ layer1 : repeat x2 64x56x56 · {LAYER1_PARAMS:,} params · {LAYER1_MACS:,} MACs"
