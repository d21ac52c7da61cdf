"""The spec language's JSON Schema (Draft 2020-12), generated from the op registry.

The generated schema is shipped as `archspec/spec.schema.json` so other tools can
validate specs without importing archspec; a test keeps the two identical, and
`python -m archspec.schema` rewrites the file after an op is added.
"""
from __future__ import annotations

import json
import re
from importlib import resources

import jsonschema

from .diagnostics import Diagnostic, SpecError, did_you_mean
from .ops import REGISTRY
from .ops.base import EXPRESSION_SCHEMA

SCHEMA_FILE = "spec.schema.json"
# Keys every node may carry, whatever its kind.
COMMON_NODE_KEYS = ("name", "from", "when", "repeat", "at", "names", "frozen", "doc")
NODE_KINDS = ("op", "block", "seq", "concat", "add")

_IDENTIFIER = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}
_NODE_NAME = {"type": "string", "pattern": r"^[A-Za-z0-9_]+$", "not": {"enum": ["in", "input"]}}
_REF = {"type": "string", "pattern": r"^[A-Za-z0-9_$][A-Za-z0-9_.${} ]*$"}
_INT_OR_EXPR = {"anyOf": [{"type": "integer"}, EXPRESSION_SCHEMA]}
_BOOL_OR_EXPR = {"anyOf": [{"type": "boolean"}, EXPRESSION_SCHEMA]}
_SHAPE = {"anyOf": [{"type": "array", "items": _INT_OR_EXPR, "minItems": 1}, EXPRESSION_SCHEMA]}


def build_schema() -> dict:
    op_rules = [
        {"if": {"properties": {"op": {"const": name}}, "required": ["op"]},
         "then": {"properties": op.arg_schema()}}
        for name, op in sorted(REGISTRY.items())
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
            "op": {"enum": sorted(REGISTRY)},
            "block": {"anyOf": [_IDENTIFIER, EXPRESSION_SCHEMA]},
            "seq": {"$ref": "#/$defs/body"},
            "concat": {"$ref": "#/$defs/branches"},
            "add": {"$ref": "#/$defs/branches"},
        },
        "oneOf": [{"required": [kind]} for kind in NODE_KINDS],
        "allOf": op_rules + [
            # A block's arguments are its own: any identifier, any value.
            {"if": {"required": ["block"]},
             "then": {"propertyNames": {"pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
                      "additionalProperties": True}},
            {"if": {"anyOf": [{"required": ["concat"]}, {"required": ["add"]}]},
             "then": {"properties": {"dim": _INT_OR_EXPR}}},
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
        },
        "additionalProperties": False,
        "if": {"not": {"required": ["extends"]}},
        "then": {"required": ["graph", "input"]},
        "$defs": {
            "body": {"anyOf": [
                {"type": "object", "propertyNames": _NODE_NAME, "minProperties": 1,
                 "additionalProperties": {"$ref": "#/$defs/node"}},
                {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}},
            ]},
            "node": {"anyOf": [
                {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/node"}},
                {"$ref": "#/$defs/node_map"},
            ]},
            "node_map": node_map,
            "branches": {"type": "array", "minItems": 1, "items": {"anyOf": [
                {"type": "null"}, {"type": "object", "maxProperties": 0},
                {"$ref": "#/$defs/body"}]}},
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
            "output": {"anyOf": [_REF, {
                "type": "object",
                "properties": {"from": _REF, "when": _BOOL_OR_EXPR, "train_only": _BOOL_OR_EXPR},
                "required": ["from"], "additionalProperties": False}]},
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
    return json.loads(resources.files("archspec").joinpath(SCHEMA_FILE).read_text("utf-8"))


_validator = None


def _get_validator():
    global _validator
    if _validator is None:
        schema = shipped_schema()
        _validator = jsonschema.Draft202012Validator(schema)
    return _validator


def validate_document(document) -> None:
    """Raise SpecError listing every schema violation, each at its own position."""
    errors = sorted(_get_validator().iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise SpecError([_diagnostic(document, e) for e in errors])


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
    """Among the alternatives of an anyOf/oneOf, the one that got furthest."""
    while err.context:
        err = max(err.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return err


def _diagnostic(document, err) -> Diagnostic:
    if err.validator == "oneOf" and err.schema.get("oneOf", [{}])[0].get("required") == ["op"]:
        present = [k for k in NODE_KINDS if k in err.instance]
        where = ".".join(map(str, err.absolute_path)) or "node"
        msg = (f"`{where}` has {' and '.join(present)}: a node is exactly one of "
               + ", ".join(NODE_KINDS)) if present else (
            f"`{where}` says neither what it is nor what it contains")
        return Diagnostic("E0203", msg, _position(document, err.absolute_path),
                          "add `op: NAME`, `block: NAME`, `seq:`, `concat:` or `add:`")
    err = _deepest(err)
    path = list(err.absolute_path)
    where = ".".join(map(str, path)) or "the document"
    if err.validator in ("unevaluatedProperties", "additionalProperties"):
        extra = re.findall(r"'([^']+)'", err.message)
        key = next((k for k in extra if isinstance(err.instance, dict) and k in err.instance), None)
        allowed = set(COMMON_NODE_KEYS) | set(NODE_KINDS)
        op = REGISTRY.get(err.instance.get("op")) if isinstance(err.instance, dict) else None
        if op is not None:
            allowed |= set(op.args)
        elif isinstance(err.schema.get("properties"), dict):
            allowed = set(err.schema["properties"])
        pos = err.instance.key_pos.get(key) if hasattr(err.instance, "key_pos") else None
        owner = f"op `{op.name}`" if op else f"`{where}`"
        hint = did_you_mean(key, allowed) if key else None
        if op and not hint:
            hint = f"`{op.name}` takes: {', '.join(op.args) or 'no arguments'}"
        return Diagnostic("E0202", f"unknown key `{key}` in {owner}", pos or _position(document, path), hint)
    if err.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        return Diagnostic("E0203", f"`{where}` is missing `{missing[0] if missing else '?'}`",
                          _position(document, path))
    return Diagnostic("E0201", f"`{where}`: {err.message}", _position(document, path))


def write_schema() -> str:
    """Regenerate the shipped schema file (after adding an op); returns its path."""
    from pathlib import Path

    target = Path(__file__).with_name(SCHEMA_FILE)
    target.write_text(json.dumps(build_schema(), indent=1) + "\n", encoding="utf-8")
    return str(target)
