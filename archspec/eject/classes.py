"""Instances grouped into classes, and the values that differ between the instances
of a class turned into constructor arguments named after the spec's own.

A class is one block (or seq, or repeat) with one structure; its instances differ
only in values. Each value that is the same in every instance is written as a
literal; one that differs is written as an expression of a name the instances
have in common, when one fits every instance exactly: a block argument (`planes`),
the channels of the input (`in_channels`), another name in the block's scope (a
file-level arg such as `num_classes`), or `name * k`, `name // k`, `not name` of
one. Values no name explains become constructor arguments of their own, named
after where they are used (`conv1_out_channels`). Instances of every variant of
the spec eject compiles (see `eject.py`) take part, so a value that follows a
file-level arg is seen to follow it.
"""
from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field

from .instances import IN_NAMES, Instance
from .source import NO_DEFAULT, Arg

REQUIRED = NO_DEFAULT
# Names the generated code reads in __init__ and forward: no constructor argument may take them.
RESERVED_NAMES = frozenset({"self", "nn", "F", "torch", "super", "range", "x"})
DROP = object()  # a keyword argument left out: every instance has its default
_MISSING = object()


@dataclass
class Param:
    name: str
    default: object = REQUIRED


@dataclass(eq=False)
class ClassDef:
    name: str
    definition: tuple
    instances: list
    optional: dict = field(default_factory=dict)   # rel -> module structure, or None where always a pass
    presence: dict = field(default_factory=dict)   # rel -> "always", "some" or "never"
    params: list = field(default_factory=list)     # Param, in signature order
    text: dict = field(default_factory=dict)       # slot id -> source text, or DROP
    flags: dict = field(default_factory=dict)      # rel -> the argument saying whether it is built
    uses: dict = field(default_factory=dict)       # slot id -> the constructor arguments its text reads

    @property
    def first(self) -> Instance:
        return self.instances[0]


class Unexpressible(Exception):
    """The top-level class cannot take its values from the exposed file-level args
    in the compilations with these indices."""

    def __init__(self, compilations: set):
        super().__init__(compilations)
        self.compilations = compilations


def form_classes(instances: list) -> list:
    """One class per group of instances with one structure; instances whose optional
    modules are built from different constructors go to different classes."""
    groups: list[ClassDef] = []
    for inst in instances:
        for group in groups:
            if group.first.key == inst.key and _compatible(group, inst):
                break
        else:
            group = ClassDef("", inst.scope.definition, [])
            groups.append(group)
        group.instances.append(inst)
        for rel, opt in inst.optional.items():
            if opt is not None:
                group.optional[rel] = opt[0]
            else:
                group.optional.setdefault(rel, None)
    for group in groups:
        for rel in group.optional:
            built = [inst.optional[rel] is not None for inst in group.instances]
            group.presence[rel] = "always" if all(built) else "never" if not any(built) else "some"
    return groups


def _compatible(group: ClassDef, inst: Instance) -> bool:
    for rel, opt in inst.optional.items():
        mine = group.optional.get(rel)
        if opt is not None and mine is not None and opt[0] != mine:
            return False
    return True


