"""The property on broken specs: `MutationBench.check()` runs `archspec validate` on a
mutant, in a scratch copy of the shipped specs (so `extends:` resolves), and requires
exit 0, 1 or 2 (never an exception or 3), with every error reported as
`file:line:col: error[CODE]:` (or `archspec: error[CODE]:`) at a position inside the file,
and exit 1 exactly when only `expect:` figures failed."""
from __future__ import annotations

import contextlib
import io
import re
import shutil
import tempfile
import traceback
from collections import Counter
from pathlib import Path

from .failure import raise_failure
from .mutate import SPECS_DIR, Mutant

_HEADER = re.compile(r"^(?:(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)|archspec): "
                     r"(?P<sev>error|warning)\[(?P<code>[EW]\d{4})\]: ")
_CONTINUATION = re.compile(r"^(?: *\d* \|.*|  = (?:note|hint): .*)$")
_CHECK_CODES = {"E0701", "E0702", "E0703"}


class MutationBench:
    """A scratch copy of the shipped specs (so `extends:` resolves) to validate mutants in."""

    def __init__(self, directory: Path = SPECS_DIR):
        self.source = Path(directory)
        self.dir = Path(tempfile.mkdtemp(prefix="archspec-fuzz-"))
        for p in self.source.glob("*.yaml"):
            shutil.copy(p, self.dir / p.name)
        self.children = {}  # parent file -> specs extending it
        for p in sorted(self.source.glob("*.yaml")):
            m = re.search(r"^extends:\s*(\S+)", p.read_text(encoding="utf-8"), re.M)
            if m:
                self.children.setdefault(m.group(1), []).append(p.name)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def validate(self, path: Path):
        from archspec.cli import main as cli_main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli_main(["validate", str(path)])
        return rc, out.getvalue(), err.getvalue()

    def check(self, mutant: Mutant, stats: Counter | None = None) -> None:
        stats = stats if stats is not None else Counter()
        target = self.dir / mutant.name
        try:
            target.write_text(mutant.text, encoding="utf-8", errors="surrogatepass")
            checked = [mutant.name]
            if mutant.name in self.children:  # a broken parent: its children report it too
                checked.append(self.children[mutant.name][0])
            for name in checked:
                self._check_one(mutant, self.dir / name, stats)
        finally:
            shutil.copy(self.source / mutant.name, target)

    def _check_one(self, mutant: Mutant, path: Path, stats: Counter) -> None:
        def fail(msg):
            where = f" (validating {path.name})" if path.name != mutant.name else ""
            raise_failure(f"{msg}\nmutations of {mutant.name}: {mutant.steps}{where}", mutant.text)

        try:
            rc, out, err = self.validate(path)
        except BaseException:  # noqa: BLE001 - anything escaping main() is the failure
            stats["crashed"] += 1
            fail(f"`archspec validate` raised:\n{traceback.format_exc()}")
        stats[f"validate exit {rc}"] += 1
        if rc not in (0, 1, 2):
            stats["crashed"] += 1
            fail(f"`archspec validate` exited {rc}:\n{err}")
        if rc == 0:
            if "ok (" not in out:
                fail(f"exit 0 without an ok line: {out!r}")
            return
        lines = err.rstrip("\n").split("\n")
        codes = []
        if not lines or not _HEADER.match(lines[0]):
            fail(f"stderr does not start with `file:line:col: error[CODE]:`:\n{err}")
        for line in lines:
            m = _HEADER.match(line)
            if m:
                if m.group("sev") == "error":
                    codes.append(m.group("code"))
                if m.group("file"):
                    self._check_position(m, line, fail)
            elif not _CONTINUATION.match(line):
                fail(f"stray stderr line {line!r}:\n{err}")
        if not codes:
            fail(f"exit {rc} without an error diagnostic:\n{err}")
        for code in codes:
            stats[f"rejected {code}"] += 1
        if rc == 1 and set(codes) - _CHECK_CODES:
            fail(f"exit 1 (a figure failed) with errors {codes}:\n{err}")
        if rc == 2 and not set(codes) - _CHECK_CODES:
            fail(f"exit 2 with only figure errors {codes}:\n{err}")

    def _check_position(self, m, line, fail):
        file = Path(m.group("file"))
        if not file.is_absolute():
            file = Path.cwd() / file
        if not file.is_file():
            fail(f"diagnostic names a missing file: {line}")
        text = file.read_text(encoding="utf-8", errors="replace")
        lines = re.split(r"\r\n|[\r\n\x85\u2028\u2029]", text)  # YAML's line breaks
        line_no, col = int(m.group("line")), int(m.group("col"))
        # PyYAML puts the end of a file without a final newline on the line after it.
        at_end = line_no == len(lines) + 1 and col == 1
        if not (1 <= line_no <= len(lines) or at_end) or col < 1:
            fail(f"diagnostic position outside the file ({len(lines)} lines): {line}")

