"""Hostile input: whatever a spec, a path or an artifact holds, archspec answers with a
located diagnostic and exit 2 (or a SpecError from the API): never a traceback, a
crash, a hang, unbounded memory, or damage to a file already on disk.

Where a regression would crash or hang the interpreter (deep nesting, FIFOs,
signals), the case runs in a subprocess with a timeout, so the test sees a signal
or a timeout instead of taking pytest down with it.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch

import archspec
import archspec.diagnostics as diagnostics
import archspec.yaml_source as yaml_source
from archspec.cli import main
from archspec.diagnostics import Diagnostic, Position, SpecError
from conftest import ROOT

SMALL = "archspec: 1\ninput: [3, 8, 8]\ngraph:\n  conv: {op: conv, out: 4, k: 3}\n"


def run_python(code: str, cwd, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def run_archspec(args, cwd, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "archspec", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_located(proc, code: str, file: str) -> re.Match:
    """Exit 2 (not a signal, not 3), no traceback, and one located `code` diagnostic."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    match = re.search(rf"^{re.escape(file)}:(\d+):(\d+): error\[{code}\]: ", proc.stderr, re.M)
    assert match, proc.stderr[-2000:]
    return match


def spec_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as err:
        archspec.loads(text, name="t.yaml")
    return err.value


# -- nesting: refused before the YAML composer recurses ------------------------------

DEEP = 50_000


@pytest.mark.parametrize("body, line", [
    ("graph:\n  c: {op: conv, out: 8, k: 3, pad: " + "[" * DEEP + "]" * DEEP + "}\n", 4),
    ("description: " + "{a: " * DEEP + "1" + "}" * DEEP + "\ngraph:\n  c: {op: relu}\n", 3),
    ("description:\n  " + "- " * DEEP + "x\ngraph:\n  c: {op: relu}\n", 4),
    ("description:\n" + "".join(" " * (i + 1) + "a:\n" for i in range(1200)) + "graph:\n  c: {op: relu}\n", 103),
], ids=["flow-lists", "flow-mappings", "block-lists", "indentation"])
def test_tens_of_thousands_of_levels_are_a_located_error(tmp_path, body, line):
    (tmp_path / "deep.yaml").write_text("archspec: 1\ninput: [3, 8, 8]\n" + body)
    proc = run_archspec(["validate", "deep.yaml"], tmp_path)
    match = assert_located(proc, "E0311", "deep.yaml")
    assert int(match.group(1)) == line
    assert "nests deeper than 100 levels" in proc.stderr


def test_aliases_cannot_nest_deeper_than_the_text_does(tmp_path):
    # Each anchored list is 90 levels deep and ends in an alias of the one before; the
    # aliases at the end are met first, shallow, so each list is sized before it is
    # met deep. The document as aliases expand it nests 40 * 90 levels.
    lines = ["archspec: 1", "input: [3, 8, 8]", "graph:", "  c: {op: relu}", "description:"]
    previous = "0"
    for k in range(40):
        lines.append(f"  - &a{k} " + "[" * 90 + previous + "]" * 90)
        previous = f"*a{k}"
    lines.append("  - [" + ", ".join(f"*a{k}" for k in reversed(range(40))) + "]")
    err = spec_error("\n".join(lines) + "\n")
    assert err.code == "E0311" and err.diagnostics[0].pos.line > 5


# -- tags and keys ------------------------------------------------------------------

@pytest.mark.parametrize("value, code", [
    ("!!bool maybe", "E0201"), ("!!int abc", "E0201"), ("!!int ''", "E0201"), ("!!float x", "E0201"),
    ("!!float ''", "E0201"), ("!!null 3", "E0201"), (".inf", "E0201"), ("-.inf", "E0201"), (".nan", "E0201"),
    ("!!float .nan", "E0201"),
    ("!!map [1, 2]", "E0103"), ("!!seq {a: 1}", "E0103"), ("!!str {a: 1}", "E0103"), ("!!int [1]", "E0103"),
    ("!!map 3", "E0103"), ("!!set {a}", "E0103"), ("!!binary aGk=", "E0103"),
])
def test_core_tags_only_where_they_fit(value, code):
    with pytest.raises(SpecError) as err:
        yaml_source.load_text(f"a: 1\nv: {value}\n", "t.yaml")
    (d,) = err.value.diagnostics
    assert (d.code, d.pos.line, d.pos.col) == (code, 2, 4), d.render(with_source=False)


