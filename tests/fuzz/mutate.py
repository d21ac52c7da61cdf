"""The strategy for broken specs: `mutated_specs()` takes a shipped spec and breaks it
(lines deleted, duplicated or swapped, scalars replaced, tokens copied, characters
inserted, indentation changed, truncation), mostly where the YAML is rather than in
comments."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hypothesis import strategies as st

SPECS_DIR = Path(__file__).resolve().parents[2] / "specs"

MUTATIONS = ["replace_scalar", "delete_line", "duplicate_line", "swap_lines", "insert_chars",
             "indent", "truncate", "copy_token"]
_TOKEN = re.compile(r"\"[^\"\n]*\"|\$\{[^}\n]*\}|[A-Za-z0-9_.$~+-]+")
_REPLACEMENTS = [
    "0", "-1", "1", "2", "3", "7", "64", "300", "2147483648", "1000000000000", "1.5", "-0.0", "0.5",
    "1e-3", ".inf", ".nan", "true", "false", "~", "null", "yes", "no", "on", "''", '""', "x",
    "conv", "bn", "relu", "in", "input", "layer1", "add", "concat", "op", "block", "seq", "from",
    "[]", "{}", "[1, 2]", "[1, 2, 3]", "[[1]]", "{a: 1}", "{op: relu}", "[0, 0]", "[-1, 2]",
    "$width", "$nope", '"${1/0}"', '"${width * }"', '"${2 ** 99}"', '"${layers[9]}"',
    "\"${'a' + 1}\"", '"${__import__(\'os\')}"', '"${(lambda: 1)()}"', '"${x.y}"', '"${[1][0:1]}"',
    '"${max()}"', '"${int(\'z\')}"', '"${1 if true}"', '"${len(3)}"', '"${-num_classes}"',
    '"${10 ** 40}"', '"${9.5 // 0.0}"', '"${\'a\' * 3}"', '"${not_a_name}"', '"a${b"',
    "!!python/object:os.system", "!!binary aGVsbG8=", "&anchor x", "*anchor", "<<", "|", ">", "'",
    '"', "%", "@", "`", "?", "- x", "a: b", "# c", "\\t", "${", "}", "]", "[",
]
_CHARS = " \t\n:{}[],-#&*!|>'\"%@`?$~.0123456789abcxyz_\u00e9\u2028\x00\x85"


@dataclass
class Mutant:
    name: str                # which shipped spec
    text: str
    steps: list

    def __repr__(self):
        return f"Mutant({self.name}, steps={self.steps}, <<\n{self.text}\n>>)"


def shipped_specs(directory: Path = SPECS_DIR) -> list:
    return sorted(p.name for p in Path(directory).glob("*.yaml"))


_COMMENT = re.compile(r"(?:^|(?<=\s))#[^\n]*")


def _code_spans(text: str) -> list:
    """(start, end) of the text outside comments and blank lines, where mutations bite."""
    spans, pos = [], 0
    for m in _COMMENT.finditer(text):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _pick_line(draw, lines) -> int:
    """A line index, mostly one that holds YAML rather than a comment."""
    code = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")]
    if code and draw(st.integers(0, 4)) < 4:
        return code[draw(st.integers(0, len(code) - 1))]
    return draw(st.integers(0, len(lines) - 1))


def _mutate(draw, text: str, kind: str):
    lines = text.split("\n")
    if kind == "replace_scalar" or kind == "copy_token":
        spans = _code_spans(text)
        all_tokens = list(_TOKEN.finditer(text))
        tokens = [m for m in all_tokens if any(a <= m.start() < b for a, b in spans)] or all_tokens
        if not tokens:
            return text, "no token"
        m = tokens[draw(st.integers(0, len(tokens) - 1))]
        if kind == "copy_token":
            new = tokens[draw(st.integers(0, len(tokens) - 1))].group(0)
        elif draw(st.booleans()):
            new = str(draw(st.integers(-5, 300)))
        else:
            new = draw(st.sampled_from(_REPLACEMENTS))
        return text[:m.start()] + new + text[m.end():], f"{kind} {m.group(0)!r}@{m.start()} -> {new!r}"
    if kind == "delete_line":
        i = _pick_line(draw, lines)
        return "\n".join(lines[:i] + lines[i + 1:]), f"delete line {i + 1}"
    if kind == "duplicate_line":
        i = _pick_line(draw, lines)
        return "\n".join(lines[:i + 1] + lines[i:]), f"duplicate line {i + 1}"
    if kind == "swap_lines":
        i, j = _pick_line(draw, lines), _pick_line(draw, lines)
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines), f"swap lines {i + 1} and {j + 1}"
    if kind == "insert_chars":
        spans = _code_spans(text) or [(0, len(text))]
        a, b = spans[draw(st.integers(0, len(spans) - 1))]
        pos = draw(st.integers(a, b))
        chars = draw(st.text(alphabet=_CHARS, min_size=1, max_size=4))
        return text[:pos] + chars + text[pos:], f"insert {chars!r} at {pos}"
    if kind == "indent":
        i = _pick_line(draw, lines)
        line = lines[i]
        body = line.lstrip(" ")
        how = draw(st.sampled_from(["more", "less", "tab"]))
        if how == "more":
            lines[i] = " " * draw(st.integers(1, 4)) + line
        elif how == "less":
            lines[i] = " " * max(0, len(line) - len(body) - draw(st.integers(1, 4))) + body
        else:
            lines[i] = "\t" + body
        return "\n".join(lines), f"indent line {i + 1} {how}"
    if kind == "truncate":
        pos = draw(st.integers(0, len(text)))
        return text[:pos], f"truncate at {pos}"
    raise ValueError(kind)


@st.composite
def mutated_specs(draw, names: list | None = None, directory: Path = SPECS_DIR, max_steps: int = 3):
    """A shipped spec's text with one to `max_steps` random mutations."""
    names = names or shipped_specs(directory)
    name = draw(st.sampled_from(names))
    text = (Path(directory) / name).read_text(encoding="utf-8")
    steps = []
    for _ in range(draw(st.integers(1, max_steps))):
        kind = draw(st.sampled_from(MUTATIONS))
        text, what = _mutate(draw, text, kind)
        steps.append(what)
    return Mutant(name, text, steps)

