"""Safe YAML loading that remembers where every value was written.

Only the core YAML types are admitted (maps, lists, strings, numbers, booleans,
null): a language tag such as `!!python/object` is refused before anything is
constructed, and a core tag only where it fits (`!!bool maybe`, `!!map [1]` are
refused). Mapping keys are names; a whole-number key becomes its decimal text, so
the schema and the compiler see the same key. Nesting is bounded before the
document is composed, through aliases too. Mappings and lists come back as `SourceMap` / `SourceList`, plain
dict/list subclasses that also carry the position of each key and item, so a
later stage can point at the exact line that wrote a value.
"""
from __future__ import annotations

import math
import os
import stat

import yaml

from .diagnostics import Position, error
from .expressions import MAX_INTEGER

MAX_DOCUMENT_BYTES = 2_000_000
# Values visited while converting, aliases counted once per use: stops "billion
# laughs" documents, whose aliases expand to exponentially many values.
MAX_EXPANDED_VALUES = 200_000
MAX_NESTING = 100  # levels of maps and lists; the shipped specs use about 15

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}
_CORE_TAGS = _SCALAR_TAGS | {_CORE + "map", _CORE + "seq"}
_TIMESTAMP = _CORE + "timestamp"
_VALUE = _CORE + "value"  # YAML 1.1 reads a plain `=` as this
_scalar_builder = yaml.SafeLoader("")
# What YAML reads as each type without a tag. An explicit `!!int` (or bool, float,
# null) is admitted only on a value YAML would read that way anyway.
_IMPLICIT = {tag: regexp for resolvers in yaml.SafeLoader.yaml_implicit_resolvers.values()
             for tag, regexp in resolvers}
_READ_AS = {_CORE + "int": "an integer", _CORE + "float": "a number", _CORE + "bool": "true or false",
            _CORE + "null": "null (~)"}


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
    node = _compose(text, file)
    if node is None:
        raise error("E0101", "the document is empty", Position(file, 1, 1))
    _check_expanded_size(node, file)
    document = _Converter(file).convert(node)
    if not isinstance(document, SourceMap):
        raise error("E0201", f"a spec is a mapping of keys (input:, graph:, ...), this file holds "
                    f"{type(document).__name__} {str(document)[:40]!r}", _pos(file, node))
    return document


def load_value(text: str, file: str):
    """One YAML value (a `--set KEY=VALUE`), read with every check a spec gets; None
    when the text holds nothing."""
    node = _compose(text, file)
    if node is None:
        return None
    _check_expanded_size(node, file)
    return _Converter(file).convert(node)


def _compose(text: str, file: str):
    if len(text.encode("utf-8", errors="ignore")) > MAX_DOCUMENT_BYTES:
        raise _too_large(file)
    try:
        _check_nesting(text, file)  # first: the C composer recurses once per level
        return yaml.compose(text, Loader=_Loader)
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


def _too_large(file: str):
    return error("E0104", f"document is larger than {MAX_DOCUMENT_BYTES:,} bytes",
                 Position(file, 1, 1), "split it with `extends:` or shorten it")


def _check_nesting(text: str, file: str) -> None:
    """Refuse deep nesting from the event stream, which the parser produces without
    recursing, and stop at the first level too many: a few thousand `[` would crash
    the composer, and parsing all of them would take time quadratic in the depth."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_NESTING:
                raise _too_deep(file, event)
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _too_deep(file: str, node):
    return error("E0311", f"the document nests deeper than {MAX_NESTING} levels", _pos(file, node),
                 "flatten it with blocks")


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
    it: each node's size and height are worked out once. Stops alias bombs, recursive
    aliases and aliases that nest deeper than the text does, before any conversion."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}  # levels of maps and lists at and below a node
    on_path: set[int] = set()
    stack = [(root, False, 1)]
    while stack:
        node, children_done, depth = stack.pop()
        key = id(node)
        if key in size:  # met again through an alias: its height was found the first time
            if depth - 1 + height[key] > MAX_NESTING:
                raise _too_deep(file, node)
            continue
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            size[key], height[key] = 1, 0
            continue
        parts = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        if children_done:
            on_path.discard(key)
            total = 1 + sum(size[id(n)] for n in parts)
            if total > MAX_EXPANDED_VALUES:
                raise error("E0105", f"aliases expand to more than {MAX_EXPANDED_VALUES:,} values",
                            _pos(file, node), "a spec this large is almost surely an alias bomb")
            size[key], height[key] = total, 1 + max((height[id(n)] for n in parts), default=0)
            if depth - 1 + height[key] > MAX_NESTING:
                raise _too_deep(file, node)
            continue
        if key in on_path:
            raise error("E0105", "an alias refers to the value that contains it", _pos(file, node),
                        "a recursive alias would expand forever")
        on_path.add(key)
        stack.append((node, True, depth))
        for child in parts:
            if id(child) in on_path:
                raise error("E0105", "an alias refers to the value that contains it", _pos(file, child),
                            "a recursive alias would expand forever")
            stack.append((child, False, depth + 1))


def _pos(file, node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


def read_text(path: str, shown_as: str | None = None) -> str:
    """The text of a spec file. Only a regular file is opened (a FIFO would block, a
    device never end), and at most MAX_DOCUMENT_BYTES + 1 bytes are read."""
    shown = shown_as or path
    try:
        data = read_regular_file(path, MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise error("E0106", f"no such file: {shown}") from None
    except IsADirectoryError:
        raise error("E0106", f"{shown} is a directory, not a spec file") from None
    except NotRegularFileError:
        raise error("E0106", f"{shown} is not a regular file", hint="a spec is read from a file on disk") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise error("E0106", f"cannot read {shown}: {getattr(exc, 'strerror', None) or exc}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise _too_large(shown)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error("E0106", f"cannot read {shown}: {exc}") from None


class NotRegularFileError(OSError):
    """A path that names a FIFO, a device, a socket: never read as a file."""


def open_regular_file(path):
    """A binary file object for `path`, refused unless it is a regular file (a FIFO
    would block, a device never end). Opened without blocking and checked again once
    open, so a FIFO swapped in after the first check cannot make the reader wait."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(21, "Is a directory", os.fspath(path))
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(f"{os.fspath(path)} is not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFileError(f"{os.fspath(path)} is not a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path, limit: int) -> bytes:
    with open_regular_file(path) as f:
        return f.read(limit)