@pytest.mark.parametrize("value, expected", [
    ("!!int 8", 8), ("!!int 0x10", 16), ("!!str 8", "8"), ("!!float 1.5", 1.5), ("!!bool yes", True),
    ("!!null ~", None), ("!!map {a: 1}", {"a": 1}), ("!!seq [1]", [1]), ("=", "="), ("2024-01-01", "2024-01-01"),
])
def test_core_tags_that_fit_are_read(value, expected):
    assert yaml_source.load_text(f"v: {value}\n", "t.yaml")["v"] == expected


def test_whole_number_keys_become_their_decimal_text():
    document = yaml_source.load_text("m: {0: a, -1: b, 0x10: c, 007: d}\n", "t.yaml")
    assert list(document["m"]) == ["0", "-1", "16", "7"]
    assert document["m"].key_pos["16"].col == 18  # positions follow the key


@pytest.mark.parametrize("key", ["1.5", ".inf", "-.inf", ".nan", "!!float 2"])
def test_keys_that_are_not_names_or_whole_numbers(key):
    with pytest.raises(SpecError) as err:
        yaml_source.load_text(f"m: {{{key}: a}}\n", "t.yaml")
    (d,) = err.value.diagnostics
    assert (d.code, d.pos.col) == ("E0201", 5)
    assert "mapping keys must be names or whole numbers" in d.message


def test_text_keys_that_look_like_numbers_are_kept():
    # YAML 1.1 reads `1e3` as text: the key stays text, and the schema judges it.
    assert list(yaml_source.load_text("m: {1e3: a}\n", "t.yaml")["m"]) == ["1e3"]


def test_whole_number_and_text_key_for_one_index_are_duplicates():
    with pytest.raises(SpecError) as err:
        yaml_source.load_text("m: {1: a, '1': b}\n", "t.yaml")
    assert err.value.code == "E0102"


def test_at_keys_agree_between_the_schema_and_expansion():
    text = ("archspec: 1\ninput: [3, 16, 16]\ngraph:\n"
            "  convs: {repeat: 3, op: conv, out: 8, k: 3, pad: 1, at: {0: {stride: 2}, -1: {out: 4}}}\n")
    shapes = {row.name: row.shape for row in archspec.summarize(archspec.loads(text)).rows}
    assert list(shapes["convs.0"][1:]) == [8, 8, 8] and list(shapes["convs.2"][1:]) == [4, 8, 8]
    # A key the schema's pattern refuses is refused whether or not YAML read a number.
    assert spec_error(text.replace("-1:", "x1:")).code == "E0201"
    assert spec_error(text.replace("-1:", "'+1':")).code == "E0201"


# -- special files ------------------------------------------------------------------

