"""The spec language's JSON Schema (Draft 2020-12), generated from the op registry.

The schema is built at run time from the ops registered now (plugins included), so a
new op is valid in specs as soon as it is registered. `archspec/spec.schema.json` is
an exported copy of the schema for the built-in ops, shipped so that editors and other
tools can check specs without importing archspec; a test keeps the two equal, and
`archspec schema > archspec/spec.schema.json` refreshes it.
"""
from __future__ import annotations

import re

from .diagnostics import Diagnostic, SpecError, did_you_mean
from .ops import REGISTRY, PluginError
from .ops.base import EXPRESSION_SCHEMA

SCHEMA_FILE = "spec.schema.json"
# Keys every node may carry, whatever its kind.
COMMON_NODE_KEYS = ("name", "from", "when", "repeat", "at", "names", "as", "frozen", "doc")
BASE_NODE_KINDS = ("op", "block", "seq", "splice")

# Names: letters, digits, `_` and `-` (torch accepts them in module paths; RegNet uses
# `block1-0`). `(?![\s\S])` ends the pattern for real: Python's `$` would let a trailing
# newline through, and ECMA regular expressions have no `\Z`.
NAME_PATTERN = r"^[A-Za-z0-9_-]+(?![\s\S])"
_IDENTIFIER = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(?![\s\S])"}
_NODE_NAME = {"type": "string", "pattern": NAME_PATTERN, "not": {"enum": ["in", "input"]}}
# Scale names follow the builders' suffixes: b0, x0_5, 400mf, 1_6gf, n, s, ...
_SCALE_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_]+(?![\s\S])"}
_REF = {"anyOf": [{"type": "string", "pattern": r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*(?![\s\S])"},
                  EXPRESSION_SCHEMA]}
_INT_OR_EXPR = {"anyOf": [{"type": "integer"}, EXPRESSION_SCHEMA]}
_BOOL_OR_EXPR = {"anyOf": [{"type": "boolean"}, EXPRESSION_SCHEMA]}
_NAMES = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
_SHAPE = {"anyOf": [{"type": "array", "items": _INT_OR_EXPR, "minItems": 1}, EXPRESSION_SCHEMA]}


def _requires(*names) -> dict:
    """`required` with the names also listed under `properties`: strict validators (Ajv
    --strict) refuse a required property that the same subschema does not define."""
    return {"required": list(names), "properties": {name: True for name in names}}


def join_kinds(ops: dict | None = None) -> tuple:
    """Ops that are also node kinds (`concat: [...]`), in name order."""
    return tuple(name for name, op in sorted((ops or REGISTRY.available()).items()) if op.join)


def node_kinds(ops: dict | None = None) -> tuple:
    return BASE_NODE_KINDS + join_kinds(ops)


def build_schema(ops: dict | None = None) -> dict:
    """The schema for `ops` (name -> Op; default: the ops loaded now)."""
    ops = ops if ops is not None else REGISTRY.available()
    kinds = node_kinds(ops)
    op_rules = [
        {"if": {"properties": {"op": {"const": name}}, "required": ["op"]},
         "then": {"properties": op.arg_schema()}}
        for name, op in sorted(ops.items())
    ]
    join_rules = [
        {"if": _requires(name), "then": {"properties": op.arg_schema()}}
        for name, op in sorted(ops.items()) if op.join
    ]
    node_map = {
        "type": "object",
        "properties": {
            "name": {"anyOf": [_NODE_NAME, EXPRESSION_SCHEMA]},
            "names": {"type": "string", "description": "name template of repeated copies, e.g. block${i + 4}"},
            "from": {"anyOf": [_REF, {"type": "array", "items": _REF, "minItems": 1}]},
            "when": _BOOL_OR_EXPR,
            "frozen": {**_BOOL_OR_EXPR, "description": "weights of this node and all below it do not train"},
            "repeat": _INT_OR_EXPR,
            "at": {"type": "object", "propertyNames": {"pattern": r"^-?[0-9]+$"},
                   "additionalProperties": {"type": "object"}},
            "doc": {"type": "string"},
            "op": {"enum": sorted(ops)},
            "block": {"anyOf": [_IDENTIFIER, EXPRESSION_SCHEMA]},
            "seq": {"$ref": "#/$defs/body"},
            "splice": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"},
                       "description": "items inserted into the enclosing list (repeat: to insert them N times)"},
            "as": {**_IDENTIFIER, "description": "name of the repeat's index variable (default i)"},
            **{name: {"$ref": "#/$defs/branches"} for name in join_kinds(ops)},
        },
        "oneOf": [_requires(kind) for kind in kinds],
        # The op rules sit in an allOf of their own: a table lookup for the fast checker.
        "allOf": [{"allOf": op_rules}, *join_rules,
            # A block's arguments are its own: any identifier, any value.
            {"if": _requires("block"),
             "then": {"propertyNames": _IDENTIFIER, "additionalProperties": True}},
        ],
        "unevaluatedProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://archspec.invalid/spec.schema.json",
        "title": "archspec network spec",
        "type": "object",
        "properties": {
            "archspec": {"const": 1, "description": "spec language version"},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "extends": {"type": "string", "description": "path of a spec this one derives from"},
            "args": {"type": "object", "propertyNames": _IDENTIFIER},
            "input": _SHAPE,
            "blocks": {"type": "object", "propertyNames": _IDENTIFIER,
                       "additionalProperties": {"$ref": "#/$defs/block"}},
            "graph": {"$ref": "#/$defs/body"},
            "outputs": {"type": "object", "propertyNames": _IDENTIFIER, "minProperties": 1,
                        "additionalProperties": {"$ref": "#/$defs/output"}},
            "expect": {"$ref": "#/$defs/expect"},
            "scales": {"type": "object", "propertyNames": _SCALE_NAME, "minProperties": 1,
                       "description": "named sets of arg values, chosen with --scale NAME",
                       "additionalProperties": {"type": "object", "propertyNames": _IDENTIFIER}},
            "scale": {**_SCALE_NAME, "description": "the scale this spec is, as written"},
            "init": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/init_rule"}},
                               {"type": "string", "const": "default"}],
                     "description": "how the weights start, rule by rule (later rules win); `default` "
                                    "(or []) keeps what PyTorch's module constructors draw (docs/init.md)"},
        },
        "additionalProperties": False,
        # A spec without `extends:` says what it is itself.
        "if": {"not": _requires("extends")},
        "then": _requires("graph", "input"),
        "$defs": {
            # if/then/else rather than anyOf, so each mistake is reported on its own.
            # (An array, else an object: no union types, which strict validators refuse.)
            "body": {
                "if": {"type": "array"},
                "then": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}},
                "else": {"type": "object", "propertyNames": _NODE_NAME, "minProperties": 1,
                         "additionalProperties": {"$ref": "#/$defs/node"}},
            },
            "node": {
                "if": {"type": "array"},
                "then": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}},
                "else": {"$ref": "#/$defs/node_map"},
            },
            "node_map": node_map,
            "branches": {"type": "array", "minItems": 1, "items": {
                "if": {"anyOf": [{"type": "null"}, {"type": "object", "maxProperties": 0}]},
                "then": True,
                "else": {"$ref": "#/$defs/body"}}},
            "block": {
                "type": "object",
                "properties": {
                    "args": {"type": "object", "propertyNames": _IDENTIFIER},
                    "body": {"$ref": "#/$defs/body"},
                    "output": _REF,
                    "doc": {"type": "string"},
                },
                "required": ["body"],
                "additionalProperties": False,
            },
            "output": {
                "if": {"type": "string"},
                "then": _REF,
                "else": {"type": "object",
                         "properties": {"from": _REF, "when": _BOOL_OR_EXPR, "train_only": _BOOL_OR_EXPR},
                         "required": ["from"], "additionalProperties": False}},
            # Schemes and their arguments are checked by archspec/init.py, which says more
            # about a misspelt scheme than a schema can.
            "init_rule": {
                "type": "object",
                "properties": {"op": _NAMES, "name": _NAMES, "when": _BOOL_OR_EXPR, "doc": {"type": "string"}},
                "propertyNames": {"pattern": r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*(?![\s\S])"},
                "additionalProperties": {"description": "a tensor of the selected nodes (weight, bias, value, "
                                         "0.weight) and its scheme: zeros, ones, default, a number, or "
                                         "{SCHEME: {ARG: VALUE}}"},
            },
            "expect": {
                "type": "object",
                "properties": {
                    "params": _INT_OR_EXPR, "macs": _INT_OR_EXPR, "output": _SHAPE,
                    "outputs": {"type": "object", "additionalProperties": _SHAPE},
                    "shapes": {"type": "object", "additionalProperties": _SHAPE},
                },
                "additionalProperties": False,
            },
        },
    }


