"""The command line: every shipped spec builds; bad input ends in a located error, exit 2."""
import json
import subprocess
import sys

import pytest
import torch

import archspec
from archspec.cli import main
from conftest import ROOT, SPECS

ALL_SPECS = sorted(SPECS.glob("*.yaml"))


@pytest.mark.parametrize("path", ALL_SPECS, ids=lambda p: p.name)
def test_archspec_build_every_shipped_spec(path, capsys):
    assert main(["build", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("built ") and "expect: all figures hold" in out


def test_console_script_runs_as_a_separate_process():
    result = subprocess.run([sys.executable, "-m", "archspec", "build", str(SPECS / "resnet18.yaml")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "11,689,512 params" in result.stdout  # REFERENCE.md


def test_summary_rows_and_totals(capsys):
    assert main(["summary", str(SPECS / "resnet18.yaml")]) == 0
    out = capsys.readouterr().out
    assert "layer1.0.conv1" in out and "total params: 11,689,512" in out  # REFERENCE.md


def test_summary_json(capsys):
    assert main(["summary", str(SPECS / "resnet50.yaml"), "--json", "--batch", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 25_557_032  # REFERENCE.md
    # torch FlopCounterMode / 2 on torchvision resnet50 (tests/test_resnet.py measures it), two samples
    assert data["total_macs"] == 2 * 4_089_184_256
    row = next(r for r in data["rows"] if r["name"] == "layer4.2.conv3")
    assert row["shape"] == [2, 2048, 7, 7] and row["params"] == 512 * 2048


def test_set_and_input_overrides(capsys):
    assert main(["summary", str(SPECS / "resnet18.yaml"), "--set", "num_classes=10",
                 "--set", "layers=[1, 1, 1, 1]", "--input", "3x64x64", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["outputs"]["output"] == [1, 10]
    assert data["input_shape"] == [3, 64, 64]
    assert next(r for r in data["rows"] if r["name"] == "layer4.0.conv1")["shape"] == [1, 512, 2, 2]


def test_schema_command_prints_the_schema(capsys):
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["$schema"].endswith("2020-12/schema")


def test_build_output_round_trips(tmp_path, capsys):
    target = tmp_path / "r18.pt"
    assert main(["build", str(SPECS / "resnet18.yaml"), "--set", "num_classes=10", "--no-expect",
                 "-o", str(target)]) == 0
    net = archspec.load_built(target).eval()
    again = archspec.load_built(target).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert net(x).shape == (1, 10)
        assert torch.equal(net(x), again(x))


def test_failed_build_leaves_existing_output_untouched(tmp_path, capsys):
    target = tmp_path / "out.pt"
    target.write_bytes(b"precious")
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 8, 8]\ngraph:\n  c: {op: conv, out: 4, k: 9}\n")
    assert main(["build", str(bad), "-o", str(target)]) == 2
    assert target.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [target, bad] or sorted(tmp_path.iterdir()) == sorted([target, bad])


@pytest.mark.parametrize("text, code, line", [
    ("input: [3, 8, 8]\ngraph:\n  c: {op: conv, out: 4, k: 9}\n", "E0404", 3),
    ("input: [3, 8, 8]\ngraph:\n  c: {op: cnov, out: 4, k: 3}\n", "E0301", 3),
    ("input: [3, 8, 8]\ngraph:\n  c: {op: conv, out: 4, k: 3, kernel: 3}\n", "E0202", 3),
    ("input: [3, 8, 8]\ngraph:\n  c: {op: conv, out: 4, k: [3}\n", "E0101", 3),
    ("input: [3, 8, 8]\ngraph:\n  c: {op: relu, from: nowhere}\n", "E0305", 3),
    ("input: [3, 8, 8]\ngraph:\n  c: {op: conv, out: '${4 / 0}', k: 1}\n", "E0503", 3),
    ("input: [3, 8, 8]\ngraph:\n  c: !!python/object/apply:os.system ['true']\n", "E0103", 3),
])
def test_bad_specs_give_located_errors_and_exit_2(tmp_path, text, code, line):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = subprocess.run([sys.executable, "-m", "archspec", "build", str(path)],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"bad.yaml:{line}:") and f"error[{code}]" in first, result.stderr


def test_expect_mismatch_exits_1(tmp_path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("input: [2]\ngraph: [{op: linear, out: 3}]\nexpect: {params: 10}\n")
    assert main(["build", str(path)]) == 1
    err = capsys.readouterr().err
    assert "error[E0701]: expected params 10, the spec gives 9" in err


def test_validate_takes_several_files_and_reports_each(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [3, 8, 8]\ngraph:\n  c: {op: conv, out: 4, k: 9}\n")
    assert main(["validate", str(SPECS / "resnet18.yaml"), str(bad)]) == 2
    captured = capsys.readouterr()
    assert "resnet18.yaml: ok" in captured.out and "error[E0404]" in captured.err


def test_help_mentions_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("validate", "build", "summary", "schema"):
        assert command in out


def test_validate_and_summary_do_not_import_torch():
    code = ("import sys, archspec; archspec.summarize('specs/inception_v3.yaml'); "
            "from archspec.cli import main; main(['validate', 'specs/resnet50.yaml']); "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"


def _imported_by(*argv) -> set:
    """The modules `python -m archspec ARGV` imports, as `-X importtime` lists them."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "archspec", *argv],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("argv", [["validate", "specs/resnet50.yaml"], ["summary", "specs/inception_v3.yaml"],
                                  ["schema"], ["--help"]])
def test_commands_that_build_nothing_start_without_torch(argv):
    modules = _imported_by(*argv)
    assert "archspec.cli" in modules  # the listing is real
    assert "torch" not in modules and "numpy" not in modules


def test_help_and_schema_start_without_the_compiler():
    # `archspec --help` needs argparse and the diagnostics, not the YAML loader or the ops;
    # `archspec schema` needs the ops, not the YAML loader or the compiler.
    assert not {"yaml", "archspec.api", "archspec.ops", "typing"} & _imported_by("--help")
    assert not {"yaml", "archspec.api", "archspec.spec"} & _imported_by("schema")