def resolve(cls: ClassDef, root: bool = False) -> None:
    """Decide how each slot is written and what the constructor takes; give each
    instance its constructor values. For the top-level class, raise Unexpressible
    where a value follows no exposed arg."""
    insts = cls.instances
    slots: dict = {}
    for k, inst in enumerate(insts):
        for sid, arg in _all_values(inst):
            slots.setdefault(sid, [None] * len(insts))[k] = arg
    candidates = _candidate_order(insts)
    reserved = set(insts[0].context) | RESERVED_NAMES  # names own arguments must not take
    params: dict = {}     # name -> per-instance values
    kinds: dict = {}      # name -> "context", "own" or "flag"
    own_vectors: dict = {}
    for sid, column in slots.items():
        present = [(k, a) for k, a in enumerate(column) if a is not None]
        meta = present[0][1]
        shorts = all(a.short is not None for _, a in present)
        pick = (lambda a: a.short) if shorts else (lambda a: a.value)
        first = pick(meta)
        if all(_same(pick(a), first) for _, a in present):
            if meta.keyword and meta.default is not NO_DEFAULT and \
                    (_same(first, meta.default) or _same(meta.value, meta.default)):
                cls.text[sid] = DROP
            else:
                cls.text[sid] = literal(first)
            continue
        found = _match(present, insts, candidates(meta.label))
        if found is None:
            found = _match_items(present, insts, candidates(meta.label))
        if found is not None:
            names, expression = found
            cls.text[sid] = expression
            cls.uses[sid] = names
            for name in names:
                if name not in params:
                    params[name] = [inst.context.get(name) for inst in insts]
                    kinds[name] = "context"
            continue
        if root:
            raise Unexpressible({k for k, a in present if not _same(pick(a), first)})
        vector = tuple(_key(pick(a)) if a is not None else None for a in column)
        name = own_vectors.get(vector)
        if name is None:
            name = _fresh(_own_name(sid), set(params) | reserved)
            own_vectors[vector] = name
            params[name] = [pick(a) if a is not None else None for a in column]
            kinds[name] = "own"
        cls.text[sid] = name
        cls.uses[sid] = (name,)
    for rel, presence in cls.presence.items():
        if presence == "some":
            if root:
                reference = insts[0].optional[rel] is not None
                raise Unexpressible({k for k, inst in enumerate(insts) if (inst.optional[rel] is not None) != reference})
            name = _fresh(_identifier(rel), set(params) | reserved)
            if name != _identifier(rel):
                name = _fresh(f"with_{_identifier(rel)}", set(params) | reserved)
            params[name] = [inst.optional[rel] is not None for inst in insts]
            kinds[name] = "flag"
            cls.flags[rel] = name
    cls.params = _signature(cls, params, kinds)
    for k, inst in enumerate(insts):
        inst.params = {p.name: params[p.name][k] for p in cls.params}
        inst.cls = cls


def _all_values(inst: Instance):
    yield from inst.values.items()
    for opt in inst.optional.values():
        if opt is not None:
            yield from opt[1].items()


def _candidate_order(insts: list):
    """The names a slot may be written as, most telling first: for an input size
    (`in_channels` of a conv) the input's channels, else the block's arguments, then
    the other names the block can read (file-level args), then the input's channels."""
    first = insts[0]
    names = [n for n in first.context if n.isidentifier() and not keyword.iskeyword(n) and n not in RESERVED_NAMES]
    declared = [n for n in first.declared if n in names]
    ins = [n for n in IN_NAMES if n in names]
    rest = [n for n in names if n not in declared and n not in ins]

    def order(label: str) -> list:
        return ins + declared + rest if label in IN_NAMES else declared + rest + ins
    return order


def _match(present, insts, names):
    """(name, expression) for the first name whose values give the slot's in every
    instance where it is present: the name itself, then `name * k`, `name // k`, `not name`."""
    for form in ("same", "times", "div", "not"):
        for name in names:
            pairs = [(insts[k].context.get(name, _MISSING), a) for k, a in present]
            if any(cv is _MISSING for cv, _ in pairs):
                continue
            expression = _fits(form, name, pairs)
            if expression is not None:
                return (name,), expression
    return None


def _match_items(present, insts, names):
    """For a tuple (a parameter's shape), each item on its own: `(width, 1, 1)`."""
    lengths = {len(a.value) if isinstance(a.value, tuple) else None for _, a in present}
    if len(lengths) != 1 or None in lengths:
        return None
    used, texts = [], []
    for i in range(lengths.pop()):
        items = [(k, Arg(a.label, a.keyword, a.value[i])) for k, a in present]
        if all(_same(a.value, items[0][1].value) for _, a in items):
            texts.append(literal(items[0][1].value))
            continue
        found = _match(items, insts, names)
        if found is None:
            return None
        used += [n for n in found[0] if n not in used]
        texts.append(found[1])
    return tuple(used), "(" + ", ".join(texts) + ("," if len(texts) == 1 else "") + ")"


