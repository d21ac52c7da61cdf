"""Diagnostics: every error a person can cause, with its code and source position.

A stage that finds a problem raises `SpecError` holding one or more `Diagnostic`s.
The command line renders them as `file:line:col: error[CODE]: message`; the API
raises them as exceptions. Codes are stable and documented in docs/errors.md.
"""
from __future__ import annotations

import os
import re
import stat
from collections import OrderedDict
from pathlib import Path

from .records import record


@record
class Position:
    """A place in a source file, 1-based like every editor."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


MAX_NOTES = 8  # instantiation notes shown before the chain is elided
# Exit status of a check that ran and failed (an `expect:` figure), as opposed to
# an invalid spec or command line (2).
EXIT_CHECK_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3
_CHECK_CODES = {"E0701", "E0702", "E0703", "E0705"}  # figures the spec or the caller asked for
_INTERNAL_CODES = {"E0704"}                  # archspec disagreeing with PyTorch: a bug


@record
class Diagnostic:
    code: str
    message: str
    pos: Position | None = None
    hint: str | None = None
    # Instantiation chain, innermost first: ("block `bottleneck`", position), ...
    trace: tuple[tuple[str, Position | None], ...] = ()
    severity: str = "error"

    @property
    def exit_code(self) -> int:
        if self.code in _INTERNAL_CODES:
            return EXIT_INTERNAL
        return EXIT_CHECK_FAILED if self.code in _CHECK_CODES else EXIT_INVALID

    def render(self, with_source: bool = True) -> str:
        where = f"{self.pos}: " if self.pos else "archspec: "
        lines = [f"{where}{self.severity}[{self.code}]: {self.message}"]
        if with_source and self.pos is not None:
            caret = _caret_lines(self.pos)
            if caret:
                lines.extend(caret)
        shown = self.trace if len(self.trace) <= MAX_NOTES else self.trace[:MAX_NOTES - 1]
        for what, pos in shown:
            lines.append(f"  = note: in {what}" + (f" instantiated at {pos}" if pos else ""))
        if len(shown) < len(self.trace):
            what, pos = self.trace[-1]
            lines.append(f"  = note: ... {len(self.trace) - len(shown) - 1} more, outermost: {what}"
                         + (f" at {pos}" if pos else ""))
        if self.hint:
            lines.append(f"  = hint: {self.hint}")
        return "\n".join(lines)


class SpecError(Exception):
    """One or more diagnostics; raised by any stage for input a person got wrong."""

    def __init__(self, diagnostics: Diagnostic | list[Diagnostic]):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = list(diagnostics)
        super().__init__("\n".join(d.render(with_source=False) for d in self.diagnostics))

    @property
    def exit_code(self) -> int:
        return max(d.exit_code for d in self.diagnostics)

    @property
    def code(self) -> str:
        return self.diagnostics[0].code


def error(code: str, message: str, pos: Position | None = None, hint: str | None = None,
          trace: tuple = ()) -> SpecError:
    return SpecError(Diagnostic(code, message, pos, hint, trace))


# Source lines quoted under diagnostics: each file is read once (a run that prints
# thousands of diagnostics must not read it thousands of times), only if it is a
# regular file, and no more of it than a spec may hold.
MAX_SOURCE_BYTES = 2_000_001
MAX_SHOWN_CHARS = 8_000  # a longer line is quoted as a window around the column
_SOURCE_CACHE: OrderedDict = OrderedDict()
_SOURCE_CACHE_SIZE = 16
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")  # what YAML counts as a line break


def _caret_lines(pos: Position) -> list[str]:
    lines = _source_lines(pos.file)
    if not 1 <= pos.line <= len(lines):
        return []
    text, col = _window(lines[pos.line - 1], pos.col)
    gutter = " " * len(str(pos.line))
    return [f"{gutter} |", f"{pos.line} | {text}", f"{gutter} | {' ' * (col - 1)}^"]


def _window(text: str, col: int) -> tuple[str, int]:
    """The line, or the part of it around `col` when it is too long to quote whole."""
    if len(text) <= MAX_SHOWN_CHARS:
        return text, col
    start = max(0, min(col - 1 - MAX_SHOWN_CHARS // 2, len(text) - MAX_SHOWN_CHARS))
    part = text[start:start + MAX_SHOWN_CHARS]
    prefix = "..." if start else ""
    suffix = "..." if start + MAX_SHOWN_CHARS < len(text) else ""
    return prefix + part + suffix, col - start + len(prefix)


def _source_lines(file: str) -> list[str]:
    try:
        st = os.stat(file)
    except (OSError, ValueError):
        return []
    if not stat.S_ISREG(st.st_mode):  # a FIFO would block, /dev/zero never end
        return []
    # The key changes when the file does: tests rewrite files under one relative name.
    key = (os.path.abspath(file), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    lines = _SOURCE_CACHE.get(key)
    if lines is None:
        from .yaml_source import read_regular_file

        try:
            data = read_regular_file(file, MAX_SOURCE_BYTES)
        except (OSError, ValueError):
            return []
        lines = _LINE_BREAK.split(data.decode("utf-8", errors="replace"))
        if len(_SOURCE_CACHE) >= _SOURCE_CACHE_SIZE:
            _SOURCE_CACHE.popitem(last=False)
    _SOURCE_CACHE[key] = lines
    _SOURCE_CACHE.move_to_end(key)
    return lines


MAX_SUGGESTION_CANDIDATES = 2000


def did_you_mean(name: str, candidates) -> str | None:
    import difflib

    name = str(name)
    names = [str(c) for c in candidates]
    if len(names) > MAX_SUGGESTION_CANDIDATES:
        # A scope of 10,000s of names: compare only those of about the same length and
        # first letter, so suggesting stays cheap however many errors are reported.
        names = [c for c in names if abs(len(c) - len(name)) <= 2 and c[:1] == name[:1]]
        names = names[:MAX_SUGGESTION_CANDIDATES]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


def display_path(path: str | Path) -> str:
    """Paths are shown relative to the working directory when they sit below it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):  # outside the cwd; a NUL byte; a symlink loop
        return str(p)