def shipped_schema() -> dict:
    """The exported copy of the schema for the built-in ops (spec.schema.json)."""
    import json
    from importlib import resources  # imports tempfile and more: only for tools that read the file

    return json.loads(resources.files("archspec").joinpath(SCHEMA_FILE).read_text("utf-8"))


# Compiled checks, rebuilt when an op is registered (the registry's version changes).
_compiled: dict = {}


def _current(kind: str):
    key = (kind, REGISTRY.version)
    if key not in _compiled:
        if len(_compiled) > 8:
            _compiled.clear()
        if kind == "fast":
            from .fastschema import compile_schema

            _compiled[key] = compile_schema(build_schema())
        else:
            import jsonschema  # the reference validator: only documents with errors need it

            _compiled[key] = jsonschema.Draft202012Validator(build_schema())
    return _compiled[key]


def load_ops_used(document) -> None:
    """Load the plugins whose ops the document uses, so the schema knows them; a
    plugin that fails is reported where the spec uses its op. Specs that use only
    loaded ops never look for plugins."""
    failures = []
    for node, key in _unknown_op_names(document):
        try:
            REGISTRY.get(node[key] if key == "op" else key)
        except PluginError as exc:
            failures.append(Diagnostic("E0801", str(exc), node.where(key) if hasattr(node, "where") else None,
                                       f"reinstall or fix {exc.distribution}, or uninstall it; specs that do "
                                       "not use its op are unaffected"))
    if failures:
        raise SpecError(failures)