def _fits(form, name, pairs):
    if form == "same":
        ok = all(_same(cv, a.value) or (a.short is not None and _same(cv, a.short)) for cv, a in pairs)
        return name if ok else None
    if form == "not":
        ok = all(isinstance(cv, bool) and isinstance(a.value, bool) and a.value is (not cv) for cv, a in pairs)
        return f"not {name}" if ok else None
    factors = set()
    for cv, a in pairs:
        value = a.short if a.short is not None else a.value
        if not (_is_int(cv) and _is_int(value)) or cv == 0 or value == 0:
            return None
        if form == "times":
            if value % cv:
                return None
            factors.add(value // cv)
        else:
            if cv % value:
                return None
            factors.add(cv // value)
    if len(factors) != 1 or min(factors) < 2:
        return None
    k = factors.pop()
    return f"{name} * {k}" if form == "times" else f"{name} // {k}"


def _signature(cls: ClassDef, params: dict, kinds: dict) -> list:
    """Constructor arguments: input size first, block arguments as declared, other
    names in scope, the class's own values, then which optional parts to build;
    those without a default before those with one."""
    first = cls.first
    declared = list(first.declared)
    defaults = _declared_defaults(first) if first.scope.kind == "block" else {}
    ordered = [n for n in IN_NAMES if n in params] + [n for n in declared if n in params]
    ordered += [n for n in params if n not in ordered and kinds[n] == "context"]
    ordered += [n for n in params if kinds[n] == "own"] + [n for n in params if kinds[n] == "flag"]
    out = []
    for name in ordered:
        values = params[name]
        if first.scope.kind == "root":
            default = first.context[name]
        elif kinds[name] == "flag":
            default = False
        elif kinds[name] == "own":
            default = None if any(v is None for v in values) else REQUIRED
        else:
            default = defaults.get(name, REQUIRED)
        out.append(Param(name, default))
    return [p for p in out if p.default is REQUIRED] + [p for p in out if p.default is not REQUIRED]


def _declared_defaults(inst: Instance) -> dict:
    """The block's own defaults that are plain values (not expressions, not `~`)."""
    definition = (inst.comp.spec.document.get("blocks") or {}).get(inst.scope.label) or {}
    out = {}
    for name, value in (definition.get("args") or {}).items():
        if value is None or (isinstance(value, str) and "$" in value):
            continue
        if isinstance(value, (bool, int, float, str)) or (
                isinstance(value, list) and all(isinstance(v, (bool, int, float, str)) for v in value)):
            out[name] = list(value) if isinstance(value, list) else value
    return out


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _key(value):
    """A hashable form that tells 1, 1.0 and True apart."""
    if isinstance(value, (list, tuple)):
        return ("seq",) + tuple(_key(v) for v in value)
    return (type(value).__name__, value)


def _same(a, b) -> bool:
    return _key(a) == _key(b)


def _own_name(sid: str) -> str:
    """A constructor argument named after where its value goes: `conv1_out_channels`;
    under numbered parts the argument's own name first: `p_0` for `0/p`."""
    parts = sid.split("/")
    if parts[0].isdigit():
        parts = parts[-1:] + parts[:-1]
    return _identifier("_".join(parts))


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text)
    if not name or name[0].isdigit():
        name = "arg_" + name
    return name + "_" if keyword.iskeyword(name) else name


def _fresh(name: str, taken) -> str:
    if name not in taken:
        return name
    i = 2
    while f"{name}_{i}" in taken:
        i += 1
    return f"{name}_{i}"


def literal(value) -> str:
    """Python source for a plain value."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return f"float('{value}')"
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)