@pytest.fixture
def fifo(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    path = tmp_path / "spec.yaml"
    os.mkfifo(path)
    return path


def test_a_fifo_is_not_read_as_a_spec(fifo):
    proc = run_archspec(["validate", fifo.name], fifo.parent, timeout=30)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "archspec: error[E0106]: spec.yaml is not a regular file" in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_is_not_read_as_a_spec(tmp_path):
    proc = run_archspec(["validate", "/dev/zero"], tmp_path, timeout=30)
    assert proc.returncode == 2
    assert "archspec: error[E0106]: /dev/zero is not a regular file" in proc.stderr


def test_unreadable_paths_are_E0106(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dir.yaml").mkdir()
    os.symlink("loop.yaml", tmp_path / "loop.yaml")
    assert main(["validate", "dir.yaml", "loop.yaml"]) == 2
    err = capsys.readouterr().err
    assert "error[E0106]: dir.yaml is a directory" in err
    assert "error[E0106]: cannot read loop.yaml: Too many levels of symbolic links" in err
    for path in ("a\0b.yaml", "loop.yaml", "x" * 5000 + ".yaml"):
        with pytest.raises(SpecError) as exc:
            archspec.load(path)
        assert exc.value.code == "E0106"


def test_quoted_lines_never_come_from_special_files(tmp_path, fifo):
    # Rendering a diagnostic that names a FIFO or a device must not open it for
    # reading: the FIFO would block and /dev/zero never end.
    code = f"""
        from archspec.diagnostics import Diagnostic, Position
        for file in ({str(fifo)!r}, "/dev/zero", "/dev/stdin"):
            print(repr(Diagnostic("E0201", "m", Position(file, 1, 1)).render()))
    """
    proc = run_python(code, tmp_path, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"'{file}:1:1: error[E0201]: m'" for file in (fifo, "/dev/zero", "/dev/stdin")]


def test_a_file_is_read_once_however_many_diagnostics_quote_it(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    keys = ", ".join(f"bad{i}: 1" for i in range(300))
    (tmp_path / "many.yaml").write_text(SMALL.replace("k: 3}", "k: 3, " + keys + "}"))
    reads = []
    real = yaml_source.read_regular_file
    monkeypatch.setattr(yaml_source, "read_regular_file", lambda *a: reads.append(a) or real(*a))
    assert main(["validate", "many.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.count("error[E0202]") == 300 and err.count("4 |   conv: {op: conv") == 300
    assert len(reads) == 2  # once to load the spec, once for all 300 quotes


def test_a_rewritten_file_is_quoted_as_it_is_now(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("first line\n")
    diagnostic = Diagnostic("E0201", "m", Position(str(path), 1, 1))
    assert "1 | first line" in diagnostic.render()
    path.write_text("second, longer line\n")
    assert "1 | second, longer line" in diagnostic.render()


def test_quoting_reads_a_bounded_amount(tmp_path, monkeypatch):
    path = tmp_path / "s.yaml"
    path.write_text("".join(f"line {i:04}\n" for i in range(100)))  # 10 bytes a line
    monkeypatch.setattr(diagnostics, "MAX_SOURCE_BYTES", 200)
    diagnostics._SOURCE_CACHE.clear()
    assert "10 | line 0009" in Diagnostic("E0201", "m", Position(str(path), 10, 1)).render()
    assert Diagnostic("E0201", "m", Position(str(path), 50, 1)).render() == f"{path}:50:1: error[E0201]: m"


def test_a_long_line_is_quoted_as_a_window_around_the_column(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("a" * 50_000 + "X" + "b" * 50_000 + "\n")
    lines = Diagnostic("E0201", "m", Position(str(path), 1, 50_001)).render().splitlines()
    quoted, caret = lines[2], lines[3]
    assert len(quoted) < diagnostics.MAX_SHOWN_CHARS + 20
    assert quoted.startswith("1 | ...a") and quoted.endswith("b...")
    assert quoted[caret.index("^")] == "X"


# -- expressions: every result bounded, every failure an ExpressionError -------------

ENV = {"xs": [1, 2], "x": 3, "zero": 0, "big": list(range(6000)), "huge": 10 ** 40, "text": "y" * 4000}


@pytest.mark.parametrize("text, code, words", [
    ("${round(1, -10**9)}", "E0504", "ndigits must lie between -30 and 30"),    # computed 10**(10**9)
    ("${round(2.5, 10**9)}", "E0504", "ndigits must lie between -30 and 30"),
    ("${0 ** -1}", "E0503", "division by zero in `0 ** -1`"),                   # ZeroDivisionError, exit 3
    ("${0.0 ** -2}", "E0503", "division by zero"),
    ("${zero ** -1}", "E0503", "division by zero"),
    ("${x % 0.0}", "E0503", "division by zero"),
    ("${10 ** 30}", "E0504", "too large"),
    ("${2 ** 100}", "E0504", "too large"),
    ("${7 ** 10 ** 9}", "E0504", "too large"),                                   # refused before computing
    ("${10**20 * 10**20}", "E0504", "`10 ** 20 * 10 ** 20` is too large"),
    ("${-(10**29) * 10}", "E0504", "too large"),
    ("${int('9' * 2)}", "E0504", "needs numbers"),
    ("${int(1e300)}", "E0504", "too large"),                                    # 301 digits
    ("${round(1e300)}", "E0504", "too large"),
    ("${int(1e308 * 10)}", "E0504", "is inf, not a finite number"),
    ("${float('nan')}", "E0504", "is nan, not a finite number"),
    ("${float('-inf')}", "E0504", "not a finite number"),
    ("${1e300 / 1e-300}", "E0504", "not a finite number"),
    ("${1.5 ** 10000}", "E0504", "overflows"),
    ("${(-8) ** 0.5}", "E0504", "has no real value"),
    ("${huge}", "E0504", "`huge` is too large"),
    ("${big + big}", "E0504", "makes a list of more than 10,000 values"),
    ("${[big, big]}", "E0504", "makes a list of more than 10,000 values"),
    ("${" + "[" * 33 + "1" + "]" * 33 + "}", "E0504", "nests lists more than 32"),
    ("${'a' * 3}", "E0504", "needs numbers"),
    ("${'a' + 'b'}", "E0504", "needs numbers"),
    ("pre${big}post", "E0504", "longer than 10,000 characters"),
    ("${text}${text}${text}", "E0504", "longer than 10,000 characters"),
    ("${len(5)}", "E0504", "len()"),
    ("${min()}", "E0504", "min()"),
    ("${max([])}", "E0504", "max()"),
    ("${big[1] + [1]}", "E0504", "needs numbers"),
    ("${" + "-" * 450 + "1}", "E0505", "nests too deeply"),
    ("${'\x00'}", "E0501", "cannot parse"),
])
def test_expression_failures_are_expression_errors(text, code, words):
    import time

    from archspec.expressions import ExpressionError, resolve

    start = time.perf_counter()
    with pytest.raises(ExpressionError) as err:
        resolve(text, ENV)
    assert time.perf_counter() - start < 1.0
    assert err.value.code == code and words in err.value.message, err.value.message
    assert len(err.value.message) < 300  # values in messages are shortened


@pytest.mark.parametrize("text, value", [
    ("${2 ** 99}", 2 ** 99), ("${-(10 ** 29) - 10 ** 29}", -2 * 10 ** 29), ("${10 ** -400}", 0.0),
    ("${round(10 ** 29, -30)}", 0), ("${round(2.5, 30)}", 2.5), ("${1 ** 10 ** 29}", 1),
    ("${len(big + [1])}", 6001), ("${[xs, xs, xs]}", [[1, 2]] * 3), ("${1e300}", 1e300),
    ("a${x}b${text[0]}", "a3by"), ("$huge", 10 ** 40),  # a lookup alone returns what YAML read
])
def test_expressions_within_the_bounds(text, value):
    from archspec.expressions import resolve

    assert resolve(text, ENV) == value


# -- extends: relative .yaml files inside the spec root, nothing else is read ---------

SECRET = "archspec: 1\ninput: [3, 8, 8]\ngraph: the-secret-line\n"  # read, it would be quoted


def child(directory, ref: str, name: str = "child.yaml"):
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"archspec: 1\nextends: {ref}\ngraph:\n  relu: {{op: relu}}\n")
    return path


def extends_error(path, **kw) -> Diagnostic:
    with pytest.raises(SpecError) as err:
        archspec.load(path, **kw)
    (d,) = err.value.diagnostics
    return d


@pytest.fixture
def outside(tmp_path):
    """A spec outside the root, with a schema error whose line an error would quote."""
    (tmp_path / "outside").mkdir()
    path = tmp_path / "outside" / "secret.yaml"
    path.write_text(SECRET)
    return path


@pytest.mark.parametrize("make_ref, why", [
    (lambda root, secret: str(secret), "is an absolute path"),
    (lambda root, secret: "../outside/secret.yaml", "lies outside the spec root"),
    (lambda root, secret: os.symlink(secret, root / "link.yaml") or "link.yaml", "lies outside the spec root"),
    (lambda root, secret: os.symlink(secret.parent, root / "sub") or "sub/secret.yaml", "lies outside the spec root"),
    (lambda root, secret: "../outside/no_such.yaml", "lies outside the spec root"),  # no hint whether it exists
    (lambda root, secret: "secret.txt", "does not name a .yaml or .yml file"),
    (lambda root, secret: "a\0b.yaml", "contains a NUL character"),
    (lambda root, secret: os.symlink("loop.yaml", root / "loop.yaml") or "loop.yaml", "Too many levels of symbolic"),
    (lambda root, secret: "x" * 300 + ".yaml", "File name too long"),
    (lambda root, secret: ("y/" * 3000) + "p.yaml", "cannot be opened"),
    (lambda root, secret: (root / "dir.yaml").mkdir() or "dir.yaml", "is not a regular file"),
], ids=["absolute", "dotdot", "symlink-file", "symlink-dir", "dotdot-missing", "suffix", "nul", "loop",
        "long-name", "long-path", "directory"])
def test_extends_outside_the_rule_is_E0312_and_reads_nothing(tmp_path, monkeypatch, capsys, outside,
                                                             make_ref, why):
    monkeypatch.chdir(tmp_path / "outside")  # the cwd does not contain the spec: its root is its directory
    root = tmp_path / "spec"
    root.mkdir()
    ref = make_ref(root, outside)
    path = child(root, '"' + ref.replace("\0", "\\0") + '"')
    d = extends_error(path)
    assert (d.code, d.pos.line, d.pos.col) == ("E0312", 2, 10), d.render()
    assert why in d.message, d.message
    if why not in ("is not a regular file",):
        assert d.hint.startswith("`extends:` takes a relative path to a .yaml or .yml file inside ")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the-secret-line" not in err and "Traceback" not in err


def test_a_fifo_named_by_extends_is_not_opened(tmp_path, fifo):
    os.rename(fifo, tmp_path / "parent.yaml")
    child(tmp_path, "parent.yaml")
    proc = run_archspec(["validate", "child.yaml"], tmp_path, timeout=30)
    assert_located(proc, "E0312", "child.yaml")
    assert "`extends: parent.yaml` is not a regular file" in proc.stderr


def test_extends_within_the_root_still_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "parent.yaml").write_text(SMALL)
    path = child(tmp_path / "base" / "variants", "../parent.yaml")
    os.symlink(tmp_path / "base" / "parent.yaml", tmp_path / "base" / "variants" / "alias.yml")
    child(tmp_path / "base" / "variants", "alias.yml", "via_link.yaml")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    # From elsewhere the root is the spec's own directory: `../parent.yaml` climbs out of it.
    assert "lies outside the spec root" in extends_error(path).message
    # A caller can widen the root; a link inside the root to a file inside it is fine.
    assert archspec.load(path, spec_root=tmp_path / "base").parents[0].endswith("parent.yaml")
    assert archspec.load(tmp_path / "base" / "variants" / "via_link.yaml", spec_root=tmp_path / "base").name
    assert archspec.build(path, spec_root=tmp_path / "base", device="meta") is not None
    # Run from a directory above the spec, the root is that directory.
    monkeypatch.chdir(tmp_path / "base")
    assert archspec.load("variants/child.yaml").parents == ("parent.yaml",)


def test_a_parent_may_not_leave_the_root_either(tmp_path, monkeypatch, outside):
    monkeypatch.chdir(tmp_path / "outside")
    root = tmp_path / "spec"
    child(root / "sub", "../../outside/secret.yaml", "parent.yaml")
    path = child(root, "sub/parent.yaml")
    d = extends_error(path)
    assert d.code == "E0312" and d.pos.file.endswith("parent.yaml") and "outside the spec root" in d.message


def test_extends_in_text_resolves_inside_the_current_directory(tmp_path, monkeypatch, outside):
    monkeypatch.chdir(tmp_path / "outside")
    (tmp_path / "outside" / "base.yaml").write_text(SMALL)
    text = "archspec: 1\nextends: {}\ngraph:\n  relu: {{op: relu}}\n"
    assert archspec.loads(text.format("base.yaml")).parents == ("base.yaml",)
    with pytest.raises(SpecError) as err:
        archspec.loads(text.format("../spec.yaml"))
    assert err.value.code == "E0312" and "outside the spec root" in str(err.value)


# -- build -o: only regular files replaced, failures are E0605, SIGTERM cleans up -----

@pytest.fixture
def small(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.yaml").write_text(SMALL)
    return tmp_path / "small.yaml"


def leftovers(directory) -> list:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".archspec-"))


def test_build_output_is_never_a_device_fifo_or_directory(small, fifo, capsys):
    os.symlink(fifo, small.parent / "link.pt")
    (small.parent / "dir.pt").mkdir()
    for target, why in ((fifo, "it exists and is not a regular file"), ("link.pt", "it exists and is not a regular"),
                        ("dir.pt", "it is a directory")):
        assert main(["build", "small.yaml", "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert f"archspec: error[E0605]: cannot write {target}: {why}" in err, err
    assert stat_is_fifo(fifo) and (small.parent / "dir.pt").is_dir() and leftovers(small.parent) == []


def stat_is_fifo(path) -> bool:
    import stat

    return stat.S_ISFIFO(os.stat(path).st_mode)


def test_build_output_never_replaces_the_spec_it_read(small, capsys):
    (small.parent / "child.yaml").write_text("archspec: 1\nextends: small.yaml\ninput: [3, 4, 4]\n")
    for target in ("small.yaml", "./small.yaml"):
        assert main(["build", "child.yaml", "-o", target]) == 2
        assert "error[E0605]: cannot write" in capsys.readouterr().err
    assert small.read_text() == SMALL


class _FullDisk:
    """A file on a disk that fills up after `room` bytes."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def write(self, data):
        if len(data) > self.room:
            import errno

            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.mark.parametrize("room", [0, 500], ids=["first-write", "mid-save"])
def test_a_full_disk_is_E0605_and_keeps_the_previous_file(small, capsys, monkeypatch, room):
    # After 500 bytes torch.save reports the failed write as a RuntimeError about
    # stream positions; it must still be reported as the disk being full.
    import types

    import archspec.atomic as atomic

    fake_os = types.SimpleNamespace(**{name: getattr(os, name) for name in dir(os) if not name.startswith("__")})
    fake_os.fdopen = lambda fd, mode: _FullDisk(os.fdopen(fd, mode), room)
    monkeypatch.setattr(atomic, "os", fake_os)
    (small.parent / "out.pt").write_bytes(b"previous")
    assert main(["build", "small.yaml", "-o", "out.pt"]) == 2
    err = capsys.readouterr().err
    assert "archspec: error[E0605]: cannot write out.pt: No space left on device" in err, err
    assert (small.parent / "out.pt").read_bytes() == b"previous" and leftovers(small.parent) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_writing_to_dev_full_is_E0605(small, capsys, monkeypatch):
    # The temporary file is /dev/full, whose writes fail with ENOSPC as a full disk's do.
    import archspec.atomic as atomic

    def on_dev_full(prefix, suffix, dir):
        path = os.path.join(dir, prefix + "full" + suffix)
        open(path, "wb").close()
        return os.open("/dev/full", os.O_WRONLY), path

    monkeypatch.setattr(atomic.tempfile, "mkstemp", on_dev_full)
    (small.parent / "out.pt").write_bytes(b"previous")
    assert main(["build", "small.yaml", "-o", "out.pt"]) == 2
    assert "archspec: error[E0605]: cannot write out.pt: No space left on device" in capsys.readouterr().err
    assert (small.parent / "out.pt").read_bytes() == b"previous" and leftovers(small.parent) == []


SIGTERM_DURING_BUILD = """
    import os, signal, time
    import torch
    from archspec.cli import main

    def save(obj, f):  # SIGTERM arrives halfway through writing the weights
        f.write(b"half of the weights")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs before this returns
    torch.save = save
    main(["build", "small.yaml", "-o", "out.pt"])
"""


def test_sigterm_during_build_output_removes_the_temporary_file(small):
    (small.parent / "out.pt").write_bytes(b"previous")
    proc = run_python(SIGTERM_DURING_BUILD, small.parent)
    assert proc.returncode == -15, (proc.returncode, proc.stdout, proc.stderr)  # ended by the signal itself
    assert (small.parent / "out.pt").read_bytes() == b"previous" and leftovers(small.parent) == []


# The same with other handlers, on atomic_output itself (no torch to import: fast).
SIGTERM_DURING_WRITE = """
    import os, signal, time
    from archspec.atomic import atomic_output
    from archspec.diagnostics import SpecError

    calls = []
    own = lambda *a: calls.append(1)
    signal.signal(signal.SIGTERM, {handler})
    try:
        with atomic_output("out.pt") as f:
            f.write(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler runs before this returns
            f.write(b" and the rest")
        print("wrote")
    except SpecError as exc:
        print(exc)
    print("handler restored:", signal.getsignal(signal.SIGTERM) == {handler}, "own handler ran:", len(calls))
"""


def test_sigterm_with_a_handler_of_its_own_is_E0605(tmp_path):
    proc = run_python(SIGTERM_DURING_WRITE.format(handler="own"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["archspec: error[E0605]: cannot write out.pt: interrupted by SIGTERM",
                                        "handler restored: True own handler ran: 1"]
    assert list(tmp_path.iterdir()) == []


def test_an_ignored_sigterm_stays_ignored(tmp_path):
    proc = run_python(SIGTERM_DURING_WRITE.format(handler="signal.SIG_IGN"), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["wrote", "handler restored: True own handler ran: 0"]
    assert (tmp_path / "out.pt").read_bytes() == b"half and the rest" and leftovers(tmp_path) == []


def test_writing_from_another_thread_installs_no_handler(tmp_path):
    import signal
    import threading

    from archspec.atomic import atomic_output

    seen = []

    def write():
        with atomic_output(tmp_path / "out.bin") as f:
            seen.append(signal.getsignal(signal.SIGTERM))
            f.write(b"data")

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert seen == [before] and (tmp_path / "out.bin").read_bytes() == b"data"
    with atomic_output(tmp_path / "out.bin") as f:  # in the main thread, for the write only
        assert signal.getsignal(signal.SIGTERM) != before
        f.write(b"again")
    assert signal.getsignal(signal.SIGTERM) == before


# -- load_built: a damaged or edited artifact is E0107, never a raw exception ----------

@pytest.fixture
def artifact(tmp_path):
    """A good artifact's payload, and a function that saves a changed copy and loads it."""
    spec = archspec.loads(SMALL.replace("graph:\n", "name: small\ngraph:\n") + "  bn: {op: bn}\n")
    archspec.save_built(spec, archspec.build(spec), tmp_path / "good.pt")
    good = torch.load(tmp_path / "good.pt", weights_only=True)

    def load(change) -> SpecError:
        payload = {**good, "state_dict": dict(good["state_dict"])}
        change(payload)
        torch.save(payload, tmp_path / "bad.pt")
        with pytest.raises(SpecError) as err:
            archspec.load_built(tmp_path / "bad.pt")
        return err.value

    return good, load


def _set(key, value):
    return lambda p: p.update({key: value})


def _set_weight(key, value):
    return lambda p: p["state_dict"].update({key: value})


DEEP_SPEC = "archspec: 1\ninput: " + "[" * DEEP + "3" + "]" * DEEP + "\n"


@pytest.mark.parametrize("change, words", [
    (_set("extra", 1), "has unexpected key `extra`"),
    (lambda p: p.pop("name"), "lacks key `name`"),
    (lambda p: p.pop("state_dict"), "lacks key `state_dict`"),
    (_set("spec", 3), "`spec` is int, not text"),
    (_set("name", ["small"]), "`name` is list, not text"),
    (_set("state_dict", [1, 2]), "`state_dict` is list, not a mapping"),
    (_set_weight("conv.weight", 3), "maps 'conv.weight' to int"),
    (_set_weight(3, None), "maps 3 to NoneType"),
    (_set("spec", "graph: [\n"), "its spec is not valid: YAML syntax"),
    (lambda p: p.update(spec=p["spec"].replace("op: conv", "op: conv2d")), "unknown op `conv2d` (error[E0301]"),
    (lambda p: p.update(spec=p["spec"].replace("k: 3", "k: 30")), "(error[E0404]"),
    (lambda p: p.update(spec="extends: ../x.yaml\n" + p["spec"]), "its spec has `extends:`"),
    (_set("spec", DEEP_SPEC), "nests deeper than 100 levels (error[E0311]"),
    (_set("name", "other"), "its name `other` differs from its spec's `small`"),
    (lambda p: p["state_dict"].pop("bn.running_var"), "missing key `bn.running_var`"),
    (_set_weight("extra.weight", torch.zeros(1)), "unexpected key `extra.weight`"),
    (_set_weight("conv.weight", torch.zeros(2, 2)),
     "`conv.weight` has shape [2, 2] in the file, the spec makes [4, 3, 3, 3]"),
    (_set_weight("conv.weight", torch.zeros(4, 3, 3, 3, dtype=torch.complex64)), "holds torch.complex64 values"),
    # An edited spec describing a huge network is compared with the file before any weight exists.
    # (2^31 - 1 output channels: 232 GB of weights, never allocated)
    (lambda p: p.update(spec=p["spec"].replace("out: 4", "out: 2147483647")), "the spec makes [2147483647"),
], ids=lambda v: None if callable(v) else v[:30])
def test_a_damaged_artifact_is_E0107(artifact, change, words):
    _, load = artifact
    err = load(change)
    (d,) = err.diagnostics
    assert d.code == "E0107" and d.message.startswith("artifact is damaged: ") and words in d.message, d.message


def test_the_untouched_artifact_still_loads(artifact, tmp_path):
    good, _ = artifact
    net = archspec.load_built(tmp_path / "good.pt")
    assert torch.equal(net.state_dict()["conv.weight"], good["state_dict"]["conv.weight"])
    half = {**good, "state_dict": {k: v.half() if v.is_floating_point() else v for k, v in good["state_dict"].items()}}
    torch.save(half, tmp_path / "half.pt")  # another precision is converted, as load_state_dict does
    assert archspec.load_built(tmp_path / "half.pt") is not None


@pytest.mark.parametrize("payload, words", [
    ([1, 2], "is not an archspec build (archspec.built/1)"),
    ({"format": "other"}, "is not an archspec build"),
    ({"format": b"archspec.built/1"}, "is not an archspec build"),
    (None, "is not an archspec build: not a zip archive as torch.save writes"),  # not a torch file at all
    ("legacy", "not a zip archive"),  # torch's old format, which archspec never writes
    ("zip", "torch.load failed (RuntimeError)"),  # a zip archive, but not torch's
])
def test_a_file_that_is_not_an_artifact_is_E0106(tmp_path, payload, words):
    path = tmp_path / "x.pt"
    if payload is None:
        path.write_bytes(b"not a torch file")
    elif payload == "zip":
        import zipfile

        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "hello")
    elif payload == "legacy":
        torch.save({"format": "archspec.built/1"}, path, _use_new_zipfile_serialization=False)
    else:
        torch.save(payload, path)
    with pytest.raises(SpecError) as err:
        archspec.load_built(path)
    assert err.value.code == "E0106" and words in str(err.value)


def test_unreadable_artifact_paths_are_E0106(tmp_path):
    (tmp_path / "dir.pt").mkdir()
    os.symlink("loop.pt", tmp_path / "loop.pt")
    for path, words in ((tmp_path / "dir.pt", "is a directory"), (tmp_path / "loop.pt", "symbolic links"),
                        (str(tmp_path / "a\0b.pt"), "cannot read"), (tmp_path / "none.pt", "no such file")):
        with pytest.raises(SpecError) as err:
            archspec.load_built(path)
        assert err.value.code == "E0106" and words in str(err.value), str(err.value)


def test_a_fifo_is_not_loaded_as_an_artifact(fifo):
    proc = run_python(f"""
        import archspec
        try:
            archspec.load_built({str(fifo)!r})
        except archspec.SpecError as exc:
            print(exc.code, exc)
    """, fifo.parent, timeout=30)
    assert proc.returncode == 0 and proc.stdout.startswith("E0106 ") and "is not a regular file" in proc.stdout


def test_an_artifact_embedding_a_deeply_nested_spec_is_a_spec_error(tmp_path):
    # In a subprocess: composing this spec crashed the interpreter with SIGSEGV.
    proc = run_python(f"""
        import torch, archspec
        torch.save({{"format": "archspec.built/1", "name": "deep", "spec": {DEEP_SPEC!r},
                    "state_dict": {{}}}}, "deep.pt")
        try:
            archspec.load_built("deep.pt")
        except archspec.SpecError as exc:
            print(exc.code)
    """, tmp_path, timeout=60)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert proc.stdout.split() == ["E0107"]


# -- a single YAML value (for --set), read with the same checks --------------------

@pytest.mark.parametrize("text, code", [
    ("[" * DEEP + "1" + "]" * DEEP, "E0311"),  # yaml.safe_load raised RecursionError
    ("9" * 5000, "E0201"),                      # int() of 5,000 digits raised ValueError
    ("[.nan]", "E0201"), ("!!python/name:os.system", "E0103"), ("[1, 2", "E0101"),
])
def test_one_yaml_value_is_read_with_the_checks_a_spec_gets(text, code):
    with pytest.raises(SpecError) as err:
        yaml_source.load_value(text, "--set x")
    assert err.value.code == code and err.value.diagnostics[0].pos.file == "--set x"


def test_one_yaml_value():
    assert yaml_source.load_value("[2, 2, 2, 2]", "--set x") == [2, 2, 2, 2]
    assert yaml_source.load_value("{0: a}", "--set x") == {"0": "a"}
    assert yaml_source.load_value("", "--set x") is None


@pytest.mark.parametrize("value", ["1" + "0" * 30, "-1" + "0" * 30, "0x" + "f" * 4000, "0b" + "1" * 120, "9" * 5000])
def test_whole_numbers_in_a_spec_stay_below_10_to_the_30(value):
    with pytest.raises(SpecError) as err:
        yaml_source.load_text(f"v: {value}\n", "t.yaml")
    assert err.value.code == "E0201" and "too large: whole numbers in a spec stay below 10**30" in str(err.value)
    assert yaml_source.load_text("v: " + "9" * 30 + "\n", "t.yaml")["v"] == 10 ** 30 - 1


def test_an_archive_that_would_inflate_is_refused_before_torch_reads_it(artifact, tmp_path):
    import zipfile

    good = zipfile.ZipFile(tmp_path / "good.pt")
    with zipfile.ZipFile(tmp_path / "deflated.pt", "w", zipfile.ZIP_DEFLATED) as out:  # loads in torch
        for entry in good.infolist():
            out.writestr(entry.filename, good.read(entry.filename))
    with zipfile.ZipFile(tmp_path / "bomb.pt", "w") as out:  # 100 MB of zeros in a file of 100 KB
        for entry in good.infolist():
            out.writestr(entry.filename, good.read(entry.filename))
        out.writestr("archive/data/9", b"\0" * 100_000_000, zipfile.ZIP_DEFLATED)
    for name in ("deflated.pt", "bomb.pt"):
        with pytest.raises(SpecError) as err:
            archspec.load_built(tmp_path / name)
        assert err.value.code == "E0106" and "would expand to more than the file holds" in str(err.value)
