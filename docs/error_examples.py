"""Keep docs/errors.md's examples equal to what archspec prints for them.

`python docs/error_examples.py` rewrites each example taken from the bad-spec corpus
(or from a shipped spec on the command line); `--check` lists the stale ones and
exits 1 (tests/test_bad_specs.py runs it).
"""
from __future__ import annotations

import contextlib
import io
import re
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "errors.md"
CORPUS = ROOT / "tests" / "bad_specs"
_SECTION = re.compile(r"^### (E\d{4})$", re.M)
_SEE_CORPUS = re.compile(r"^See corpus: .*$", re.M)
_EXAMPLE = re.compile(
    r"Example \((?:\[`(?P<file>[^`]+)`\]\(\.\./tests/bad_specs/[^)]+\)|`(?P<cmd>archspec [^`]+)`)\):\n\n```\n"
    r"(?P<body>(?:(?!```).)*?)\n?```", re.S)  # a body never holds a fence, so an empty one is safe


def _run(argv: list) -> str:
    from archspec.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        main(argv)
    return err.getvalue().rstrip("\n")


def _output(match) -> str | None:
    if match["file"]:
        if not (CORPUS / match["file"]).is_file():
            raise SystemExit(f"docs/errors.md: the example {match['file']} is not in tests/bad_specs/; pick another")
        return _run(["validate", f"tests/bad_specs/{match['file']}"])
    argv = shlex.split(match["cmd"])[1:]
    if "-o" in argv:  # writes a file: leave it as documented
        return None
    return _run(argv)


def corpus_by_code() -> dict:
    """code -> the corpus files whose `# expect:` header lists it."""
    found: dict = {}
    for path in sorted(CORPUS.glob("*.yaml")):
        header = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if header.startswith("# expect:"):
            for code in sorted(set(re.findall(r"E\d{4}", header))):
                found.setdefault(code, []).append(path.name)
    return found


def with_corpus_lists(text: str) -> str:
    """Each section's `See corpus:` line lists exactly the corpus files that expect its code."""
    files = corpus_by_code()
    parts = _SECTION.split(text)
    out = [parts[0]]
    for code, body in zip(parts[1::2], parts[2::2]):
        names = files.get(code, [])
        listed = ", ".join(f"[`{n}`](../tests/bad_specs/{n})" for n in names)
        current = _SEE_CORPUS.search(body)
        if current and names:
            tests = current[0].partition("; test")[2]  # the tests named by hand after the files stay
            line = f"See corpus: {listed}" + (f"; test{tests}" if tests else ".")
            body = body[:current.start()] + line + body[current.end():]
        out.append(f"### {code}{body}")
    return "".join(out)


def refreshed(text: str) -> tuple[str, list]:
    stale = []
    listed = with_corpus_lists(text)
    if listed != text:
        stale.append("a `See corpus:` list")
        text = listed

    def replace(match):
        output = _output(match)
        if output is None or output == match["body"]:
            return match[0]
        stale.append(match["file"] or match["cmd"])
        start, end = match.span("body")
        return match[0][:start - match.start()] + output + "\n```"

    import os

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return _EXAMPLE.sub(replace, text), stale
    finally:
        os.chdir(cwd)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = DOC.read_text(encoding="utf-8")
    new, stale = refreshed(text)
    if "--check" in argv:
        for name in stale:
            print(f"stale example: {name}")
        return 1 if stale else 0
    DOC.write_text(new, encoding="utf-8")
    print(f"refreshed {len(stale)} example(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
