"""Safe YAML loading that remembers where every value was written.

Only the core YAML types are admitted (maps, lists, strings, numbers, booleans,
null): a language tag such as `!!python/object` is refused before anything is
constructed. Mappings and lists come back as `SourceMap` / `SourceList`, plain
dict/list subclasses that also carry the position of each key and item, so a
later stage can point at the exact line that wrote a value.
"""
from __future__ import annotations

import yaml

from .diagnostics import Position, error

MAX_DOCUMENT_BYTES = 2_000_000
# Values visited while converting, aliases counted once per use: stops "billion
# laughs" documents, whose aliases expand to exponentially many values.
MAX_EXPANDED_VALUES = 200_000
MAX_NESTING = 100  # levels of maps and lists; the shipped specs use about 15

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE_TAGS = {
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_scalar_builder = yaml.SafeLoader("")


def _read_only(self, *args, **kwargs):
    raise TypeError(f"a loaded spec is read-only ({type(self).__name__}); copy it with dict() or list() to change it")


class SourceMap(dict):
    """A YAML mapping; `pos` is where it starts, `key_pos`/`value_pos` per key.

    Read-only: a loaded document is shared (the loader caches it by content), so
    one caller cannot change what another loaded."""

    pos: Position
    key_pos: dict
    value_pos: dict

    def where(self, key) -> Position:
        return self.value_pos.get(key, self.pos)

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only


class SourceList(list):
    """A YAML sequence; `pos` is where it starts, `item_pos[i]` per item. Read-only."""

    pos: Position
    item_pos: list

    def where(self, index) -> Position:
        return self.item_pos[index] if 0 <= index < len(self.item_pos) else self.pos

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = \
        __iadd__ = __imul__ = _read_only


def position_of(container, key) -> Position | None:
    """Where `container[key]` was written, if the container came from a file."""
    if isinstance(container, (SourceMap, SourceList)):
        return container.where(key)
    return getattr(container, "pos", None)


def make_map(items: dict, pos: Position) -> SourceMap:
    m = SourceMap(items)
    m.pos, m.key_pos, m.value_pos = pos, {k: pos for k in items}, {k: pos for k in items}
    return m


def load_text(text: str, file: str):
    if len(text.encode("utf-8", errors="ignore")) > MAX_DOCUMENT_BYTES:
        raise error("E0104", f"document is larger than {MAX_DOCUMENT_BYTES:,} bytes",
                    Position(file, 1, 1), "split it with `extends:` or shorten it")
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, file) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, such as NUL
        line = text.count("\n", 0, exc.position) + 1
        col = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        char = chr(exc.character) if isinstance(exc.character, int) else exc.character
        raise error("E0101", f"YAML syntax: character {char!r} is not allowed in YAML",
                    Position(file, line, col), "remove control characters from the file") from None
    except yaml.YAMLError as exc:
        raise error("E0101", f"YAML syntax: {str(exc).splitlines()[0]}", Position(file, 1, 1)) from None
    except RecursionError:
        raise error("E0311", "the document nests too deeply to read", Position(file, 1, 1)) from None
    if node is None:
        raise error("E0101", "the document is empty", Position(file, 1, 1))
    _check_expanded_size(node, file)
    document = _Converter(file).convert(node)
    if not isinstance(document, SourceMap):
        raise error("E0201", f"a spec is a mapping of keys (input:, graph:, ...), this file holds "
                    f"{type(document).__name__} {str(document)[:40]!r}", _pos(file, node))
    return document


def _syntax_error(exc, text: str, file: str):
    lines = text.count("\n") + 1
    mark = exc.problem_mark
    # A construct left open (a quote, a bracket) is found only at the end of the file;
    # where it was opened is the useful place.
    if mark is None or (exc.context_mark is not None and mark.line + 1 >= lines):
        mark = exc.context_mark or mark
    pos = Position(file, mark.line + 1, mark.column + 1) if mark else Position(file, 1, 1)
    problem = exc.problem or "invalid YAML"
    if exc.context:
        problem = f"{problem} ({exc.context})"
    hint = None
    if "\t" in text and "cannot start any token" in problem:
        hint = "YAML does not allow tabs for indentation: use spaces"
    return error("E0101", f"YAML syntax: {problem}", pos, hint)