def _unknown_op_names(document):
    """(node, key) for each `op:` value, and each key of a node of no known kind, that
    names no loaded op: the places a plugin might be meant."""
    loaded = REGISTRY.available()
    kinds = set(node_kinds(loaded))
    bodies = [document.get("graph")]
    blocks = document.get("blocks")
    if isinstance(blocks, dict):
        bodies.extend(b.get("body") for b in blocks.values() if isinstance(b, dict))
    while bodies:
        body = bodies.pop()
        nodes = body.values() if isinstance(body, dict) else body if isinstance(body, list) else ()
        for node in nodes:
            if isinstance(node, list):
                bodies.append(node)
                continue
            if not isinstance(node, dict):
                continue
            if isinstance(node.get("op"), str) and node["op"] not in loaded:
                yield node, "op"
            for nested in ("seq", "splice"):
                if nested in node:
                    bodies.append(node[nested])
            present = kinds.intersection(node)
            for kind in present - set(BASE_NODE_KINDS):
                if isinstance(node[kind], list):
                    bodies.extend(node[kind])
            if not present:
                yield from ((node, key) for key in node if isinstance(key, str) and key not in COMMON_NODE_KEYS)


def validate_document(document) -> None:
    """Raise SpecError listing every schema violation, each at its own position."""
    load_ops_used(document)
    if _current("fast")(document):
        return
    errors = list(_current("reference").iter_errors(document))
    if errors:
        diagnostics = []
        for e in errors:
            found = _diagnostic(document, e)
            diagnostics.extend(found if isinstance(found, list) else [found])
        if not diagnostics:  # every error was a shadow of another; say something anyway
            diagnostics = [Diagnostic("E0201", errors[0].message, document.pos)]
        diagnostics.sort(key=lambda d: (d.pos.line, d.pos.col) if d.pos else (0, 0))
        # One value that breaks several rules is reported once, by the first of them.
        seen, unique = set(), []
        for d in diagnostics:
            if d.pos is None or d.pos not in seen:
                unique.append(d)
                seen.add(d.pos)
        raise SpecError(unique)


