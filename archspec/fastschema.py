"""A fast yes/no check of a document against archspec's JSON Schema.

`jsonschema` is the reference validator and produces every diagnostic, but walking
a large spec with it takes a quarter of a second, and most documents are valid. This
module compiles the schema, once, into nested Python closures that answer only
"valid or not", for exactly the keywords archspec's schema uses (an unknown keyword
is refused at compile time rather than ignored). A document it accepts is valid; one
it refuses goes to jsonschema, which reports the errors (tests check that the two
agree on every shipped spec and the whole bad-spec corpus).

Each compiled check returns the set of object keys it evaluated (what
`unevaluatedProperties` needs) or None when the instance is invalid.
"""
from __future__ import annotations

import re
from collections.abc import Callable

Check = Callable[[object], "set | None"]
_OK: frozenset = frozenset()

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: not isinstance(v, bool) and (isinstance(v, int) or (isinstance(v, float) and v.is_integer())),
    "number": lambda v: not isinstance(v, bool) and isinstance(v, (int, float)),
}
_ANNOTATION_ONLY = {"$schema", "$id", "title", "description", "$defs", "default"}


def _equal(a, b) -> bool:
    """JSON equality: true and 1 differ, 1 and 1.0 do not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


class _Compiler:
    def __init__(self, root: dict):
        self.root = root
        self.refs: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        # Recursive references are resolved lazily through this table.
        if pointer not in self.refs:
            self.refs[pointer] = None
            target = self.root
            for part in pointer.lstrip("#/").split("/"):
                target = target[part]
            self.refs[pointer] = self.compile(target)
        return lambda value: self.refs[pointer](value)

    def compile(self, schema) -> Check:
        if schema is True:
            return lambda value: _OK
        if schema is False:
            return lambda value: None
        unknown = set(schema) - _KEYWORDS.keys() - _ANNOTATION_ONLY
        if unknown:
            raise ValueError(f"fastschema does not implement {sorted(unknown)}")
        checks = []
        if "allOf" in schema and _dispatchable(schema["allOf"]):
            checks.append(self._dispatch(schema["allOf"]))
            schema = {k: v for k, v in schema.items() if k != "allOf"}
        for keyword, build in _KEYWORDS.items():
            if keyword in schema and build is not None:
                checks.append(build(self, schema[keyword], schema))
        if "unevaluatedProperties" in schema:
            return self._unevaluated(checks, schema["unevaluatedProperties"])

        def check(value):
            evaluated = set()
            for one in checks:
                got = one(value)
                if got is None:
                    return None
                evaluated |= got
            return evaluated
        return check

    def _unevaluated(self, checks, rule) -> Check:
        rest = self.compile(rule)

        def check(value):
            evaluated = set()
            for one in checks:
                got = one(value)
                if got is None:
                    return None
                evaluated |= got
            if isinstance(value, dict):
                for key in value:
                    if key not in evaluated and rest(value[key]) is None:
                        return None
                return set(value)
            return evaluated
        return check

    def _dispatch(self, rules) -> Check:
        """`allOf` of `if {key: const V} then T` rules, as one table lookup."""
        key = next(iter(rules[0]["if"]["properties"]))
        table = {}
        for rule in rules:
            table.setdefault(rule["if"]["properties"][key]["const"], []).append(self.compile(rule["then"]))

        def check(value):
            if not isinstance(value, dict) or key not in value:
                return _OK
            selector = value[key]
            if not isinstance(selector, str):
                return _OK
            evaluated = {key}
            for then in table.get(selector, ()):
                got = then(value)
                if got is None:
                    return None
                evaluated |= got
            return evaluated if selector in table else _OK
        return check


def _dispatchable(rules) -> bool:
    keys = set()
    for rule in rules:
        cond = rule.get("if") if isinstance(rule, dict) else None
        if (not isinstance(cond, dict) or set(rule) != {"if", "then"} or set(cond) != {"properties", "required"}
                or len(cond["properties"]) != 1):
            return False
        (key, const), = cond["properties"].items()
        if cond["required"] != [key] or set(const) != {"const"} or not isinstance(const["const"], str):
            return False
        keys.add(key)
    return len(keys) == 1


def _type(c, types, schema):
    tests = [_TYPES[t] for t in ([types] if isinstance(types, str) else types)]
    return lambda v: _OK if any(t(v) for t in tests) else None


def _properties(c, props, schema):
    compiled = {k: c.compile(s) for k, s in props.items()}

    def check(value):
        if not isinstance(value, dict):
            return _OK
        seen = set()
        for key, sub in compiled.items():
            if key in value:
                if sub(value[key]) is None:
                    return None
                seen.add(key)
        return seen
    return check


def _additional(c, rule, schema):
    sub, known = c.compile(rule), set(schema.get("properties", ()))

    def check(value):
        if not isinstance(value, dict):
            return _OK
        extra = [k for k in value if k not in known]
        return set(extra) if all(sub(value[k]) is not None for k in extra) else None
    return check


def _property_names(c, rule, schema):
    sub = c.compile(rule)
    return lambda v: _OK if not isinstance(v, dict) or all(sub(k) is not None for k in v) else None


def _required(c, names, schema):
    return lambda v: _OK if not isinstance(v, dict) or all(n in v for n in names) else None


def _min_properties(c, n, schema):
    return lambda v: _OK if not isinstance(v, dict) or len(v) >= n else None


def _max_properties(c, n, schema):
    return lambda v: _OK if not isinstance(v, dict) or len(v) <= n else None


def _items(c, rule, schema):
    sub = c.compile(rule)
    return lambda v: _OK if not isinstance(v, list) or all(sub(x) is not None for x in v) else None


def _min_items(c, n, schema):
    return lambda v: _OK if not isinstance(v, list) or len(v) >= n else None


def _max_items(c, n, schema):
    return lambda v: _OK if not isinstance(v, list) or len(v) <= n else None


_PATTERNS: dict = {}


def _pattern(c, text, schema):
    regex = _PATTERNS.setdefault(text, re.compile(text))
    return lambda v: _OK if not isinstance(v, str) or regex.search(v) else None


def _enum(c, options, schema):
    return lambda v: _OK if any(_equal(v, o) for o in options) else None


def _const(c, option, schema):
    return lambda v: _OK if _equal(v, option) else None


def _minimum(c, n, schema):
    return lambda v: _OK if not _TYPES["number"](v) or v >= n else None


def _not(c, rule, schema):
    sub = c.compile(rule)
    return lambda v: _OK if sub(v) is None else None


def _all_of(c, rules, schema):
    subs = [c.compile(r) for r in rules]

    def check(value):
        evaluated = set()
        for sub in subs:
            got = sub(value)
            if got is None:
                return None
            evaluated |= got
        return evaluated
    return check


def _any_of(c, rules, schema):
    subs = [c.compile(r) for r in rules]

    def check(value):
        evaluated, ok = set(), False
        for sub in subs:  # every branch, for the keys it evaluates
            got = sub(value)
            if got is not None:
                ok = True
                evaluated |= got
        return evaluated if ok else None
    return check


def _one_of(c, rules, schema):
    subs = [c.compile(r) for r in rules]

    def check(value):
        passed = [got for got in (sub(value) for sub in subs) if got is not None]
        return passed[0] if len(passed) == 1 else None
    return check


def _if(c, rule, schema):
    cond = c.compile(rule)
    then = c.compile(schema.get("then", True))
    otherwise = c.compile(schema.get("else", True))

    def check(value):
        got = cond(value)
        if got is not None:
            more = then(value)
            return None if more is None else got | more
        return otherwise(value)
    return check


def _ref(c, pointer, schema):
    return c.ref(pointer)


# Keyword -> builder; None marks keywords read by another keyword's builder.
_KEYWORDS = {
    "$ref": _ref, "type": _type, "enum": _enum, "const": _const, "pattern": _pattern,
    "minimum": _minimum, "properties": _properties, "additionalProperties": _additional,
    "propertyNames": _property_names, "required": _required, "minProperties": _min_properties,
    "maxProperties": _max_properties,
    "items": _items, "minItems": _min_items, "maxItems": _max_items, "not": _not,
    "allOf": _all_of, "anyOf": _any_of, "oneOf": _one_of, "if": _if, "then": None, "else": None,
    "unevaluatedProperties": None,
}


def compile_schema(schema: dict) -> Callable[[object], bool]:
    """A function telling whether a document is valid under `schema`."""
    check = _Compiler(schema).compile(schema)
    return lambda document: check(document) is not None