def _check_expanded_size(root, file: str) -> None:
    """Count the values the document expands to, aliases included, without expanding
    it: each node's size is worked out once. Stops alias bombs and recursive aliases
    before any conversion starts."""
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False, 1)]
    while stack:
        node, children_done, depth = stack.pop()
        if depth > MAX_NESTING:
            raise error("E0311", f"the document nests deeper than {MAX_NESTING} levels", _pos(file, node),
                        "flatten it with blocks")
        key = id(node)
        if children_done:
            on_path.discard(key)
            parts = node.value if isinstance(node, yaml.SequenceNode) else \
                [n for pair in node.value for n in pair]
            total = 1 + sum(size[id(n)] for n in parts)
            if total > MAX_EXPANDED_VALUES:
                raise error("E0105", f"aliases expand to more than {MAX_EXPANDED_VALUES:,} values",
                            _pos(file, node), "a spec this large is almost surely an alias bomb")
            size[key] = total
            continue
        if key in size:
            continue
        if key in on_path:
            raise error("E0105", "an alias refers to the value that contains it", _pos(file, node),
                        "a recursive alias would expand forever")
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            size[key] = 1
            continue
        on_path.add(key)
        stack.append((node, True, depth))
        parts = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        for child in parts:
            if id(child) in on_path:
                raise error("E0105", "an alias refers to the value that contains it", _pos(file, child),
                            "a recursive alias would expand forever")
            if id(child) not in size:
                stack.append((child, False, depth + 1))


def _pos(file, node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def read_text(path: str, shown_as: str | None = None) -> str:
    shown = shown_as or path
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise error("E0106", f"no such file: {shown}") from None
    except IsADirectoryError:
        raise error("E0106", f"{shown} is a directory, not a spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error("E0106", f"cannot read {shown}: {exc}") from None



class _Converter:
    def __init__(self, file: str):
        self.file = file

    def pos(self, node) -> Position:
        return _pos(self.file, node)

    def convert(self, node):
        if node.tag == _TIMESTAMP:  # `2024-01-01` in a description: keep the text
            return node.value
        if node.tag not in _CORE_TAGS:
            raise error("E0103", f"tag `{node.tag}` is not allowed; specs hold plain data only",
                        self.pos(node), "remove the tag; nothing in a spec is ever executed")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            out = SourceList(self.convert(item) for item in node.value)
            out.pos, out.item_pos = self.pos(node), [self.pos(item) for item in node.value]
            return out
        try:
            return _scalar_builder.construct_object(node)
        except ValueError as exc:  # e.g. an integer of thousands of digits
            raise error("E0201", f"cannot read this number: {exc}", self.pos(node)) from None

    def _mapping(self, node):
        items, key_pos, value_pos = {}, {}, {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise error("E0103", "YAML merge keys (`<<`) are not supported",
                            self.pos(key_node), "use a block with arguments instead")
            key = self.convert(key_node)
            if isinstance(key, bool) or key is None:
                raise error("E0201", f"key `{key_node.value}` is read by YAML as {key!r}, not as a name",
                            self.pos(key_node), f"quote it: '{key_node.value}'")
            if isinstance(key, (list, dict)):
                raise error("E0201", "mapping keys must be plain scalars", self.pos(key_node))
            if key in items:
                raise error("E0102", f"duplicate key `{key}`", self.pos(key_node),
                            f"first written at line {key_pos[key].line}")
            key_pos[key] = self.pos(key_node)
            value_pos[key] = self.pos(value_node)
            items[key] = self.convert(value_node)
        out = SourceMap(items)
        out.pos, out.key_pos, out.value_pos = self.pos(node), key_pos, value_pos
        return out