def _locate(document, path):
    container, key = None, None
    value = document
    for step in path:
        container, key = value, step
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            break
    return container, key, value


def _position(document, path):
    container, key, value = _locate(document, path)
    if container is None:
        return document.pos
    return container.where(key) if hasattr(container, "where") else getattr(value, "pos", None)


def _deepest(err):
    """Among the alternatives of an anyOf/oneOf, the one that got furthest (ties go to
    the first written, so the choice never depends on hashing)."""
    while err.context:
        best = max(len(e.absolute_path) for e in err.context)
        err = next(e for e in err.context if len(e.absolute_path) == best)
    return err


def _unknown_keys(document, err, path, where) -> list:
    instance = err.instance if isinstance(err.instance, dict) else {}
    if err.validator == "additionalProperties":
        allowed, owner, op = set(err.schema.get("properties") or ()), f"`{where}`", None
    else:  # a node: its op's arguments and the common keys
        all_kinds = node_kinds()
        kinds = [k for k in all_kinds if k in instance]
        known_op = isinstance(instance.get("op"), str) and instance["op"] in REGISTRY.available()
        if len(kinds) != 1 or ("op" in instance and not known_op):
            return []  # the missing or unknown kind is the error, reported on its own
        if "block" in instance:
            return []  # block arguments are checked against the block's declaration
        # An op node takes its op's arguments, a join node (`concat:`) its join op's.
        op = REGISTRY.get(instance["op"] if "op" in instance else kinds[0]) \
            if kinds[0] not in ("seq", "splice") else None
        allowed = set(COMMON_NODE_KEYS) | set(all_kinds) | (set(op.args) if op else set())
        owner = f"op `{op.name}`" if op else f"`{where}`"
    found = []
    for key in instance:
        if key in allowed:
            continue  # a known key whose value failed: reported by its own error
        pos = instance.key_pos.get(key) if hasattr(instance, "key_pos") else None
        hint = did_you_mean(key, allowed)
        if op and not hint:
            hint = f"`{op.name}` takes: {', '.join(op.args) or 'no arguments'}"
        found.append(Diagnostic("E0202", f"unknown key `{key}` in {owner}", pos or _position(document, path),
                                hint))
    return found


def _offers_expression(err) -> bool:
    return err.validator == "anyOf" and EXPRESSION_SCHEMA in err.validator_value


def _describe_options(options) -> str:
    return " or ".join(_describe(options)) + " or an expression like ${...}"


def _describe(options) -> list:
    words = []
    for option in options:
        if option == EXPRESSION_SCHEMA:
            continue
        if "enum" in option:
            words.append("one of " + ", ".join(map(str, option["enum"])))
        elif "anyOf" in option:
            words.extend(_describe(option["anyOf"]))
        elif option.get("type") == "array":
            words.append("a list of integers" if option.get("items") == _INT_OR_EXPR else "a list")
        else:
            words.append({"integer": "an integer", "number": "a number", "boolean": "true or false",
                          "null": "null (~)", "string": "text"}.get(option.get("type"), "a value"))
    return words


def _yaml_hint(value) -> str | None:
    if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9.]+[eE][-+]?[0-9]+", value):
        return f"YAML 1.1 reads `{value}` as text; write it with a dot and a signed exponent (1.0e-3) or as 0.001"
    if isinstance(value, str) and value.lower() in ("yes", "no", "on", "off", "y", "n"):
        return "write true or false"
    if isinstance(value, str) and re.fullmatch(r"[0-9]+(x[0-9]+)+", value):
        return "write a shape as a list: [3, 224, 224]"
    return None


