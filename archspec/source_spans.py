"""Where a value written in a YAML file ends, for editors and CI annotations that
underline the whole offending value rather than one character.

Diagnostics carry where a value starts; the end is found by composing the file
again (only when a machine-readable report asks for it) and reading the YAML
node that starts there: a scalar, a flow collection `{...}` or `[...]`, or a block
collection up to its last character. Ends are exclusive, as in SARIF and the
Language Server Protocol: the 1-based line and column just after the value.
"""
from __future__ import annotations

import os
from functools import lru_cache

import yaml

from .diagnostics import MAX_SOURCE_BYTES, Position


def end_of(pos: Position | None) -> tuple | None:
    """(line, column) just after the value that starts at `pos`, if known."""
    if pos is None:
        return None
    try:
        stamp = os.stat(pos.file).st_mtime_ns
    except (OSError, ValueError):
        return None
    return _ends(os.path.abspath(pos.file), stamp).get((pos.line, pos.col))


@lru_cache(maxsize=32)
def _ends(path: str, stamp: int) -> dict:
    from .yaml_source import read_regular_file

    try:
        text = read_regular_file(path, MAX_SOURCE_BYTES).decode("utf-8")
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, ValueError, yaml.YAMLError):  # unreadable, not UTF-8, not YAML: no ends
        return {}
    lines = text.split("\n")
    ends: dict = {}
    seen: set = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:  # an alias: its anchor's node, visited once
            continue
        seen.add(id(node))
        start = (node.start_mark.line + 1, node.start_mark.column + 1)
        ends[start] = _trimmed(node.end_mark, lines)  # children, pushed below, overwrite: the innermost wins
        if isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                stack.extend((value, key))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return ends


def _trimmed(mark, lines: list) -> tuple:
    """A block collection ends where the next token starts (often the start of a
    later line): step back over blank lines and comments to its last character."""
    line, column = mark.line, mark.column
    if column > 0:
        return line + 1, column + 1
    line -= 1
    while line > 0 and (not lines[line].strip() or lines[line].lstrip().startswith("#")):
        line -= 1
    text = lines[line].split(" #")[0].rstrip()
    return line + 1, len(text) + 1
