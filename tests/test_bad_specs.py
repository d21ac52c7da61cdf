"""The bad-spec corpus: every mistake a person can make ends in a located, actionable error.

Each `tests/bad_specs/*.yaml` holds one mistake (a few hold several independent ones,
to prove `archspec validate` reports them all). Its first line says what it must
produce, every diagnostic in order:

    # expect: E0404 at 6:14
    # expect: E0405 at 3:39, E0305 at 5:23
    # expect: E0405 at support/parent.yaml:13:57     (a position in another file)

Optional lines right after it:

    # notes: 2        the first diagnostic carries this many `= note:` lines (the
                      instantiation chain of blocks and repeats)
    # xfail: WHY      a known compiler problem: the header says what the compiler
                      SHOULD report, and the case is expected to fail until it does
    # command: build  run `archspec build` instead of `validate`: for the mistakes
                      only the built network shows (an `init:` key that names no
                      tensor of the module, a scheme its tensor cannot take)

`tests/bad_specs/support/` holds parent specs that cases extend; they are not cases.
Mistakes a file cannot hold (--set, --input, file size, alias bombs, limits, internal
errors) are tested below the corpus test.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from types import MappingProxyType

import pytest

import archspec
import archspec.expand as expand_module
import archspec.yaml_source as yaml_source
from archspec.cli import main
from archspec.diagnostics import SpecError
from conftest import ROOT

BAD = Path(__file__).resolve().parent / "bad_specs"
CASES = sorted(BAD.glob("*.yaml"))

_HEADER = re.compile(r"^# expect: (?P<items>.+)$")
_ITEM = re.compile(r"^(?P<code>[EW]\d{4}) at (?:(?P<file>[^\s:]+):)?(?P<line>\d+):(?P<col>\d+)$")
# `file:line:col: error[CODE]: message` (or warning[...]), the form every located diagnostic takes.
_DIAGNOSTIC = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): "
                         r"(?P<severity>error|warning)\[(?P<code>[EW]\d{4})\]: \S")
_CHECK_CODES = {"E0701", "E0702", "E0703"}


def parse_header(path: Path) -> dict:
    lines = path.read_text(encoding="utf-8").split("\n")
    match = _HEADER.match(lines[0])
    assert match, f"{path.name}: the first line must be `# expect: CODE at LINE:COL[, ...]`"
    expected = []
    for item in match.group("items").split(","):
        m = _ITEM.match(item.strip())
        assert m, f"{path.name}: cannot read `{item.strip()}` (want `CODE at LINE:COL` or `CODE at FILE:LINE:COL`)"
        expected.append((m.group("code"), m.group("file") or path.name, int(m.group("line")), int(m.group("col"))))
    header = {"expected": expected, "notes": None, "xfail": None, "command": "validate"}
    for line in lines[1:]:
        if line.startswith("# notes:"):
            header["notes"] = int(line.split(":", 1)[1])
        elif line.startswith("# xfail:"):
            header["xfail"] = line.split(":", 1)[1].strip()
        elif line.startswith("# command:"):
            header["command"] = line.split(":", 1)[1].strip()
            assert header["command"] in ("validate", "build"), f"{path.name}: command is validate or build"
        else:
            break
    return header


HEADERS = {path.name: parse_header(path) for path in CASES}


def expected_exit(codes) -> int:
    def one(code):
        if code.startswith("W"):
            return 0
        if code == "E0704":
            return 3
        return 1 if code in _CHECK_CODES else 2
    return max(one(c) for c in codes)


def _params():
    for path in CASES:
        reason = HEADERS[path.name]["xfail"]
        marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
        yield pytest.param(path, marks=marks, id=path.stem)


def diagnostics(stderr: str) -> list[tuple]:
    """(code, file, line, col, severity, index of the line) of each diagnostic, in order."""
    found = []
    for index, line in enumerate(stderr.splitlines()):
        m = _DIAGNOSTIC.match(line)
        if m:
            found.append((m.group("code"), m.group("file"), int(m.group("line")), int(m.group("col")),
                          m.group("severity"), index))
    return found


def run(argv, capsys) -> tuple[int, str, str]:
    rc = main(argv)
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.mark.parametrize("path", list(_params()))
def test_bad_spec(path, capsys, monkeypatch):
    header = HEADERS[path.name]
    monkeypatch.chdir(BAD)  # diagnostics then name `case.yaml` and `support/parent.yaml`
    rc, out, err = run([header["command"], path.name], capsys)

    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    want = header["expected"]
    assert rc == expected_exit([code for code, *_ in want]), err

    lines = err.splitlines()
    for line in lines:
        # Each line is a diagnostic, or belongs to one: caret (` |`, `12 | ...`), note, hint.
        if line and not line.startswith(" ") and not re.match(r"^\d+ \|", line):
            assert _DIAGNOSTIC.match(line), f"not a `file:line:col: error[CODE]: ` line: {line!r}"

    found = diagnostics(err)
    assert [(code, file, line, col) for code, file, line, col, _, _ in found] == want, err

    for code, file, line, col, severity, index in found:
        assert severity == ("warning" if code.startswith("W") else "error")
        # The caret shows the very line the position names, and points at the column.
        source = (BAD / file).read_text(encoding="utf-8").split("\n")
        assert line <= len(source), f"{file}:{line} is past the end of the file"
        assert lines[index + 2] == f"{line} | {source[line - 1]}", err
        assert lines[index + 3].endswith(" | " + " " * (col - 1) + "^"), err

    if header["notes"] is not None:
        first = found[0][5]
        end = found[1][5] if len(found) > 1 else len(lines)
        notes = [l for l in lines[first:end] if l.startswith("  = note: in ")]
        assert len(notes) == header["notes"], err
    if rc == 0:
        assert f"{path.name}: ok" in out


# -- the corpus itself ----------------------------------------------------------

def _source_codes() -> set[str]:
    codes = set()
    for source in (ROOT / "archspec").rglob("*.py"):
        codes |= set(re.findall(r"[\"']([EW]0\d{3})[\"']", source.read_text(encoding="utf-8")))
    return codes


# Codes no spec file can produce on its own; the tests named here produce them.
TESTED_BELOW = {
    "E0104": "test_document_over_the_size_limit",
    "E0105": "test_alias_bomb_stops_after_a_bounded_number_of_values",
    "E0106": "test_missing_and_unreadable_files",
    "E0107": "test_damaged_artifact",
    "E0301": "test_unknown_op_in_a_document_built_in_code",
    "E0310": "test_expanded_graph_over_the_node_limit",
    "E0601": "test_set_unknown_argument",
    "E0602": "test_set_wrong_type",
    "E0603": "test_bad_input_shape",
    "E0604": "test_malformed_command_line_values",
    "E0605": "test_build_output_cannot_be_written",
    "E0606": "test_command_line_mistakes_are_diagnostics",
    "E0610": "test_draw.py::test_svg_without_graphviz_says_how_to_install_it",
    "E0611": "test_draw.py::test_graphviz_failure_is_reported",
    "E0612": "test_draw.py::test_svg_and_html_ask_for_a_file_on_a_terminal",
    "E0620": "test_export.py::test_onnx_without_the_export_extra_says_what_to_install",
    "E0621": "test_export.py::test_flatten_into_linear_keeps_the_spatial_size_fixed",
    "E0622": "test_export.py::test_torch_export_refusals_are_diagnostics",
    "E0623": "test_weights.py::test_weights_map_mistakes",
    "E0624": "test_export.py::test_an_onnx_model_over_2_gib_is_refused",
    "E0630": "test_fusion.py::test_fuse_takes_only_archspec_networks",
    "E0631": "test_fusion.py::test_fusing_a_network_in_training_mode_is_refused",
    "E0632": "test_fusion.py::test_build_fuse_writes_a_fused_build_that_load_built_reads",
    "E0801": "test_plugins.py::test_broken_plugin_is_reported_where_its_op_is_used",
    "E0901": "test_weights.py::test_a_pickle_that_would_run_code_is_refused_and_not_run",
    "E0902": "test_weights.py::test_files_that_hold_no_state_dict",
    "E0903": "test_weights.py::test_files_that_hold_no_state_dict",
    "E0904": "test_weights.py::test_a_wrong_architecture_is_reported_by_block_and_nothing_is_written",
    "E0905": "test_weights.py::test_weights_map_mistakes",
    "E0703": "test_max_params_budget",
    "E0704": "test_internal_shape_disagreement_is_exit_3",
    "E0705": "test_network_too_large_for_memory_is_refused_before_allocation",
    "E0615": "test_eject.py::test_eject_errors",
    "E0616": "test_eject.py::test_eject_errors",
}


def test_corpus_has_enough_cases():
    assert len(CASES) >= 70
    passing = [name for name, h in HEADERS.items() if not h["xfail"]]
    assert len(passing) >= 60


def test_support_files_are_not_cases():
    assert all(path.parent == BAD for path in CASES)
    assert (BAD / "support" / "parent.yaml").is_file()


def test_every_error_code_is_exercised():
    source = _source_codes()
    in_corpus = {code for h in HEADERS.values() if not h["xfail"] for code, *_ in h["expected"]}
    assert source - in_corpus - set(TESTED_BELOW) == set()
    assert set(TESTED_BELOW) <= source
    headers = {code for h in HEADERS.values() for code, *_ in h["expected"]}
    assert headers <= source, f"headers name codes archspec does not have: {headers - source}"
    for name in TESTED_BELOW.values():
        module, _, function = name.rpartition("::")
        if module:  # a test in another file
            assert f"def {function}(" in (Path(__file__).parent / module).read_text(), name
        else:
            assert callable(globals().get(name)), name


# -- mistakes a spec file cannot hold --------------------------------------------

SMALL = "archspec: 1\nargs:\n  width: 8\n  aux: false\ninput: [3, 16, 16]\ngraph:\n  conv: {op: conv, out: $width, k: 3}\n"


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return path


def only_diagnostic(err: str) -> str:
    """The single `archspec: error[...]` or located diagnostic line of a CLI failure."""
    heads = [l for l in err.splitlines() if re.match(r"^\S.*(error|warning)\[[EW]\d{4}\]: ", l)]
    assert len(heads) == 1, err
    return heads[0]


def test_set_unknown_argument(small, capsys):
    rc, _, err = run(["validate", str(small), "--set", "widht=16"], capsys)
    assert rc == 2 and "Traceback" not in err
    assert "error[E0601]: `widht` is not an argument" in only_diagnostic(err)
    assert "did you mean `width`?" in err


def test_set_wrong_type(small, capsys):
    rc, _, err = run(["validate", str(small), "--set", "width=wide"], capsys)
    assert rc == 2
    assert "error[E0602]: --set width: expected an integer like its default 8, got 'wide'" in only_diagnostic(err)
    assert "declared at" in err  # the hint names the line of the default
    rc, _, err = run(["validate", str(small), "--set", "aux=[1]"], capsys)
    assert rc == 2 and "error[E0602]" in only_diagnostic(err)


def test_bad_input_shape(small, capsys):
    for bad in ("3xAx16", "0x16x16", "3x16x"):
        rc, _, err = run(["validate", str(small), "--input", bad], capsys)
        assert rc == 2, bad
        line = only_diagnostic(err)
        assert "error[E0603]: --input" in line, line
    # A well-formed shape of rank 5: the conv is what refuses it.
    rc, _, err = run(["validate", str(small), "--input", "3x2x2x16x16"], capsys)
    assert "error[E0407]" in err


def test_malformed_command_line_values(small, capsys):
    rc, _, err = run(["validate", str(small), "--set", "width"], capsys)
    assert rc == 2 and "error[E0604]: --set expects key=value" in only_diagnostic(err)
    rc, _, err = run(["summary", str(small), "--batch", "0"], capsys)
    assert rc == 2 and "error[E0604]: batch must be a whole number of at least 1, got 0" in only_diagnostic(err)


def test_build_output_cannot_be_written(small, tmp_path, capsys):
    target = tmp_path / "no" / "such" / "dir" / "out.pt"
    rc, _, err = run(["build", str(small), "-o", str(target)], capsys)
    assert rc == 2 and "error[E0605]: cannot write" in only_diagnostic(err)
    assert not target.parent.exists()


def test_missing_and_unreadable_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, _, err = run(["validate", "nope.yaml"], capsys)
    assert rc == 2 and only_diagnostic(err) == "archspec: error[E0106]: no such file: nope.yaml"
    (tmp_path / "latin1.yaml").write_bytes(b"archspec: 1\nname: caf\xe9\n")
    rc, _, err = run(["validate", "latin1.yaml"], capsys)
    assert rc == 2 and "error[E0106]: cannot read latin1.yaml" in only_diagnostic(err)
    with pytest.raises(SpecError) as exc:
        archspec.load_built(tmp_path / "nope.pt")
    assert exc.value.code == "E0106"


def test_damaged_artifact(small, tmp_path):
    # More cases in tests/test_hardening.py; this one edits the saved spec.
    import torch

    assert main(["build", str(small), "-o", str(tmp_path / "ok.pt")]) == 0
    payload = torch.load(tmp_path / "ok.pt", weights_only=True)
    torch.save({**payload, "spec": payload["spec"].replace("width: 8", "width: 16")}, tmp_path / "edited.pt")
    with pytest.raises(SpecError) as exc:
        archspec.load_built(tmp_path / "edited.pt")
    assert exc.value.code == "E0107"
    assert str(exc.value).startswith(f"archspec: error[E0107]: artifact is damaged: {tmp_path / 'edited.pt'}: "
                                     "its weights do not fit its spec: `conv.weight` has shape [8, 3, 3, 3] in "
                                     "the file, the spec makes [16, 3, 3, 3]")


def test_max_params_budget(small, capsys):
    rc, _, err = run(["validate", str(small), "--max-params", "100"], capsys)
    assert rc == 1  # a check the caller asked for failed
    assert "error[E0703]: small has 224 parameters, over the budget of 100" in only_diagnostic(err)


def test_internal_shape_disagreement_is_exit_3(small, capsys, monkeypatch):
    # Break one shape rule so that inference disagrees with PyTorch: --verify must say
    # so as an internal error (exit 3), naming the node and the line that wrote it.
    relu = archspec.ops.REGISTRY["relu"]
    monkeypatch.setattr(relu, "infer", lambda a, shapes: (shapes[0][0], shapes[0][1], shapes[0][2] + 1))
    small.write_text(SMALL + "  relu: {op: relu}\n")
    monkeypatch.chdir(small.parent)
    rc, _, err = run(["build", "small.yaml", "--verify"], capsys)
    assert rc == 3
    # (verify reports it once per mode, training and eval: the same line twice)
    (line,) = {l for l in err.splitlines() if "error[E0704]" in l}
    assert re.match(r"^small\.yaml:8:9: error\[E0704\]: internal error: `relu` was inferred as "
                    r"\[8, 14, 15\] but PyTorch computes \[8, 14, 14\]", line), line


def test_unknown_op_in_a_document_built_in_code():
    # The schema stops an unknown op in a file; a document built in code skips the
    # schema, and expansion still names the op and its near miss.
    from archspec.expand import expand
    from archspec.spec import Spec

    document = yaml_source.load_text("input: [3, 8, 8]\ngraph:\n  c: {op: conv2d, out: 4, k: 3}\n", "code.yaml")
    spec = Spec("code.yaml", "code", document, MappingProxyType({}), (3, 8, 8))
    (d,) = expand(spec).errors
    assert (d.code, d.pos.line, d.pos.col) == ("E0301", 3, 11)
    assert d.hint == "did you mean `conv`?"


def test_document_over_the_size_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    padding = "# " + "x" * 98 + "\n"
    (tmp_path / "big.yaml").write_text(SMALL + padding * (yaml_source.MAX_DOCUMENT_BYTES // 100 + 10))
    rc, _, err = run(["validate", "big.yaml"], capsys)
    assert rc == 2
    assert only_diagnostic(err) == "big.yaml:1:1: error[E0104]: document is larger than 2,000,000 bytes"


def _billion_laughs(levels: int = 9) -> str:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"  # 10**10 values once expanded, from under 1 KB


def test_alias_bomb_stops_after_a_bounded_number_of_values(tmp_path, capsys, monkeypatch):
    # Sound rather than timed: with the limit lowered, the converter must give up
    # after visiting at most that many values, however far the aliases would expand.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lol.yaml").write_text(_billion_laughs())
    visited = 0
    convert = yaml_source._Converter.convert

    def counting(self, node):
        nonlocal visited
        visited += 1
        return convert(self, node)

    monkeypatch.setattr(yaml_source._Converter, "convert", counting)
    monkeypatch.setattr(yaml_source, "MAX_EXPANDED_VALUES", 1000)
    rc, _, err = run(["validate", "lol.yaml"], capsys)
    assert rc == 2
    assert "error[E0105]: aliases expand to more than 1,000 values" in only_diagnostic(err)
    assert visited <= 1001


def test_alias_bomb_at_the_shipped_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lol.yaml").write_text(_billion_laughs())
    rc, _, err = run(["validate", "lol.yaml"], capsys)
    assert rc == 2 and "error[E0105]" in only_diagnostic(err)


def test_expanded_graph_over_the_node_limit(tmp_path, capsys, monkeypatch):
    # Each repeat is under the limit; together they are not. (The corpus holds the
    # single `repeat: 300000`; here the limit is lowered to keep the test fast.)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(expand_module, "MAX_NODES", 100)
    (tmp_path / "many.yaml").write_text(
        "archspec: 1\ninput: [3, 8, 8]\nblocks:\n  b:\n    body:\n      r: {repeat: 10, op: relu}\n"
        "graph:\n  many: {repeat: 20, block: b}\n")
    rc, _, err = run(["validate", "many.yaml"], capsys)
    assert rc == 2
    assert only_diagnostic(err).startswith("many.yaml:6:10: error[E0310]: the expanded graph exceeds 100 nodes")
    assert "  = note: in block `b` as `many.10`" in err


def test_nesting_limit_in_a_generated_spec(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    depth = expand_module.MAX_DEPTH + 6
    (tmp_path / "deep.yaml").write_text(
        "archspec: 1\ninput: [3, 8, 8]\ngraph:\n  deep: " + "[" * depth + "{op: relu}" + "]" * depth + "\n")
    rc, _, err = run(["validate", "deep.yaml"], capsys)
    assert rc == 2
    assert "deep.yaml:4:73: error[E0311]: nesting deeper than 64 levels" in only_diagnostic(err)


# -- limits and templates, with inputs generated or valid --

def test_deep_yaml_nesting_is_a_located_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deep.yaml").write_text(
        "archspec: 1\ninput: [3, 8, 8]\ngraph:\n  c: {op: conv, out: 8, k: 3, pad: " + "[" * 3000 + "]" * 3000 + "}\n")
    rc, _, err = run(["validate", "deep.yaml"], capsys)
    assert "internal error" not in err
    assert rc == 2 and re.match(r"^deep\.yaml:\d+:\d+: error\[E0\d{3}\]: ", only_diagnostic(err))


@pytest.mark.parametrize("template", [
    "${['first', 'second'][i]}",             # indexes a list as long as the repeat
    "${'stem' if i == 0 else 'body'}",       # distinct names that follow no pattern
])
def test_names_templates_that_give_distinct_names_are_valid(tmp_path, capsys, monkeypatch, template):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "names.yaml").write_text(
        "archspec: 1\ninput: [3, 8, 8]\ngraph:\n  convs:\n    repeat: 2\n"
        f"    names: \"{template}\"\n    op: conv\n    out: 3\n    k: 3\n    pad: 1\n")
    rc, out, err = run(["validate", "names.yaml"], capsys)
    assert rc == 0, err


def test_error_catalogue_examples_are_current():
    """docs/errors.md shows what archspec prints today (refresh: python docs/error_examples.py)."""
    import runpy

    checker = runpy.run_path(str(ROOT / "docs" / "error_examples.py"))
    _, stale = checker["refreshed"](checker["DOC"].read_text(encoding="utf-8"))
    assert stale == []


def test_command_line_mistakes_are_diagnostics(small, capsys):
    # argparse's own complaints take the form of every other error: a code, exit 2.
    for argv, words in ((["summary", str(small), "--batch", "two"], "argument --batch: invalid int value: 'two'"),
                        (["build"], "the following arguments are required: SPEC"),
                        (["bulid", str(small)], "invalid choice: 'bulid'")):
        rc, out, err = run(argv, capsys)
        assert rc == 2 and "Traceback" not in err
        line = only_diagnostic(err)
        assert line.startswith("archspec: error[E0606]: ") and words in line, line
        assert "= hint: see `archspec" in err


def test_network_too_large_for_memory_is_refused_before_allocation(tmp_path, capsys, monkeypatch):
    # 8*8*3 = 192 features into 10^8 outputs: 19.3 billion parameters, 77 GB in float32.
    path = tmp_path / "big.yaml"
    path.write_text("archspec: 1\ninput: [3, 8, 8]\ngraph:\n  flat: {op: flatten}\n  fc: {op: linear, out: 100000000}\n")
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**22}[name])  # 16 GiB
    rc, _, err = run(["build", str(path)], capsys)
    assert rc == 1 and "Traceback" not in err
    assert "error[E0705]: big needs 71.9 GiB for its 19,300,000,000 parameters and its buffers, more than " \
           "the 16.0 GiB of memory cpu has" in only_diagnostic(err)
    # Summaries and meta builds allocate nothing: they are not refused.
    assert archspec.summarize(path).total_params == 192 * 10**8 + 10**8
    archspec.build(path, device="meta")
