"""Loading a spec: read the file, validate it, resolve `extends:`, settle the arguments.

The result, `Spec`, is immutable input to the graph expander: the merged document
(positions kept), the file-level argument values after overrides, and the input
shape.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path
from types import MappingProxyType

from .diagnostics import Diagnostic, SpecError, did_you_mean, display_path, error
from .expressions import ExpressionError, is_expression, resolve
from .records import record
from .schema import validate_document
from .yaml_source import SourceMap, load_text, load_value, position_of, read_text

MAX_EXTENDS_DEPTH = 16
# Names every scope defines for expressions: the shape of what feeds it, and a
# function giving the shape of a node in scope. No argument may take them.
SHAPE_NAMES = ("in_shape", "in_channels", "shape")
# Keys an `extends:` child replaces whole; `args`, `blocks` and `scales` merge key by key.
_MERGED_BY_KEY = ("args", "blocks", "scales")


@record
class Spec:
    path: str
    name: str
    document: SourceMap
    args: MappingProxyType
    input_shape: tuple
    parents: tuple = ()
    input_overridden: bool = False
    overrides: tuple = ()  # names of the args set by the caller
    scale: str | None = None      # the named scale applied (the caller's, else the file's `scale:`)
    scale_overridden: bool = False  # the caller chose another scale than the file's

    @property
    def is_variant(self) -> bool:
        """Built with anything changed from what the file says (args, input shape, scale)."""
        return bool(self.overrides) or self.input_overridden or self.scale_overridden

    @property
    def scales(self) -> tuple:
        """The names of the scales the spec declares, in order."""
        return tuple(self.document.get("scales") or ())

    def with_overrides(self, input_shape=None, scale=None, **overrides) -> "Spec":
        """This spec with more arguments set; those set before stay set."""
        earlier = {k: self.args[k] for k in self.overrides}
        if input_shape is None and self.input_overridden:
            input_shape = self.input_shape
        if scale is None and self.scale_overridden:
            scale = self.scale
        return _settle(self.path, self.document, {**earlier, **overrides}, input_shape, self.parents, scale)


def load(path, input_shape=None, scale=None, *, spec_root=None, **overrides) -> Spec:
    """Read and check a spec file; `scale` picks one of its named scales, and keyword
    overrides replace its file-level `args` (after the scale's values).

    `extends:` reads only files inside `spec_root`: by default the spec's directory,
    or the current directory when the spec lies below it (see `_default_root`)."""
    shown = display_path(path)
    root = Path(os.path.realpath(spec_root)) if spec_root is not None else None
    document = _load_merged(Path(path), shown, (), root)
    return _settle(shown, document, overrides, input_shape, _parents(document), scale)


def loads(text: str, name: str = "<string>", input_shape=None, scale=None, **overrides) -> Spec:
    """Like `load`, for spec text held in memory (`extends:` resolves from the cwd)."""
    document = load_text(text, name)
    validate_document(document)
    cwd = Path(os.path.realpath(Path.cwd()))
    document = _apply_extends(document, cwd / "x", (), cwd)
    return _settle(name, document, overrides, input_shape, _parents(document), scale)


def _parents(document) -> tuple:
    return tuple(getattr(document, "parents", ()))


# Parsing and schema validation are pure functions of a file's text, and validation
# is the slowest stage; a file read again with the same text is not checked again.
_VALIDATED: dict = {}
_VALIDATED_MAX = 64


def _validated_file(path: Path, shown: str) -> SourceMap:
    text = read_text(str(path), shown)
    key = (shown, text)  # the text itself: hashing a str is cheaper than importing hashlib
    document = _VALIDATED.get(key)
    if document is None:
        document = load_text(text, shown)
        validate_document(document)
        if len(_VALIDATED) >= _VALIDATED_MAX:
            _VALIDATED.pop(next(iter(_VALIDATED)))
        _VALIDATED[key] = document
    return document


def _load_merged(path: Path, shown: str, chain: tuple, root: Path | None) -> SourceMap:
    document = _validated_file(path, shown)
    if root is None:  # the spec loaded first, read: its root bounds every `extends:` below it
        root = _default_root(path)
    return _apply_extends(document, path, chain + (os.path.realpath(path),), root)


def _apply_extends(document: SourceMap, path: Path, chain: tuple, root: Path) -> SourceMap:
    parent_ref = document.get("extends")
    if parent_ref is None:
        document.parents = ()
        return document
    pos = document.where("extends")
    parent_path = _extends_target(parent_ref, path, root, pos)
    resolved = os.path.realpath(parent_path)
    if resolved in chain:
        raise error("E0313", f"`extends: {parent_ref}` leads back to a file already being extended",
                    pos, "extends chain: " + " -> ".join(display_path(c) for c in chain + (resolved,)))
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise error("E0313", f"`extends:` nests deeper than {MAX_EXTENDS_DEPTH} files", pos)
    parent = _load_merged(parent_path, display_path(parent_path), chain, root)
    merged = _merge(parent, document)
    merged.parents = (display_path(parent_path),) + parent.parents
    return merged


def _default_root(spec_path: Path) -> Path:
    """The spec's directory; or the current directory when the spec lies below it, so
    that `examples/x.yaml` may extend `../specs/y.yaml` when run from the project."""
    directory = Path(os.path.realpath(spec_path.parent))
    cwd = Path(os.path.realpath(Path.cwd()))
    return cwd if directory.is_relative_to(cwd) else directory


def _extends_target(ref: str, path: Path, root: Path, pos) -> Path:
    """The file `extends: ref` names, if the rule allows it: a relative path to a
    .yaml or .yml regular file that, symlinks resolved, lies inside `root`. Nothing
    else is opened, so a spec cannot make archspec read or quote another file."""
    where = "the current directory" if root == Path(os.path.realpath(Path.cwd())) else display_path(root)
    rule = f"`extends:` takes a relative path to a .yaml or .yml file inside {where}, symlinks resolved"
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in ref[:80]) + ("..." if len(ref) > 80 else "")

    def refuse(why: str):
        return error("E0312", f"`extends: {shown}` {why}", pos, rule)

    if "\0" in ref:
        raise refuse("contains a NUL character")
    if os.path.isabs(ref):
        raise refuse("is an absolute path")
    if not ref.endswith((".yaml", ".yml")):
        raise refuse("does not name a .yaml or .yml file")
    candidate = path.parent / ref
    if not Path(os.path.realpath(candidate)).is_relative_to(root):  # checked before existence
        raise refuse("lies outside the spec root")
    try:
        mode = os.stat(candidate).st_mode
    except FileNotFoundError:
        raise error("E0312", f"`extends:` names a missing file: {shown}", pos,
                    f"looked for {display_path(candidate)}") from None
    except OSError as exc:  # a symlink loop, a name too long
        raise refuse(f"cannot be opened: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise refuse("is not a regular file")
    return candidate


def _merge(parent: SourceMap, child: SourceMap) -> SourceMap:
    """The child's keys over the parent's; `args` and `blocks` merged key by key."""
    items, key_pos, value_pos = dict(parent), dict(parent.key_pos), dict(parent.value_pos)
    for key, value in child.items():
        if key == "extends":
            continue
        if key in _MERGED_BY_KEY and isinstance(parent.get(key), dict):
            inner = SourceMap({**parent[key], **value})
            inner.pos = value.pos
            inner.key_pos = {**parent[key].key_pos, **value.key_pos}
            inner.value_pos = {**parent[key].value_pos, **value.value_pos}
            value = inner
        items[key] = value
        key_pos[key], value_pos[key] = child.key_pos[key], child.value_pos[key]
    merged = SourceMap(items)
    merged.pos, merged.key_pos, merged.value_pos = child.pos, key_pos, value_pos
    return merged


def _settle(path: str, document: SourceMap, overrides: dict, input_shape, parents, scale=None) -> Spec:
    declared = document.get("args") or SourceMap()
    scale, scaled = _scale_values(path, document, declared, scale)
    unknown = [k for k in overrides if k not in declared]
    if unknown:
        names = ", ".join(sorted(declared)) or "none"
        raise SpecError([Diagnostic("E0601", f"`{k}` is not an argument of {path}",
                                    hint=did_you_mean(k, declared) or f"its arguments: {names}")
                         for k in unknown])
    values: dict = {}
    problems = []
    for key, default in declared.items():
        pos = position_of(declared, key)
        if key in SHAPE_NAMES or key == "scale":
            what = "selects a named scale" if key == "scale" else "is the shape of a scope's input"
            problems.append(Diagnostic("E0408", f"argument `{key}` takes a reserved name: `{key}` {what}",
                                       declared.key_pos.get(key, pos), "rename the argument"))
            continue
        if key in overrides:
            value = overrides[key]
            problem = _type_problem(key, default, value, values)
            if problem:
                problems.append(Diagnostic("E0602", problem, hint=f"declared at {pos}"))
                continue
        elif key in scaled:
            table = scaled
            value = resolve_written(table[key], values, position_of(table, key), f"scale `{scale}`: `{key}`")
            problem = _type_problem(key, default, value, values)
            if problem:
                problems.append(Diagnostic("E0602", problem.replace("--set", f"scale `{scale}`:", 1),
                                           position_of(table, key), f"declared at {pos}"))
                continue
        else:
            value = _resolve_arg(key, default, values, pos)
        if value is None:
            problems.append(Diagnostic("E0304", f"argument `{key}` has no default and was not set",
                                       pos, f"set it: --set {key}=VALUE"))
        values[key] = value
    if problems:
        raise SpecError(problems)
    shape = _input_shape(document, input_shape, values, path)
    name = document.get("name") or Path(path).stem
    return Spec(path, name, document, MappingProxyType(values), shape, tuple(parents),
                input_overridden=input_shape is not None, overrides=tuple(overrides), scale=scale,
                scale_overridden=scale is not None and scale != document.get("scale"))


def _scale_values(path, document, declared, chosen) -> tuple:
    """(the scale applied, its argument values): the caller's choice, else the file's
    own `scale:`; E0607 for a scale the spec does not declare. Every table is checked
    for unknown arguments and values of the wrong kind, chosen or not."""
    table = document.get("scales") or {}
    problems = []
    for name, values in table.items():
        for key, value in values.items():
            pos = values.key_pos.get(key) if hasattr(values, "key_pos") else None
            if key not in declared:
                problems.append(Diagnostic("E0601", f"scale `{name}` sets `{key}`, which is not an argument of "
                                           f"{path}", pos, did_you_mean(key, declared) or "declare it under `args:`"))
            elif not is_expression(value) and not is_expression(declared[key]):
                problem = _type_problem(key, declared[key], value, {})
                if problem:
                    problems.append(Diagnostic("E0602", problem.replace("--set", f"scale `{name}`:", 1),
                                               position_of(values, key),
                                               f"declared at {position_of(declared, key)}"))
    if problems:
        raise SpecError(problems)
    pos = None
    if chosen is None:
        chosen, pos = document.get("scale"), position_of(document, "scale")
    if chosen is None:
        return None, {}
    if chosen not in table:
        names = ", ".join(map(str, table)) or "none"
        close = did_you_mean(chosen, table)
        raise error("E0607", f"{path} has no scale `{chosen}`", pos,
                    f"{close + ' ' if close else ''}its scales: {names}")
    return chosen, table[chosen]


def _resolve_arg(key, default, values, pos):
    return resolve_written(default, values, pos, f"argument `{key}`")


def resolve_written(raw, env: dict, pos, what: str):
    """The value of what a spec wrote, lists and mappings item by item, expressions
    evaluated; an expression error points at the item that wrote it."""
    if isinstance(raw, list):
        return [resolve_written(v, env, position_of(raw, i) or pos, what) for i, v in enumerate(raw)]
    if isinstance(raw, dict):
        return {k: resolve_written(v, env, position_of(raw, k), what) for k, v in raw.items()}
    try:
        return resolve(raw, env)
    except ExpressionError as exc:
        raise error(exc.code, f"{what}: {exc.message}", pos, exc.hint) from None


def _kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return "string" if isinstance(value, str) else "null"


def _type_problem(key, default, value, earlier) -> str | None:
    try:
        reference = resolve_written(default, earlier, None, key)
    except SpecError:
        reference = None
    if reference is None:
        return None
    want, got = _kind(reference), _kind(value)
    if want == got and not (want == "number" and isinstance(reference, int) and not isinstance(value, int)):
        return None
    wanted = "an integer" if isinstance(reference, int) and want == "number" else f"a {want}"
    return f"--set {key}: expected {wanted} like its default {reference!r}, got {value!r}"


def parse_shape(text: str) -> tuple:
    """`3x224x224` (or a list) as a per-sample shape; raises ValueError with a reason."""
    if isinstance(text, (list, tuple)):
        parts = list(text)
    else:
        parts = str(text).lower().replace(",", "x").split("x")
    try:
        dims = tuple(p if isinstance(p, int) and not isinstance(p, bool) else int(str(p).strip())
                     for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"`{text}` is not a shape like 3x224x224: every size is a whole number") from None
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"`{text}`: every dimension must be a positive integer")
    return dims


def _input_shape(document, override, values, path) -> tuple:
    if override is not None:
        try:
            return parse_shape(override)
        except ValueError as exc:
            raise error("E0603", f"--input {exc}") from None
    raw = document.get("input")
    pos = position_of(document, "input")
    if raw is None:
        raise error("E0304", "the spec has no `input:` shape", document.pos, "add `input: [3, 224, 224]`")
    value = resolve_written(raw, values, pos, "input")
    if isinstance(raw, list):
        for index, size in enumerate(value):
            if not (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
                raise error("E0408", f"input: every size must be a positive whole number, got {size!r}",
                            position_of(raw, index))
    try:
        return parse_shape(value)
    except ValueError as exc:
        raise error("E0408", f"input: {exc}", pos) from None


def parse_override(assignment: str) -> tuple[str, object]:
    """`key=value` from the command line; the value is read as YAML (so 10 is an int)."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise error("E0604", f"--set expects key=value, got `{assignment}`")
    try:  # read with every check a spec gets: nesting, huge numbers, non-finite floats
        value = load_value(text, f"--set {key}") if text.strip() else ""
    except SpecError as exc:
        if exc.code != "E0101":
            raise
        value = text  # not YAML: the text as written
    return key, value
