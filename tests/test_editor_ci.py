"""Editor and CI conventions: `validate --format json|sarif`, the pre-commit hook,
the `$schema` line of every shipped spec, and the shipped specs checked against the
shipped schema by a second JSON Schema client (check-jsonschema)."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from archspec.cli import main
from conftest import ROOT

BAD = ROOT / "tests" / "bad_specs"
SCHEMA = ROOT / "archspec" / "spec.schema.json"
# A corpus file with notes (an instantiation chain), one with a warning, a good spec.
WITH_NOTES, WITH_WARNING = "trace_repeat_block_kernel.yaml", "unused_node_warning.yaml"
DIAGNOSTIC_KEYS = {"code", "severity", "message", "file", "line", "column", "end", "hint", "notes"}


def run(argv, capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def in_corpus(monkeypatch):
    monkeypatch.chdir(BAD)
    return [WITH_NOTES, WITH_WARNING, "../../specs/resnet18.yaml", "no_such_spec.yaml"]


def test_validate_json_holds_every_diagnostic_of_every_spec(in_corpus, capsys):
    status, out, err = run(["validate", *in_corpus, "--format", "json"], capsys)
    text_status, _, _ = run(["validate", *in_corpus], capsys)
    assert status == text_status == 2 and err == ""
    document = json.loads(out)  # one document for all of them
    assert document["format"] == "archspec.diagnostics/1" and document["exit_status"] == 2
    assert [s["file"] for s in document["specs"]] == in_corpus
    assert [s["status"] for s in document["specs"]] == ["invalid", "ok", "ok", "invalid"]
    assert (document["errors"], document["warnings"]) == (2, 1)
    for spec in document["specs"]:
        for d in spec["diagnostics"]:
            assert set(d) == DIAGNOSTIC_KEYS
            assert re.fullmatch(r"[EW]\d{4}", d["code"]) and d["severity"] in ("error", "warning")

    notes, warning = (document["specs"][i]["diagnostics"] for i in (0, 1))
    # The corpus header says where: `# expect: E0404 at 9:37`, in a repeat of a block (2 notes).
    (kernel,) = notes
    assert (kernel["code"], kernel["line"], kernel["column"]) == ("E0404", 9, 37)
    line = (BAD / WITH_NOTES).read_text().split("\n")[8]
    assert line[kernel["column"] - 1:kernel["end"]["column"] - 1] == "3"  # `k: 3`, the value at fault
    assert kernel["hint"] and len(kernel["notes"]) == 2
    assert all(set(n) == {"message", "file", "line", "column"} and n["line"] for n in kernel["notes"])
    (unused,) = warning
    assert unused["code"] == "W0308" and unused["severity"] == "warning"
    line = (BAD / WITH_WARNING).read_text().split("\n")[unused["line"] - 1]
    assert line[unused["column"] - 1:unused["end"]["column"] - 1] == "{op: conv, out: 4, k: 1, from: input}"
    assert document["specs"][2]["params"] == 11_689_512  # torchvision resnet18
    (missing,) = document["specs"][3]["diagnostics"]
    assert missing["code"] == "E0106" and missing["line"] is None and missing["end"] is None
    assert missing["file"] == "no_such_spec.yaml"


def test_json_end_of_a_block_mapping_is_its_last_character(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("block.yaml").write_text("archspec: 1\ninput: [3, 8, 8]\ngraph:\n  conv:\n    op: conv\n    outs: 4\n"
                                  "    k: 3\n\n# done\n")
    _, out, _ = run(["validate", "block.yaml", "--format", "json"], capsys)
    (d,) = json.loads(out)["specs"][0]["diagnostics"]
    assert d["code"] == "E0202" and (d["line"], d["column"]) == (6, 5)  # the unknown key `outs`
    assert d["end"] == {"line": 6, "column": 9}


def test_validate_sarif_has_what_sarif_2_1_0_requires(in_corpus, capsys):
    status, out, _ = run(["validate", *in_corpus, "--format", "sarif"], capsys)
    assert status == 2
    log = json.loads(out)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (sarif_run,) = log["runs"]
    driver = sarif_run["tool"]["driver"]
    assert driver["name"] == "archspec" and driver["version"]
    rules = [r["id"] for r in driver["rules"]]
    assert rules == sorted(set(rules)) == ["E0106", "E0404", "W0308"]
    results = sarif_run["results"]
    assert [r["ruleId"] for r in results] == ["E0404", "W0308", "E0106"]
    for result in results:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning") and result["message"]["text"]
        (location,) = result["locations"]
        assert location["physicalLocation"]["artifactLocation"]["uri"]
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 9, "startColumn": 37, "endLine": 9, "endColumn": 38}
    assert [r["message"]["text"] for r in results[0]["relatedLocations"]] == [
        "in block `down` as `stages.1` instantiated here", "in repeat `stages` instantiated here"]
    assert "region" not in results[2]["locations"][0]["physicalLocation"]  # a missing file has no lines
    schema = os.environ.get("SARIF_SCHEMA")  # the OASIS schema, where a copy is at hand
    if schema and Path(schema).is_file():
        import jsonschema

        jsonschema.Draft4Validator(json.loads(Path(schema).read_text())).validate(log)


def test_pre_commit_hook_runs_archspec_validate(tmp_path, capsys, monkeypatch):
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "archspec-validate" and hook["language"] == "python"
    pattern = re.compile(hook["files"])
    assert pattern.search("specs/resnet18.yaml") and pattern.search("models/net.yml")
    assert not pattern.search("specs/resnet18.json")
    command = shlex.split(hook["entry"])
    assert command[:2] == ["archspec", "validate"]
    assert "archspec" in _console_scripts()  # what `language: python` installs

    # pre-commit passes every staged YAML file: specs are checked, other YAML is skipped.
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "specs" / "resnet18.yaml", "resnet18.yaml")
    shutil.copy(ROOT / "specs" / "resnet50.yaml", "resnet50.yaml")
    Path("ci.yml").write_text("jobs:\n  test:\n    runs-on: ubuntu-latest\n")
    Path("bad.yaml").write_text("archspec: 1\ninput: [3, 8, 8]\ngraph:\n  conv: {op: conv, out: 4, k: 9}\n")
    status, out, err = run(command[1:] + ["resnet18.yaml", "ci.yml"], capsys)
    assert status == 0 and out == "resnet18.yaml: ok (71 nodes, 11,689,512 params)\n" and err == ""
    status, _, err = run(command[1:] + ["resnet18.yaml", "ci.yml", "bad.yaml"], capsys)
    assert status == 2 and "bad.yaml:4:31: error[E0404]" in err


def _console_scripts() -> set:
    import tomllib

    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


def shipped_specs() -> list[Path]:
    """Every spec in specs/ and examples/ (files with a top-level `archspec:` key)."""
    files = sorted(ROOT.glob("specs/*.yaml")) + sorted(ROOT.glob("examples/**/*.yaml"))
    return [f for f in files if re.search(r"^archspec\s*:", f.read_text(encoding="utf-8"), re.M)]


def test_every_shipped_spec_names_the_schema_for_editors():
    lacking = []
    for path in shipped_specs():
        schema = Path(os.path.relpath(SCHEMA, path.parent)).as_posix()
        want = f"# yaml-language-server: $schema={schema}"
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if first != want:
            lacking.append(f"  {path.relative_to(ROOT)}: first line should be `{want}`, is `{first[:60]}`")
        assert (path.parent / schema).resolve() == SCHEMA.resolve()
    assert not lacking, "specs without the editor's $schema line:\n" + "\n".join(lacking)


def test_shipped_specs_pass_a_second_json_schema_client():
    # The plugin example uses an op the shipped schema cannot know (see its first lines).
    specs = [p for p in shipped_specs() if "custom_op" not in p.parts]
    checker = shutil.which("check-jsonschema", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                                    f"{os.environ.get('PATH', '')}")
    if checker is None:
        pytest.skip("check-jsonschema is not installed (the dev extra has it)")
    result = subprocess.run([checker, "--schemafile", str(SCHEMA), *map(str, specs)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout
