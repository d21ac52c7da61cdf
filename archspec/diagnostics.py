"""Diagnostics: every error a person can cause, with its code and source position.

A stage that finds a problem raises `SpecError` holding one or more `Diagnostic`s.
The command line renders them as `file:line:col: error[CODE]: message`; the API
raises them as exceptions. Codes are stable and documented in docs/errors.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


def _caret_lines(pos: Position) -> list[str]:
    try:
        with open(pos.file, encoding="utf-8") as f:
            for number, text in enumerate(f, start=1):
                if number == pos.line:
                    text = text.rstrip("\n")
                    gutter = " " * len(str(pos.line))
                    return [f"{gutter} |", f"{pos.line} | {text}",
                            f"{gutter} | {' ' * (pos.col - 1)}^"]
    except OSError:
        pass
    return []


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
    except ValueError:
        return str(p)
