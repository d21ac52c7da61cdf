"""`archspec diff`: two specs compared by qualified names, blocks grouped, checkpoint
compatibility read from both state-dict layouts. Expected keys and shapes come from
torchvision's own models built on the meta device; parameter counts from REFERENCE.md."""
import json
import re

import pytest
import torch
import torchvision

from archspec.cli import _DIFF_EPILOG, main
from archspec.diff import compare
from conftest import ROOT, SPECS

R50, R101 = SPECS / "resnet50.yaml", SPECS / "resnet101.yaml"


def torchvision_layout(builder, **kwargs) -> dict:
    with torch.device("meta"):
        model = getattr(torchvision.models, builder)(weights=None, **kwargs)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def r50_r101():
    return compare(R50, R101)


def test_resnet50_to_101_grows_layer3_by_17_blocks(r50_r101):
    d = r50_r101
    assert [(r.first, r.last, r.count, r.kind) for r in d.added] == [("layer3.6", "layer3.22", 17, "bottleneck")]
    assert d.removed == () and d.changed == ()
    assert d.relabelled == (("layer3", "repeat x6", "repeat x23"),)
    # REFERENCE.md: resnet101 44,549,160, resnet50 25,557,032
    assert d.b.params - d.a.params == 44_549_160 - 25_557_032 == 18_992_128
    (layer3,) = [row for row in d.blocks]
    assert layer3.name == "layer3" and layer3.params[1] - layer3.params[0] == 18_992_128
    assert layer3.shape == ((1024, 14, 14), (1024, 14, 14))


def test_checkpoint_verdict_names_exactly_torchvisions_missing_keys(r50_r101):
    r50, r101 = torchvision_layout("resnet50"), torchvision_layout("resnet101")
    cp = r50_r101.checkpoint
    assert not cp.strict
    assert list(cp.missing) == [k for k in r101 if k not in r50]
    assert {k.split(".")[1] for k in cp.missing} == {str(i) for i in range(6, 23)}
    assert cp.unexpected == () and cp.reshaped == ()
    assert cp.matching == len(r50)


def test_text_report(r50_r101):
    text = r50_r101.render()
    assert "+ layer3.6 .. layer3.22 (17 bottleneck) added" in text
    assert "total params: 25,557,032 -> 44,549,160 (+18,992,128)" in text
    assert "does NOT load into resnet101 strictly" in text
    assert "layer3.6 .. layer3.22 (17 bottleneck): every key below them (306 keys)" in text  # 17 x 18 keys


def test_changed_argument_reshapes_the_classifier(capsys):
    assert main(["diff", str(R50), str(R50), "--set-b", "num_classes=10", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["changed"] == [{"name": "fc", "args": {"out": {"a": 1000, "b": 10}},
                                "shape": {"a": [1000], "b": [10]}}]
    ten = torchvision_layout("resnet50", num_classes=10)
    assert data["checkpoint"]["reshaped"] == [
        {"key": "fc.weight", "a": [1000, 2048], "b": list(ten["fc.weight"])},
        {"key": "fc.bias", "a": [1000], "b": list(ten["fc.bias"])}]
    assert not data["checkpoint"]["loads_strictly"]
    assert data["total"]["params"]["delta"] == -990 * 2049  # the fc holds 2048 * n + n


def test_moved_stride_keeps_the_checkpoint_loadable():
    # ResNet v1 puts the stride on conv1 instead of conv2: same weights, other computation.
    d = compare(R50, SPECS / "resnet50_v1.yaml")
    text = d.render()
    for stage in (2, 3, 4):
        assert f"  layer{stage}.0.conv1: stride 1 -> 2\n  layer{stage}.0.conv2: stride 2 -> 1\n" in text
    assert d.checkpoint.strict and d.b.params == d.a.params
    assert "loads into resnet50_v1 strictly" in text


def test_replaced_blocks_are_not_itemised():
    d = compare(R50, SPECS / "resnet18.yaml")
    assert [(r.first, r.last, r.kind_a, r.kind_b) for r in d.replaced][:1] == [
        ("layer1.0", "layer1.1", "bottleneck", "basic")]
    assert not any(c.name.startswith("layer1.0.") for c in d.changed)
    r50, r18 = torchvision_layout("resnet50"), torchvision_layout("resnet18")
    assert list(d.checkpoint.unexpected) == [k for k in r50 if k not in r18]


def test_exit_status(tmp_path, capsys):
    assert main(["diff", str(R50), str(R50), "--exit-code"]) == 0
    assert "loads into resnet50 strictly" in capsys.readouterr().out
    assert main(["diff", str(R50), str(R50), "--set-a", "num_classes=10", "--exit-code"]) == 1
    assert main(["diff", str(R50), str(tmp_path / "nope.yaml")]) == 2
    assert "error[E0106]" in capsys.readouterr().err
    assert main(["diff", str(R50), str(R50), "--set-b", "num_clases=10"]) == 2
    assert "error[E0601]" in capsys.readouterr().err
    assert main(["diff", str(R50), str(R50), "--depth", "0"]) == 2
    assert "error[E0604]" in capsys.readouterr().err


def test_output_file_is_written_atomically(tmp_path, capsys):
    target = tmp_path / "report.txt"
    target.write_text("precious")
    assert main(["diff", str(R50), str(tmp_path / "nope.yaml"), "-o", str(target)]) == 2
    assert target.read_text() == "precious" and list(tmp_path.iterdir()) == [target]
    assert main(["diff", str(R50), str(R50), "--set-b", "num_classes=10", "-o", str(target)]) == 0
    assert "fc: out 1000 -> 10" in target.read_text()
    assert main(["diff", str(R50), str(R50), "-o", str(tmp_path / "no" / "dir.txt")]) == 2
    assert "error[E0605]" in capsys.readouterr().err


def test_help_examples_run_as_written(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    examples = re.findall(r"^  archspec (diff .*)$", _DIFF_EPILOG, re.M)
    assert len(examples) >= 3
    for line in examples:
        assert main(line.split()) == 0, line
