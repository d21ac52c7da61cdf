"""SVG for documents and papers: the DOT drawing laid out by Graphviz's `dot`, the
field's usual layout program (not a Python dependency: a program on PATH)."""
from __future__ import annotations

import shutil
import subprocess

from ..diagnostics import error
from .dot import to_dot
from .model import Drawing

INSTALL_HINT = ("install Graphviz: `apt-get install graphviz` (Debian, Ubuntu), `brew install graphviz` "
                "(macOS) or `conda install graphviz`; or draw with --format html, dot or mermaid, "
                "which need nothing installed")
TIMEOUT_S = 300  # ResNet-152 unfolded takes seconds; minutes mean something is wrong


def to_svg(drawing: Drawing, depth: int | None = None) -> str:
    program = shutil.which("dot")
    if program is None:
        raise error("E0610", "--format svg needs Graphviz's `dot` program, which is not on PATH",
                    hint=INSTALL_HINT)
    try:
        done = subprocess.run([program, "-Tsvg"], input=to_dot(drawing, depth).encode("utf-8"),
                              capture_output=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise error("E0611", f"Graphviz `dot` ({program}) did not finish within {TIMEOUT_S} s",
                    hint="draw fewer boxes with --depth, or use --format html") from None
    except OSError as exc:
        raise error("E0611", f"cannot run Graphviz `dot` ({program}): {exc.strerror or exc}",
                    hint=INSTALL_HINT) from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise error("E0611", f"Graphviz `dot` ({program}) failed with status {done.returncode}"
                    + (f": {said[-1]}" if said else ""),
                    hint="`archspec draw SPEC --format dot` gives the text it was given; "
                         "check that `dot -V` works")
    return done.stdout.decode("utf-8")