def _diagnostic(document, err) -> Diagnostic:
    if err.validator == "oneOf" and err.schema.get("oneOf", [{}])[0].get("required") == ["op"]:
        all_kinds = node_kinds()
        present = [k for k in all_kinds if isinstance(err.instance, dict) and k in err.instance]
        where = ".".join(map(str, err.absolute_path)) or "node"
        msg = (f"`{where}` has {' and '.join(present)}: a node is exactly one of "
               + ", ".join(all_kinds)) if present else (
            f"`{where}` says neither what it is nor what it contains")
        return Diagnostic("E0203", msg, _position(document, err.absolute_path),
                          "add `op: NAME`, `block: NAME`, `seq:`, `concat:` or `add:`")
    if err.validator == "anyOf" and list(err.absolute_path) == ["init"] and isinstance(err.instance, list):
        err = next(e for e in err.context if e.relative_schema_path[0] == 0)  # a list: what is wrong in it
    elif err.validator == "anyOf" and list(err.absolute_path) == ["init"]:  # neither rules nor `default`
        close = did_you_mean(err.instance, ["default"]) if isinstance(err.instance, str) else None
        return Diagnostic("E0201", f"`init` must be a list of rules or `default`, got {err.instance!r}",
                          _position(document, ["init"]),
                          close or "write each rule as a list item: `- {op: conv, weight: kaiming_normal}`")
    err = _deepest(err) if not _offers_expression(err) else err
    path = list(err.absolute_path)
    where = ".".join(map(str, path)) or "the document"
    if _offers_expression(err):
        return Diagnostic("E0201", f"`{where}` must be {_describe_options(err.validator_value)}, "
                          f"got {err.instance!r}", _position(document, path), _yaml_hint(err.instance))
    if err.validator == "enum" and path and path[-1] == "op":
        return Diagnostic("E0301", f"unknown op `{err.instance}`", _position(document, path),
                          did_you_mean(err.instance, REGISTRY) or "ops: " + ", ".join(sorted(REGISTRY)))
    if err.validator in ("unevaluatedProperties", "additionalProperties"):
        return _unknown_keys(document, err, path, where)
    if err.validator == "pattern" and err.validator_value in (NAME_PATTERN, _IDENTIFIER["pattern"]):
        what = "a name" if err.validator_value == NAME_PATTERN else "an argument or block name"
        allowed = "letters, digits, _ and -" if err.validator_value == NAME_PATTERN else \
            "letters, digits and _, not starting with a digit"
        return Diagnostic("E0201", f"{what} must be {allowed}, got {err.instance!r}", _position(document, path),
                          "dots separate namespaces and cannot be part of a name" if "." in str(err.instance)
                          else None)
    if err.validator == "type" and err.instance is None:
        return Diagnostic("E0201", f"`{where}` has no value", _position(document, path),
                          "write the node, e.g. `{op: relu}`, or delete the key")
    if err.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        if missing and isinstance(err.instance, dict) and did_you_mean(missing[0], err.instance):
            return []  # a misspelt key: its unknown-key error says "did you mean"
        return Diagnostic("E0203", f"`{where}` is missing `{missing[0] if missing else '?'}`",
                          _position(document, path))
    return Diagnostic("E0201", f"`{where}`: {err.message}", _position(document, path))


def schema_text(ops: dict | None = None) -> str:
    """The schema as the shipped file holds it."""
    import json

    return json.dumps(build_schema(ops), indent=1) + "\n"


def write_schema() -> str:
    """Export the schema of the built-in ops to the shipped file; returns its path.
    (`python -c "from archspec.schema import write_schema; write_schema()"`)"""
    from pathlib import Path

    target = Path(__file__).with_name(SCHEMA_FILE)
    target.write_text(schema_text(REGISTRY.builtin()), encoding="utf-8")
    return str(target)