class _Converter:
    def __init__(self, file: str):
        self.file = file

    def pos(self, node) -> Position:
        return _pos(self.file, node)

    def convert(self, node):
        if isinstance(node, yaml.MappingNode):
            self._expect_tag(node, _CORE + "map", "a mapping")
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            self._expect_tag(node, _CORE + "seq", "a list")
            out = SourceList(self.convert(item) for item in node.value)
            out.pos, out.item_pos = self.pos(node), [self.pos(item) for item in node.value]
            return out
        if node.tag in (_TIMESTAMP, _VALUE):  # `2024-01-01` in a description, a lone `=`: the text
            return node.value
        self._expect_tag(node, _SCALAR_TAGS, "a scalar")
        return self._scalar(node)

    def _expect_tag(self, node, allowed, kind: str) -> None:
        if node.tag in allowed:
            return
        if node.tag in _CORE_TAGS:  # a core tag on the wrong kind of node: `!!map [1, 2]`
            raise error("E0103", f"tag `!!{node.tag[len(_CORE):]}` does not fit {kind}", self.pos(node),
                        "remove the tag")
        raise error("E0103", f"tag `{node.tag}` is not allowed; specs hold plain data only",
                    self.pos(node), "remove the tag; nothing in a spec is ever executed")

    def _scalar(self, node):
        tag = node.tag
        if tag in _READ_AS and not _IMPLICIT[tag].match(node.value):  # `!!bool maybe`, `!!null 3`
            raise error("E0201", f"`{_short(node.value)}` cannot be read as {_READ_AS[tag]}", self.pos(node),
                        f"remove the `!!{tag[len(_CORE):]}` tag, or write a value of that type")
        try:  # the constructor itself, not construct_object, which caches every node it sees
            value = _scalar_builder.yaml_constructors[tag](_scalar_builder, node)
        except ValueError:  # thousands of decimal digits: Python refuses to convert them
            value = MAX_INTEGER
        # Hex and binary digits have no such limit, and printing the number would fail.
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= MAX_INTEGER:
            raise error("E0201", f"`{_short(node.value)}` is too large: whole numbers in a spec stay "
                        "below 10**30", self.pos(node))
        if isinstance(value, float) and not math.isfinite(value):
            raise error("E0201", f"`{_short(node.value)}` is not a finite number; a spec has no use for it",
                        self.pos(node), f"quote it if you mean the text: '{_short(node.value)}'")
        return value

    def _key(self, key_node):
        """A mapping key: a name, or a whole number kept as its decimal text (`at: {0: ...}`),
        so that the schema and the compiler see the same string."""
        if key_node.tag == _CORE + "merge":
            raise error("E0103", "YAML merge keys (`<<`) are not supported",
                        self.pos(key_node), "use a block with arguments instead")
        if not isinstance(key_node, yaml.ScalarNode):
            raise error("E0201", "mapping keys must be plain scalars", self.pos(key_node))
        if key_node.tag == _CORE + "float":  # `1.5:`, `.inf:`, `.nan:`
            raise error("E0201", f"mapping keys must be names or whole numbers, got `{_short(key_node.value)}`",
                        self.pos(key_node), f"quote it if you mean the text: '{_short(key_node.value)}'")
        key = self.convert(key_node)
        if isinstance(key, bool) or key is None:
            raise error("E0201", f"key `{key_node.value}` is read by YAML as {key!r}, not as a name",
                        self.pos(key_node), f"quote it: '{key_node.value}'")
        return str(key) if isinstance(key, int) else key

    def _mapping(self, node):
        items, key_pos, value_pos = {}, {}, {}
        for key_node, value_node in node.value:
            key = self._key(key_node)
            if key in items:
                raise error("E0102", f"duplicate key `{key}`", self.pos(key_node),
                            f"first written at line {key_pos[key].line}")
            key_pos[key] = self.pos(key_node)
            value_pos[key] = self.pos(value_node)
            items[key] = self.convert(value_node)
        out = SourceMap(items)
        out.pos, out.key_pos, out.value_pos = self.pos(node), key_pos, value_pos
        return out


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
