"""Property-based fuzzing of archspec with Hypothesis (a development tool).

Two families of inputs:

- `valid_specs()` generates random spec texts that are valid by construction: chains,
  nested concatenations, residual additions (identity or `op: project` shortcuts),
  convolutions of every kind, pools, heads, blocks with arguments, `repeat` with `at:`
  overrides, `when:` conditions and expressions. While it generates, an independent
  model of the language (written from the README and PyTorch's shape formulas, not from
  archspec's code) interprets the spec, so each example also carries what archspec must
  infer: every qualified node name, its shape and its parameter count, and the outputs.
  `check_valid()` compiles the text and compares that, then builds the module and runs
  it on CPU (train and eval mode, batch 2), comparing every node's real shape, the
  parameter count of every module, the outputs of the generated forward with a forward
  that never works in place, and the backward pass.
- `mutated_specs()` takes a shipped spec and breaks it (lines deleted, duplicated or
  swapped, scalars replaced, characters inserted, truncation, indentation).
  `check_mutant()` runs `archspec validate` on it: the result must be 0, 1 or 2, never
  an exception or 3, and errors must be reported as `file:line:col: error[CODE]:`.

    python -m archspec.fuzz --examples 300 [--seed S] [--mode valid|mutate|both]

Hypothesis is a development dependency: `import archspec` never imports this module.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import shutil
import sys
import tempfile
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

try:
    import hypothesis
    from hypothesis import HealthCheck, settings
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("archspec.fuzz needs Hypothesis, a development dependency: "
                      "pip install -e '.[dev]'") from exc

SPECS_DIR = Path(__file__).resolve().parent.parent / "specs"

# ---------------------------------------------------------------------------------
# The spec model: a small tree mirroring the language, and an interpreter for it.
# ---------------------------------------------------------------------------------


class Invalid(Exception):
    """The model finds the spec invalid (the generator then picks something else)."""


class E:
    """An expression: the text written in the spec and the value the model gives it."""

    __slots__ = ("text", "fn", "quote")

    def __init__(self, text: str, fn, quote: bool = True):
        self.text, self.fn, self.quote = text, fn, quote

    def __repr__(self):
        return f"E({self.text!r})"


def ev(value, env):
    if isinstance(value, E):
        try:
            return value.fn(env)
        except (KeyError, IndexError, ZeroDivisionError, TypeError) as exc:
            raise Invalid(f"expression {value.text}: {exc!r}") from None
    if isinstance(value, list):
        return [ev(v, env) for v in value]
    return value


@dataclass
class Node:
    kind: str                        # op | block | seq | concat | add
    op: str | None = None
    args: dict = field(default_factory=dict)   # op or block arguments (raw values)
    block: object = None             # block name, or E
    body: "Body | None" = None       # seq
    branches: list | None = None     # concat/add: Body, or None for the identity
    empty: str = "{}"                # how an identity branch is written: {} or ~
    dim: object = None               # concat dim
    src: object = None               # `from:`: str or list of str
    when: object = None
    repeat: object = None
    at: dict | None = None           # repeat index -> {arg: raw}
    names: object = None             # flat repeat name template (E)
    name: object = None              # `name:` of a list item
    doc: str | None = None
    frozen: object = None            # `frozen:` (bool or E)
    flow: bool = False               # written as a flow mapping {...}
    shorthand: bool = False          # seq written as a list value


@dataclass
class Body:
    items: list                      # [(key, Node)]; key None in a list body
    style: str = "map"               # map | list
    late: bool = False               # a shortcut branch whose `from:` names later nodes


@dataclass
class BlockDef:
    args: dict                       # name -> default (None: required)
    body: Body


INPUT = "input"


class Scope:
    """A namespace: its names, and (for generation) the counter that names new nodes."""

    def __init__(self, prefix: str, env: dict, input_shape, input_name: str, frozen: bool = False):
        self.prefix, self.env, self.input, self.input_name = prefix, env, input_shape, input_name
        self.frozen = frozen
        self.names: dict = {}        # local name -> output shape
        self.children: dict = {}     # local name -> Scope
        self.switched: set = set()
        self.counter = [0]           # shared by copies: one namespace, one sequence of names

    def clone(self) -> "Scope":
        c = Scope(self.prefix, self.env, self.input, self.input_name, self.frozen)
        c.names, c.children, c.switched = dict(self.names), dict(self.children), set(self.switched)
        c.counter = self.counter
        return c

    def view(self, env=None, frozen=None) -> "Scope":
        """The same namespace (shared tables), another environment or frozen flag."""
        c = Scope(self.prefix, self.env if env is None else env, self.input, self.input_name,
                  self.frozen if frozen is None else frozen)
        c.names, c.children, c.switched, c.counter = self.names, self.children, self.switched, self.counter
        return c


def _pair(v):
    if isinstance(v, bool):
        raise Invalid(f"not a pair: {v!r}")
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                            for x in v):
        return tuple(v)
    raise Invalid(f"not a pair: {v!r}")


def conv_len(n, k, s, p, d):
    if k < 1 or s < 1 or d < 1 or p < 0:
        raise Invalid("conv window")
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise Invalid("conv kernel larger than the padded input")
    return (n + 2 * p - span) // s + 1


def pool_len(n, k, s, p, ceil):
    """PyTorch's pooling_output_shape."""
    if k < 1 or s < 1 or p < 0 or p > k // 2:
        raise Invalid("pool window")
    out = (n + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    if out < 1:
        raise Invalid("pool output too small")
    return out


def op_rule(op: str, a: dict, shapes: list):
    """(output shape, parameters) of a primitive op, from PyTorch's rules."""
    x = shapes[0]

    def need3():
        if len(x) != 3:
            raise Invalid(f"{op} needs (C, H, W)")

    if op == "conv":
        need3()
        cin = x[0]
        depthwise = a.get("depthwise", False)
        groups = cin if depthwise else a.get("groups", 1)
        out = a.get("out")
        if out is None:
            out = cin if depthwise else None
        if out is None or not isinstance(out, int) or out < 1 or groups < 1:
            raise Invalid("conv out/groups")
        if cin % groups or out % groups:
            raise Invalid("conv groups")
        (kh, kw), (sh, sw) = _pair(a["k"]), _pair(a.get("stride", 1))
        (ph, pw), (dh, dw) = _pair(a.get("pad", 0)), _pair(a.get("dilation", 1))
        shape = (out, conv_len(x[1], kh, sh, ph, dh), conv_len(x[2], kw, sw, pw, dw))
        return shape, out * (cin // groups) * kh * kw + (out if a.get("bias", True) else 0)
    if op == "bn":
        if len(x) not in (1, 3):
            raise Invalid("bn rank")
        return x, (2 * x[0] if a.get("affine", True) else 0)
    if op in ("relu", "relu6", "silu", "gelu", "sigmoid", "tanh", "identity"):
        return x, 0
    if op == "dropout":
        if not 0 <= a.get("p", 0.5) <= 1:
            raise Invalid("dropout p")
        return x, 0
    if op in ("maxpool", "avgpool"):
        need3()
        k = _pair(a["k"])
        s = _pair(a["stride"]) if a.get("stride") is not None else k
        p = _pair(a.get("pad", 0))
        ceil = a.get("ceil_mode", False)
        return (x[0], pool_len(x[1], k[0], s[0], p[0], ceil), pool_len(x[2], k[1], s[1], p[1], ceil)), 0
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        need3()
        oh, ow = _pair(a.get("out", 1))
        if oh < 1 or ow < 1:
            raise Invalid("adaptive out")
        return (x[0], oh, ow), 0
    if op == "flatten":
        return (math.prod(x),), 0
    if op == "linear":
        if len(x) != 1 or a["out"] < 1:
            raise Invalid("linear")
        return (a["out"],), x[0] * a["out"] + (a["out"] if a.get("bias", True) else 0)
    if op == "concat":
        return concat_rule(shapes, a.get("dim", 1)), 0
    if op == "add":
        if any(s != x for s in shapes):
            raise Invalid("add shapes")
        return x, 0
    if op == "project":
        x, ref = shapes
        if len(x) != 3 or len(ref) != 3:
            raise Invalid("project rank")
        if x == ref:
            return ref, 0
        if x[1] % ref[1] or x[2] % ref[2] or x[1] // ref[1] != x[2] // ref[2]:
            raise Invalid("project stride")
        return ref, x[0] * ref[0] + (ref[0] if a.get("bias", False) else 0) + 2 * ref[0]
    raise Invalid(f"unknown op {op}")


def concat_rule(shapes, dim):
    axis = dim - 1
    rank = len(shapes[0])
    if not 0 <= axis < rank:
        raise Invalid("concat dim")
    for s in shapes[1:]:
        if len(s) != rank or any(u != v for i, (u, v) in enumerate(zip(s, shapes[0])) if i != axis):
            raise Invalid("concat shapes")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return tuple(out)


class Run:
    """Interprets a model: qualified name -> shape and parameters of every primitive node."""

    def __init__(self, blocks: dict, input_shape):
        self.blocks = blocks
        self.input_shape = input_shape
        self.shapes: dict = {}
        self.params: dict = {}
        self.ops: dict = {}
        self.frozen: dict = {}

    def body(self, body: Body, scope: Scope, cur):
        for index, (key, node) in enumerate(body.items):
            if body.style == "map":
                name = key
            else:
                name = str(ev(node.name, scope.env)) if node.name is not None else str(index)
            cur = self.node(name, node, scope, cur)
        return cur

    def lookup(self, scope: Scope, ref: str):
        if ref == "in":
            return scope.input
        if ref == INPUT:
            return self.input_shape
        head, _, rest = ref.partition(".")
        if head in scope.names and not rest:
            return scope.names[head]
        if head in scope.children and rest:
            return self.lookup(scope.children[head], rest)
        if head in scope.switched:
            raise Invalid(f"`{ref}` is switched off")
        raise Invalid(f"unknown input `{ref}`")

    def sources(self, node: Node, scope: Scope, cur):
        if node.src is None:
            return [cur]
        refs = node.src if isinstance(node.src, list) else [node.src]
        return [self.lookup(scope, r) for r in refs]

    def node(self, name: str, node: Node, scope: Scope, cur):
        if node.when is not None and not ev(node.when, scope.env):
            scope.switched.add(name)
            return cur
        if name in scope.names or name in scope.children:
            raise Invalid(f"duplicate name {scope.prefix}{name}")
        if node.frozen is not None and ev(node.frozen, scope.env):
            scope = scope.view(frozen=True)  # this node and everything inside it
        if node.repeat is not None:
            return self.repeat(name, node, scope, cur)
        src = self.sources(node, scope, cur)
        if node.kind == "op":
            args = {k: ev(v, scope.env) for k, v in node.args.items()}
            out = self.record(scope.prefix + name, node.op, args, src, scope.frozen)
        elif node.kind == "block":
            out = self.block(name, node, scope, src[0])
        elif node.kind == "seq":
            child = Scope(f"{scope.prefix}{name}.", scope.env, src[0], "in", scope.frozen)
            scope.children[name] = child
            out = self.body(node.body, child, src[0])
        else:
            out = self.join(name, node, scope, src[0])
        scope.names[name] = out
        return out

    def record(self, qualified, op, args, shapes, frozen=False):
        if qualified in self.shapes:
            raise Invalid(f"duplicate node {qualified}")
        out, params = op_rule(op, args, shapes)
        self.shapes[qualified], self.params[qualified], self.ops[qualified] = out, params, op
        self.frozen[qualified] = frozen
        return out

    def block(self, name, node, scope, source):
        block_name = ev(node.block, scope.env)
        definition = self.blocks.get(block_name)
        if definition is None:
            raise Invalid(f"unknown block {block_name}")
        env = dict(self.file_env)
        for key, default in definition.args.items():
            if key not in node.args:
                if default is None:
                    raise Invalid(f"block {block_name} needs {key}")
                env[key] = ev(default, env)
        for key, raw in node.args.items():
            if key not in definition.args:
                raise Invalid(f"block {block_name} has no argument {key}")
            env[key] = ev(raw, scope.env)
        child = Scope(f"{scope.prefix}{name}.", env, source, "in", scope.frozen)
        scope.children[name] = child
        return self.body(definition.body, child, source)

    def join(self, name, node, scope, start):
        ends = [None] * len(node.branches)
        order = sorted(range(len(node.branches)),
                       key=lambda i: bool(node.branches[i] is not None and node.branches[i].late))
        for i in order:
            branch = node.branches[i]
            ends[i] = start if branch is None else self.body(branch, scope, start)
        args = {"dim": ev(node.dim, scope.env)} if node.dim is not None else {}
        return self.record(scope.prefix + name, node.kind, args, ends, scope.frozen)

    def repeat(self, name, node, scope, cur):
        count = ev(node.repeat, scope.env)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise Invalid("repeat count")
        overrides = {}
        for key, extra in (node.at or {}).items():
            if not -count <= key < count:
                raise Invalid("at: outside the repeat")
            overrides[key % count] = extra
        out = self.sources(node, scope, cur)[0]
        flat = node.names is not None
        if flat:
            group = scope
        else:
            group = Scope(f"{scope.prefix}{name}.", scope.env, out, "in", scope.frozen)
            scope.children[name] = group
        for i in range(count):
            item = Node(**{**node.__dict__, "repeat": None, "at": None, "src": None, "names": None,
                           "args": {**node.args, **overrides.get(i, {})}})
            env = {**scope.env, "i": i}
            local = group.view(env, frozen=scope.frozen or group.frozen)
            copy_name = str(i)
            if flat:
                copy_name = str(ev(node.names, env))
                if copy_name == str(ev(node.names, {**env, "i": i + 1})):
                    raise Invalid("names template")
            out = self.node(copy_name, item, local, out)
        if not flat or name not in scope.names:
            scope.names[name] = out
        return out


# ---------------------------------------------------------------------------------
# YAML emission: block style with flow mappings where the generator asks for them.
# ---------------------------------------------------------------------------------


class FlowMap(dict):
    """A mapping written inline, `{k: v, ...}`."""


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_YAML11_WORDS = {w for base in ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
                 for w in (base, base.capitalize(), base.upper())}


def _float_text(v: float) -> str:
    text = f"{v:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _scalar(v, flow: bool) -> str:
    if isinstance(v, E):
        t = v.text
        special = set("{}[],") if flow else set()
        if v.quote or any(c in special for c in t) or ": " in t or " #" in t or t[:1] in "-?:,[]{}#&*!|>'\"%@`":
            return json.dumps(t)
        return t
    if v is None:
        return "~"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float_text(v)
    if isinstance(v, str):
        if _PLAIN.match(v) and v not in _YAML11_WORDS:
            return v
        return json.dumps(v)
    raise TypeError(v)


def _inline(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)}: {_inline(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_inline(x) for x in v) + "]"
    return _scalar(v, True)


def _key(k) -> str:
    if isinstance(k, int):
        return str(k)
    return _scalar(k, True)


def _inlinable(v) -> bool:
    if isinstance(v, FlowMap) or (isinstance(v, dict) and not v):
        return True
    if isinstance(v, list):
        return all(_inlinable(x) for x in v)
    return not isinstance(v, dict)


def _block_map(d: dict, indent: int) -> list:
    pad = " " * indent
    lines = []
    for k, v in d.items():
        if _inlinable(v):
            text = _inline(v) if isinstance(v, (dict, list)) else _scalar(v, False)
            lines.append(f"{pad}{_key(k)}: {text}")
        elif isinstance(v, dict):
            lines.append(f"{pad}{_key(k)}:")
            lines += _block_map(v, indent + 2)
        else:
            lines.append(f"{pad}{_key(k)}:")
            lines += _block_list(v, indent + 2)
    return lines


def _block_list(items: list, indent: int) -> list:
    pad = " " * indent
    lines = []
    for v in items:
        if _inlinable(v):
            lines.append(f"{pad}- {_inline(v) if isinstance(v, (dict, list)) else _scalar(v, False)}")
        elif isinstance(v, dict):
            inner = _block_map(v, indent + 2)
            lines.append(pad + "- " + inner[0][indent + 2:])
            lines += inner[1:]
        else:
            lines.append(pad + "-")
            lines += _block_list(v, indent + 2)
    return lines


def to_yaml(doc: dict) -> str:
    return "\n".join(_block_map(doc, 0)) + "\n"


def _node_yaml(node: Node):
    if node.shorthand:
        return _body_yaml(node.body)
    d = FlowMap() if node.flow else {}
    if node.kind == "op":
        d["op"] = node.op
        d.update(node.args)
    elif node.kind == "block":
        d["block"] = node.block
        d.update(node.args)
    elif node.kind == "seq":
        d["seq"] = _body_yaml(node.body)
    else:
        d[node.kind] = [_body_yaml(b) if b is not None else ({} if node.empty == "{}" else None)
                        for b in node.branches]
        if node.dim is not None:
            d["dim"] = node.dim
    for key, value in (("name", node.name), ("from", node.src), ("when", node.when),
                       ("repeat", node.repeat), ("names", node.names), ("frozen", node.frozen),
                       ("doc", node.doc)):
        if value is not None:
            d[key] = value
    if node.at:
        d["at"] = FlowMap({k: FlowMap(v) for k, v in node.at.items()})
    return d


def _body_yaml(body: Body):
    if body.style == "map":
        return {k: _node_yaml(n) for k, n in body.items}
    return [_node_yaml(n) for _, n in body.items]


# ---------------------------------------------------------------------------------
# Generation of valid specs.
# ---------------------------------------------------------------------------------

ACTIVATIONS = ["relu", "relu6", "silu", "gelu", "sigmoid", "tanh"]
MAX_CHANNELS = 24
MAX_FEATURES = 24


@dataclass
class Generated:
    """A generated spec and what the model says archspec must make of it."""

    text: str
    overrides: dict
    input_shape: tuple
    shapes: dict          # qualified node -> per-sample shape
    params: dict          # qualified node -> parameters
    ops: dict             # qualified node -> op
    frozen: dict          # qualified node -> whether its weights are frozen
    outputs: list         # [(name, shape, train_only)] active outputs, declared order

    def __repr__(self):
        extra = f"  overrides: {self.overrides}\n" if self.overrides else ""
        return f"Generated(<<\n{self.text}{extra}>>)"


class Gen:
    def __init__(self, draw, max_nodes: int):
        self.draw = draw
        self.counter = 0
        self.blocks: dict = {}
        self.block_templates: dict = {}  # name -> template flags
        self.budget = max_nodes
        self.file_env: dict = {}
        self.input_shape = None
        self.want_unit = False

    # -- choices (each shrinks towards the plainest option) ---------------------------
    def int(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def chance(self, p: float) -> bool:
        return self.draw(st.integers(0, 99)) >= 100 - round(p * 100)

    def pick(self, options):
        return options[self.draw(st.integers(0, len(options) - 1))]

    def weighted(self, options):
        """options: [(weight, value)], first = simplest."""
        total = sum(w for w, _ in options)
        r = self.draw(st.integers(0, total - 1))
        for w, v in options:
            if r < w:
                return v
            r -= w
        return options[-1][1]

    def fresh(self, stem: str, scope: "Scope | None" = None) -> str:
        """A new name: unique in its namespace (so names repeat across namespaces, as
        `conv1` and `layer1.0.conv1` do), or in the whole spec without a scope."""
        counter = scope.counter if scope is not None else [self.counter]
        counter[0] += 1
        if scope is None:
            self.counter = counter[0]
        return f"{stem}{counter[0]}"

    # -- expressions -------------------------------------------------------------------
    def int_vars(self, env):
        return sorted(k for k, v in env.items() if isinstance(v, int) and not isinstance(v, bool)
                      and k not in ("num_classes",) and v > 0)

    def bool_vars(self, env):
        return sorted(k for k, v in env.items() if isinstance(v, bool))

    def int_value(self, env, lo, hi, ok=lambda v: True, p_expr=0.35, prefer=None):
        """A literal in [lo, hi] passing `ok`, or an expression of the scope's names."""
        names = self.int_vars(env)
        if prefer in names and self.chance(0.6):
            names = [prefer]
        if names and self.chance(p_expr):
            n = self.pick(names)
            c = self.int(1, 3)
            forms = [
                (f"${n}", lambda e: e[n]),
                (f"${{{n} * {c + 1}}}", lambda e: e[n] * (c + 1)),
                (f"${{{n} + {c}}}", lambda e: e[n] + c),
                (f"${{max(1, {n} - {c})}}", lambda e: max(1, e[n] - c)),
                (f"${{{n} // {c + 1}}}", lambda e: e[n] // (c + 1)),
                (f"${{min({n}, {c + 3})}}", lambda e: min(e[n], c + 3)),
                (f"${{int({n} / 2) + 1}}", lambda e: int(e[n] / 2) + 1),
                (f"${{{n} * 2 if {n} < {c + 3} else {n}}}", lambda e: e[n] * 2 if e[n] < c + 3 else e[n]),
                (f"${{({n} + {c}) % 5 + 1}}", lambda e: (e[n] + c) % 5 + 1),
                (f"${{round({n} * 1.5)}}", lambda e: round(e[n] * 1.5)),
                (f"${{abs({n} - {c + 4})}}", lambda e: abs(e[n] - (c + 4))),
            ]
            if "i" in env:
                forms.append((f"${{{n} + i}}", lambda e: e[n] + e["i"]))
            text, fn = self.pick(forms)
            value = fn(env)
            if lo <= value <= hi and ok(value):
                return E(text, fn, quote=self.chance(0.5)), value
        value = self.int(lo, hi)
        tries = 0
        while not ok(value) and tries < 4:
            value = self.int(lo, hi)
            tries += 1
        if not ok(value):
            value = next(v for v in range(lo, hi + 1) if ok(v))
        return value, value

    def condition(self, env):
        """A `when:` condition and its value."""
        bools, ints = self.bool_vars(env), self.int_vars(env)
        forms = [(True, lambda e: True)]
        for b in bools:
            forms += [(E(f"${b}", lambda e, b=b: e[b]), None),
                      (E(f"${{not {b}}}", lambda e, b=b: not e[b]), None)]
        for n in ints:
            c = self.int(1, 6)
            forms += [(E(f"${{{n} > {c}}}", lambda e, n=n, c=c: e[n] > c), None),
                      (E(f"${{{n} >= {c} or {n} == 1}}", lambda e, n=n, c=c: e[n] >= c or e[n] == 1), None)]
        forms.append((False, lambda e: False))
        raw, fn = self.pick(forms)
        if isinstance(raw, E):
            raw.quote = self.chance(0.5)
            return raw, raw.fn(env)
        return raw, raw

    # -- trial interpretation -----------------------------------------------------------
    def trial(self, name, node, scope, cur):
        run = Run(self.blocks, self.input_shape)
        run.file_env = self.file_env
        try:
            return run.node(name, node, scope.clone(), cur)
        except Invalid:
            return None

    def commit(self, name, node, scope, cur):
        run = Run(self.blocks, self.input_shape)
        run.file_env = self.file_env
        return run.node(name, node, scope, cur)

    # -- bodies ------------------------------------------------------------------------
    def body(self, scope: Scope, cur, start_ref, n_items, depth, rank1_ok=False, style=None,
             name_items=False, template=None, start_cond=False):
        """A body of about n_items nodes; returns (Body, out shape, last ref, last conditional)."""
        style = style or self.weighted([(4, "map"), (1, "list")])
        items = []
        ref, conditional = start_ref, start_cond
        for index in range(n_items):
            if self.budget <= 0:
                break
            node = self.item(scope, cur, ref, conditional, depth, rank1_ok, template)
            if style == "map":
                key = name = self.fresh(_stem(node), scope)
            else:
                key = None
                if name_items:
                    name = self.fresh(_stem(node), scope)
                    node.name = name
                else:
                    name = str(index)
                    if name in scope.names or name in scope.children or name in scope.switched:
                        name = self.fresh(_stem(node), scope)
                        node.name = name
            if style == "list" and node.name is not None:
                node.shorthand = False  # a list value has no room for `name:`
            when_off = node.when is not None and not ev(node.when, scope.env)
            out = self.trial(name, node, scope, cur)
            if out is None:  # the model refuses: fall back to an activation
                fallback = Node("op", op="relu", flow=True)
                fallback.name = node.name
                node, when_off = fallback, False
            cur = self.commit(name, node, scope, cur)
            items.append((key, node))
            if not when_off:
                ref, conditional = name, node.when is not None
            self.budget -= 1
        if not items:
            node = Node("op", op="identity", flow=True)
            name = self.fresh("id", scope)
            if style == "list":
                node.name = name
            cur = self.commit(name, node, scope, cur)
            items.append((name if style == "map" else None, node))
            ref, conditional = name, False
        return Body(items, style), cur, ref, conditional

    def item(self, scope, cur, ref, conditional, depth, rank1_ok, template):
        if len(cur) == 1:
            return self.item1d(scope, cur, ref, conditional, depth)
        nested = depth < 3 and self.budget > 3
        options = [(6, "conv"), (3, "bn"), (3, "act"), (3, "pool"), (1, "adaptive"), (1, "dropout"),
                   (1, "identity")]
        if nested:
            options += [(3, "concat"), (3, "residual"), (1, "add"), (2, "seq"), (3, "block"), (2, "repeat")]
        options += [(1, "skip")]
        kind = self.weighted(options)
        env = scope.env
        node = None
        if kind == "conv":
            node = self.conv(env, cur, template)
        elif kind == "bn":
            node = self.bn(env)
        elif kind == "act":
            node = Node("op", op=self.pick(ACTIVATIONS), flow=self.chance(0.8))
        elif kind == "pool":
            node = self.pool(env, cur, template)
        elif kind == "adaptive":
            out = self.pick([1, 2, 3, [1, 2], [cur[1], cur[2]]])
            node = Node("op", op=self.pick(["adaptive_avgpool", "adaptive_maxpool"]), flow=True,
                        args={"out": out} if out != 1 or self.chance(0.5) else {})
        elif kind == "dropout":
            node = self.dropout(env)
        elif kind == "identity":
            node = Node("op", op="identity", flow=True)
        elif kind == "concat":
            node = self.concat(scope, cur, ref, depth, conditional)
        elif kind == "residual":
            node = self.residual(scope, cur, ref, conditional, depth)
        elif kind == "add":
            node = self.add_many(scope, cur, ref, depth, conditional)
        elif kind == "seq":
            node = self.seq(scope, cur, depth)
        elif kind == "block":
            node = self.block_call(scope, cur, depth)
        elif kind == "repeat":
            node = self.repeated(scope, cur, depth, template)
        elif kind == "skip":
            node = self.skip(scope, cur, ref, conditional)
        if node is None:
            node = Node("op", op=self.pick(ACTIVATIONS), flow=True)
        if node.when is None and not node.shorthand and self.chance(0.12):
            node.when = self.condition(env)[0]
        if node.src is None and not node.shorthand and not conditional and self.chance(0.08):
            node.src = ref  # `from:` naming the previous node: the default, written out
        if not node.shorthand and self.chance(0.05):
            node.doc = "fuzz: " + node.kind
        if not node.shorthand and node.kind != "concat" and self.chance(0.06):
            node.frozen = self.condition(env)[0] if self.chance(0.3) else True
        return node

    def item1d(self, scope, cur, ref, conditional, depth):
        env = scope.env
        options = [(5, "linear"), (2, "bn"), (3, "act"), (2, "dropout"), (1, "identity"), (1, "flatten")]
        if depth < 3 and self.budget > 3:
            options += [(2, "concat"), (2, "add")]
        kind = self.weighted(options)
        if kind == "linear":
            node = self.linear(env)
        elif kind == "bn":
            node = self.bn(env)
        elif kind == "act":
            node = Node("op", op=self.pick(ACTIVATIONS), flow=self.chance(0.8))
        elif kind == "dropout":
            node = self.dropout(env)
        elif kind == "identity":
            node = Node("op", op="identity", flow=True)
        elif kind == "flatten":
            node = Node("op", op="flatten", flow=True)
        elif kind == "concat":
            node = self.concat(scope, cur, ref, depth, conditional)
        else:
            node = self.add_many(scope, cur, ref, depth, conditional)
        if node.when is None and self.chance(0.1):
            node.when = self.condition(env)[0]
        return node

    # -- primitive ops -------------------------------------------------------------------
    def conv(self, env, shape, template=None):
        C, H, W = shape
        args = {}
        if self.chance(0.15):
            args["depthwise"] = True
            if self.chance(0.3):
                args["out"] = C * self.pick([1, 2])
            groups = C
        else:
            groups = 1
            if self.chance(0.25):
                groups = self.pick([d for d in range(1, C + 1) if C % d == 0])
            raw, _ = self.int_value(env, 1, max(MAX_CHANNELS, groups), ok=lambda v: v % groups == 0,
                                    prefer="out" if template else None,
                                    p_expr=0.7 if template and "out" in env else 0.35)
            args["out"] = raw
            if groups != 1 or self.chance(0.1):
                args["groups"] = groups
        use_k_arg = template and "k" in env and self.chance(0.5)
        if use_k_arg:
            args["k"] = E("$k", lambda e: e["k"], quote=self.chance(0.5))
            args["pad"] = E("${k // 2}", lambda e: e["k"] // 2, quote=self.chance(0.5))
        else:
            if self.chance(0.25):
                k = [self.int(1, 5), self.int(1, 5)]
            else:
                k = self.int(1, 5)
            args["k"] = k
            kh, kw = _pair(k)
            if self.chance(0.6):
                if self.chance(0.25):
                    args["pad"] = [self.int(0, kh // 2 + 1), self.int(0, kw // 2 + 1)]
                else:
                    args["pad"] = self.int(0, max(kh, kw) // 2 + 1)
            if self.chance(0.15):
                args["dilation"] = self.pick([2, [1, 2], [2, 1], 1])
        if template and "stride" in env and self.chance(0.4):
            args["stride"] = E("$stride", lambda e: e["stride"], quote=self.chance(0.5))
        elif self.chance(0.3):
            args["stride"] = self.pick([2, 1, 3, [1, 2], [2, 1]])
        if self.chance(0.3):
            args["bias"] = self.chance(0.5)
        args = _ordered(args, ["out", "k", "stride", "pad", "dilation", "groups", "depthwise", "bias"])
        node = Node("op", op="conv", args=args, flow=self.chance(0.7))
        try:
            op_rule("conv", {k: ev(v, env) for k, v in args.items()}, [shape])
        except Invalid:  # too big a window for this input: a 1x1 conv always fits
            for key in ("pad", "dilation"):
                args.pop(key, None)
            args["k"] = 1
        return node

    def bn(self, env):
        args = {}
        if self.chance(0.3):
            args["eps"] = self.pick([0.001, 0.0001, 0.00001])
        if self.chance(0.2):
            args["momentum"] = self.pick([0.1, 0.01, 0.3])
        if self.chance(0.15):
            args["affine"] = self.chance(0.5)
        return Node("op", op="bn", args=args, flow=self.chance(0.8))

    def dropout(self, env):
        args = {}
        if "drop" in env and self.chance(0.4):
            args["p"] = E("$drop", lambda e: e["drop"])
        elif self.chance(0.7):
            args["p"] = self.pick([0.5, 0.0, 0.2, 0.25, 1.0])
        return Node("op", op="dropout", args=args, flow=True)

    def linear(self, env):
        if "num_classes" in env and self.chance(0.3):
            raw = E("$num_classes", lambda e: e["num_classes"], quote=self.chance(0.5))
        else:
            raw, _ = self.int_value(env, 1, MAX_FEATURES)
        args = {"out": raw}
        if self.chance(0.25):
            args["bias"] = self.chance(0.5)
        return Node("op", op="linear", args=args, flow=self.chance(0.8))

    def pool(self, env, shape, template=None):
        op = self.pick(["maxpool", "avgpool"])
        k = [self.int(1, 4), self.int(1, 4)] if self.chance(0.2) else self.int(1, 4)
        args = {"k": k}
        kh, kw = _pair(k)
        if template and "stride" in env and self.chance(0.4):
            args["stride"] = E("$stride", lambda e: e["stride"], quote=self.chance(0.5))
        elif self.chance(0.6):
            args["stride"] = self.pick([1, 2, 3, [1, 2]])
        if self.chance(0.4):
            args["pad"] = self.int(0, min(kh, kw) // 2) if self.chance(0.8) else [kh // 2, kw // 2]
        if self.chance(0.35):
            args["ceil_mode"] = self.chance(0.7)
        if op == "avgpool" and self.chance(0.3):
            args["count_include_pad"] = self.chance(0.5)
        node = Node("op", op=op, args=args, flow=self.chance(0.8))
        try:
            op_rule(op, {k2: ev(v, env) for k2, v in args.items()}, [shape])
        except Invalid:
            args.clear()
            args["k"] = 1
        return node

    def fix_spatial(self, h, w):
        out = h if h == w and self.chance(0.5) else [h, w]
        return Node("op", op=self.pick(["adaptive_avgpool", "adaptive_maxpool"]), args={"out": out}, flow=True)

    # -- joins ---------------------------------------------------------------------------
    # Branch nodes are siblings of the join, so each branch is generated in a copy of the
    # join's scope (it sees the names before the join, not those of discarded attempts).
    def _branch(self, scope, cur, start_ref, depth, n_max=3, start_cond=False):
        bscope = scope.clone()
        style = "list" if self.chance(0.25) else "map"
        body, end, last, last_cond = self.body(bscope, cur, start_ref, self.int(1, n_max), depth + 1,
                                               style=style, name_items=True, start_cond=start_cond)
        return bscope, body, end, last, last_cond

    def _append(self, body: Body, scope, cur, node):
        name = self.fresh(_stem(node), scope)
        if body.style == "list":
            node.name = name
        cur = self.commit(name, node, scope, cur)
        body.items.append((name if body.style == "map" else None, node))
        return cur, name

    def concat(self, scope, cur, ref, depth, conditional=False):
        branches, ends = [], []
        n = self.int(2, 3)
        if len(cur) == 1:
            dim, flatten_all = 1, False
        else:
            flatten_all = self.chance(0.15)
            dim = 1 if flatten_all else self.weighted([(8, 1), (1, 2), (1, 3)])
        target = None
        for _ in range(n):
            if self.chance(0.15):  # the identity branch (DenseNet's)
                bscope, body, end = scope.clone(), None, cur
            else:
                bscope, body, end, _, _ = self._branch(scope, cur, ref, depth, start_cond=conditional)
                if len(cur) == 3 and len(end) == 1 and not flatten_all:
                    bscope, body, end = scope.clone(), None, cur  # cannot join (C, H, W) ones
            if flatten_all:
                if body is None:
                    body = Body([], "map")
                if len(end) == 3:
                    end = self._append(body, bscope, end, Node("op", op="flatten", flow=True))[0]
                if self.chance(0.5):  # an activation right after the flatten
                    end = self._append(body, bscope, end, Node("op", op=self.pick(ACTIVATIONS), flow=True))[0]
            elif target is not None and len(target) == 3:
                fixes = []
                if dim == 1 and end[1:] != target[1:]:
                    fixes.append(self.fix_spatial(target[1], target[2]))
                elif dim == 2:
                    if end[2] != target[2]:
                        fixes.append(self.fix_spatial(end[1], target[2]))
                    if end[0] != target[0]:
                        fixes.append(Node("op", op="conv", flow=True, args={"out": target[0], "k": 1}))
                elif dim == 3:
                    if end[1] != target[1]:
                        fixes.append(self.fix_spatial(target[1], end[2]))
                    if end[0] != target[0]:
                        fixes.append(Node("op", op="conv", flow=True, args={"out": target[0], "k": 1}))
                if fixes and body is None:
                    body = Body([], "map")
                for fix in fixes:
                    end = self._append(body, bscope, end, fix)[0]
            branches.append(body)
            ends.append(end)
            if target is None:
                target = end
        node = Node("concat", branches=branches, empty=self.pick(["{}", "~"]), flow=False)
        if dim != 1 or self.chance(0.15):
            node.dim = dim
        return node

    def residual(self, scope, cur, ref, conditional, depth):
        """add: [body, {} or project]; the README's residual block."""
        bscope, body, end, last, last_cond = self._branch(scope, cur, ref, depth, n_max=4,
                                                          start_cond=conditional)
        C, H, W = cur
        if len(end) != 3:
            return None
        projectable = (H % end[1] == 0 and W % end[2] == 0 and H // end[1] == W // end[2])
        if not projectable:
            s = self.pick([d for d in (1, 2, 3, 4) if H % d == 0 and W % d == 0])
            end, last = self._append(body, bscope, end, self.fix_spatial(H // s, W // s))
            last_cond = False
        if end == cur and self.chance(0.7):
            shortcut = None
        elif conditional or last_cond:
            # the `from:` of a projection must not name a switched-off node: fit the body instead
            if end[1:] != cur[1:]:
                end, last = self._append(body, bscope, end, self.fix_spatial(H, W))
            if end[0] != C:
                end, last = self._append(body, bscope, end, Node("op", op="conv", args={"out": C, "k": 1},
                                                                 flow=True))
            shortcut = None
        else:
            args = {}
            if self.chance(0.2):
                args["eps"] = 0.001
            if self.chance(0.2):
                args["bias"] = self.chance(0.5)
            proj = Node("op", op="project", args=args, src=[ref, last], flow=self.chance(0.7))
            shortcut = Body([(self.fresh("downsample", scope), proj)], "map", late=True)
        branches = [body, shortcut]
        if self.chance(0.3):
            branches.reverse()
        return Node("add", branches=branches, empty=self.pick(["{}", "~"]))

    def add_many(self, scope, cur, ref, depth, conditional=False):
        """add: [b1, b2, ...] whose ends are fitted to the first branch's shape."""
        n = self.int(2, 3)
        branches, target = [], None
        for _ in range(n):
            bscope, body, end, _, _ = self._branch(scope, cur, ref, depth, n_max=2, start_cond=conditional)
            if len(end) != len(cur):
                return None
            if target is None:
                target = end
            elif len(end) == 3:
                if end[1:] != target[1:]:
                    end = self._append(body, bscope, end, self.fix_spatial(target[1], target[2]))[0]
                if end[0] != target[0]:
                    end = self._append(body, bscope, end, Node("op", op="conv", flow=True,
                                                               args={"out": target[0], "k": 1}))[0]
            elif end != target:
                end = self._append(body, bscope, end, Node("op", op="linear", flow=True,
                                                           args={"out": target[0]}))[0]
            branches.append(body)
        if target == cur and self.chance(0.3):
            branches.insert(self.int(0, len(branches)), None)
        return Node("add", branches=branches, empty=self.pick(["{}", "~"]))

    def skip(self, scope, cur, ref, conditional):
        """A primitive `op: add` or `op: concat` with `from:` naming earlier nodes."""
        if ref is None or conditional:
            return None
        known = dict(visible(scope))
        if len(scope.input) == 3 and ref != "in":
            known["in"] = scope.input
        candidates = sorted(n for n, s in known.items() if n != ref and len(s) == 3 and s[1:] == cur[1:])
        if not candidates:
            return None
        other = self.pick(candidates)
        other_shape = known[other]
        srcs = [ref, other] if self.chance(0.5) else [other, ref]
        if other_shape == cur and self.chance(0.5):
            return Node("op", op="add", src=srcs, flow=True)
        return Node("op", op="concat", src=srcs, flow=True)

    # -- namespaces: seq, blocks, repeat ------------------------------------------------
    def seq(self, scope, cur, depth):
        child = Scope("?", scope.env, cur, "in")
        body, _, _, _ = self.body(child, cur, "in", self.int(1, 3), depth + 1)
        node = Node("seq", body=body)
        if body.style == "list" and self.chance(0.5) and all(n.name is None for _, n in body.items):
            node.shorthand = True
        return node

    def new_block(self, scope, cur, depth):
        name = self.fresh("blk")
        decl, values = {"out": None}, {}
        raw_out, values["out"] = self.int_value(scope.env, 1, 16)
        call_args = {"out": raw_out}
        if self.chance(0.5):
            decl["stride"] = 1
            values["stride"] = self.pick([1, 2])
            if values["stride"] != 1 or self.chance(0.3):
                call_args["stride"] = values["stride"]
        if self.chance(0.4):
            decl["k"] = self.pick([3, 1, 5])
            values["k"] = self.pick([1, 3, 5])
            if values["k"] != decl["k"] or self.chance(0.3):
                call_args["k"] = values["k"]
        if self.chance(0.4):
            decl["act"] = True
            values["act"] = self.chance(0.7)
            if not values["act"] or self.chance(0.3):
                call_args["act"] = values["act"]
        for key, default in decl.items():
            if key not in values:
                values[key] = default
        env = {**self.file_env, **values}
        child = Scope("?", env, cur, "in")
        body, _, _, _ = self.body(child, cur, "in", self.int(1, 4), depth + 1, template=True)
        self.blocks[name] = BlockDef(decl, body)
        return Node("block", block=name, args=call_args, flow=self.chance(0.6))

    def reuse_block_args(self, name, scope):
        definition = self.blocks[name]
        args = {}
        for key, default in definition.args.items():
            if default is None or self.chance(0.5):
                if key == "out":
                    args[key] = self.int_value(scope.env, 1, 16)[0]
                elif key == "stride":
                    args[key] = self.pick([1, 2])
                elif key == "k":
                    args[key] = self.pick([1, 3, 5])
                else:
                    args[key] = self.condition(scope.env)[0] if self.chance(0.3) else self.chance(0.5)
        return args

    def block_call(self, scope, cur, depth):
        usable = sorted(self.blocks)
        if usable and self.chance(0.5):
            name = self.pick(usable)
            node = Node("block", block=name, args=self.reuse_block_args(name, scope), flow=self.chance(0.6))
            if self.trial("probe", node, scope, cur) is None:
                return None
        else:
            node = self.new_block(scope, cur, depth)
        if self.want_unit and "unit" not in self.file_env and isinstance(node.block, str):
            self.file_env["unit"] = node.block  # a file argument naming a block: `block: $unit`
        unit = [k for k, v in self.file_env.items() if v == node.block]
        if unit and self.chance(0.5):
            node.block = E(f"${unit[0]}", lambda e, u=unit[0]: e[u], quote=self.chance(0.5))
        return node

    def repeated(self, scope, cur, depth, template):
        env = scope.env
        choice = self.weighted([(3, "op"), (3, "block"), (1, "seq")])
        if choice == "op":
            node = self.conv(env, cur, template) if self.chance(0.6) else self.bn(env)
        elif choice == "block":
            node = self.block_call(scope, cur, depth)
            if node is None:
                return None
            if "out" in node.args and self.chance(0.3):  # widths that grow with the copy index
                c = self.int(0, 2)
                node.args["out"] = E(f"${{{ev(node.args['out'], env)} + i * {c}}}",
                                     lambda e, v=ev(node.args["out"], env), c=c: v + e["i"] * c)
        else:
            node = self.seq(scope, cur, depth)
            node.shorthand = False
        counts = [(self.int(0, 3), None)]
        if "depth" in env:
            counts.append((E("$depth", lambda e: e["depth"], quote=self.chance(0.5)), None))
        if "layers" in env:
            j = self.int(0, len(env["layers"]) - 1)
            counts.append((E(f"${{layers[{j}]}}", lambda e, j=j: e["layers"][j]), None))
        raw = self.pick([c for c, _ in counts])
        count = ev(raw, env)
        node.repeat = raw
        node.flow = node.flow and self.chance(0.5)
        if count > 0 and node.kind in ("op", "block") and self.chance(0.5):
            overrides = {}
            keys = [0, -1, count - 1] if count > 1 else [0, -1]
            key = self.pick(keys)
            if node.kind == "op" and node.op == "conv":
                overrides[key] = {"stride": 2} if self.chance(0.5) else {"out": self.int(1, 12)}
            elif node.kind == "op":
                overrides[key] = {"eps": 0.001}
            else:
                decl = self.blocks[ev(node.block, self.file_env)].args
                if "stride" in decl:
                    overrides[key] = {"stride": 2}
                else:
                    overrides[key] = {"out": self.int_value({**env, "i": 0}, 1, 12)[0]}
            node.at = overrides
        if self.chance(0.1) and count > 0:
            stem = self.fresh("u", scope) + "_"
            node.names = E(f"{stem}${{i}}", lambda e, s=stem: f"{s}{e['i']}", quote=self.chance(0.5))
        if self.trial("probe", node, scope, cur) is None:
            node.at = None
            if self.trial("probe", node, scope, cur) is None:
                node.repeat, node.names = None, None
        return node


def visible(scope: Scope, depth: int = 2, prefix: str = ""):
    """(reference, shape) of the names `from:` can reach from a scope, dotted ones too."""
    for name, shape in scope.names.items():
        yield prefix + name, shape
    if depth > 1:
        for name, child in scope.children.items():
            yield from visible(child, depth - 1, f"{prefix}{name}.")


def _ordered(args: dict, order: list) -> dict:
    return {k: args[k] for k in order if k in args}


def _concat_ok(shapes, dim):
    try:
        concat_rule(shapes, dim)
        return True
    except Invalid:
        return False


def _stem(node: Node) -> str:
    if node.kind == "op":
        return {"conv": "conv", "bn": "bn", "linear": "fc", "project": "downsample"}.get(node.op, node.op[:4])
    return {"block": "b", "seq": "s", "concat": "cat", "add": "res"}[node.kind]


def _spec_text(g: Gen, file_args: dict, input_raw, graph: Body, outputs, expect, archspec_key: bool):
    doc = {}
    if archspec_key:
        doc["archspec"] = 1
    doc["name"] = "fuzz"
    if file_args:
        doc["args"] = file_args
    doc["input"] = input_raw
    if g.blocks:
        doc["blocks"] = {name: {"args": FlowMap(b.args), "body": _body_yaml(b.body)} for name, b in g.blocks.items()}
    doc["graph"] = _body_yaml(graph)
    if outputs:
        doc["outputs"] = outputs
    if expect:
        doc["expect"] = expect
    return to_yaml(doc)


@st.composite
def valid_specs(draw, max_nodes: int = 30):
    """Random spec texts that archspec must compile, with the figures it must infer."""
    g = Gen(draw, max_nodes)
    C, H = g.int(1, 8), g.int(4, 24)
    W = H if g.chance(0.6) else g.int(4, 24)
    raw_args, values = {}, {}
    if g.chance(0.7):
        raw_args["width"] = values["width"] = g.int(2, 8)
    if g.chance(0.5):
        raw_args["wide"] = E("${width * 2}", lambda e: e["width"] * 2) if "width" in values else 6
        values["wide"] = ev(raw_args["wide"], values)
    raw_args["num_classes"] = values["num_classes"] = g.int(2, 10)
    if g.chance(0.5):
        raw_args["use_bn"] = values["use_bn"] = g.chance(0.5)
    if g.chance(0.4):
        raw_args["depth"] = values["depth"] = g.int(0, 3)
    if g.chance(0.3):
        raw_args["layers"] = values["layers"] = [g.int(0, 3) for _ in range(g.int(1, 3))]
    if g.chance(0.3):
        raw_args["drop"] = values["drop"] = g.pick([0.25, 0.5, 0.0])
    input_raw = [C, H, W]
    if g.chance(0.2):
        raw_args["cin"] = values["cin"] = C
        input_raw = [E("$cin", lambda e: e["cin"], quote=g.chance(0.5)), H, W]
    aux_head = g.chance(0.25)
    if aux_head:
        raw_args["aux"] = values["aux"] = g.chance(0.6)
    overrides = {}
    if "width" in values and g.chance(0.2):
        overrides["width"] = values["width"] = g.int(1, 8)
        if "wide" in values:
            values["wide"] = ev(raw_args["wide"], values)
    if "num_classes" in values and g.chance(0.1):
        overrides["num_classes"] = values["num_classes"] = g.int(1, 6)
    g.file_env = values
    g.want_unit = g.chance(0.2)

    shape = (C, H, W)
    g.input_shape = shape
    root = Scope("", values, shape, "in")
    style = g.weighted([(4, "map"), (1, "list")])
    graph, cur, ref, conditional = g.body(root, shape, INPUT if g.chance(0.5) else "in",
                                          g.int(1, 6), 0, style=style)
    if "unit" in values:
        raw_args["unit"] = values["unit"]

    def append(node):
        nonlocal cur, ref, conditional
        name = g.fresh(_stem(node), root)
        if graph.style == "list":
            node.name = name
        cur = g.commit(name, node, root, cur)
        graph.items.append((name if graph.style == "map" else None, node))
        ref, conditional = name, False
        return name

    # A classifier head, and then perhaps a few 1-D layers.
    if len(cur) == 3 and g.chance(0.7):
        if g.chance(0.7):
            append(Node("op", op="adaptive_avgpool", args={"out": g.pick([1, 2])}, flow=True))
        append(Node("op", op="flatten", flow=True))
    if len(cur) == 1 and g.chance(0.7):
        g.budget = max(g.budget, 3)
        extra, cur2, ref2, cond2 = g.body(root, cur, ref, g.int(1, 3), 1, style=graph.style,
                                          name_items=graph.style == "list")
        graph.items.extend(extra.items)
        cur, ref, conditional = cur2, ref2, cond2
    if conditional:
        append(Node("op", op="identity", flow=True))
    main_ref = ref

    outputs = None
    if aux_head or g.chance(0.1):
        tops = [n for n, s in root.names.items() if n != main_ref]
        conditional_names = {k if k is not None else n.name for k, n in graph.items if n.when is not None}
        tops = sorted(n for n in tops if n not in conditional_names)
        outputs = {"logits": main_ref}
        if tops and aux_head:
            tap = g.pick(tops)
            tap_shape = root.names[tap]
            items = []
            if len(tap_shape) == 3:
                items += [Node("op", op="adaptive_avgpool", args={"out": g.pick([1, 2])}, flow=True),
                          Node("op", op="flatten", flow=True)]
            items.append(Node("op", op="linear", args={"out": E("$num_classes", lambda e: e["num_classes"])},
                              flow=True))
            body = Body([(f"{_stem(n)}{k + 1}", n) for k, n in enumerate(items)], "map")
            aux_node = Node("seq", body=body, src=tap, when=E("$aux", lambda e: e["aux"], quote=g.chance(0.5)))
            aux_name = g.fresh("aux", root)
            if graph.style == "list":
                aux_node.name = aux_name
            g.commit(aux_name, aux_node, root, cur)
            graph.items.append((aux_name if graph.style == "map" else None, aux_node))
            outputs["aux"] = FlowMap({"from": aux_name, "when": E("$aux", lambda e: e["aux"]),
                                      "train_only": True})
        elif tops:
            dotted = sorted(r for r, _ in visible(root) if "." in r)
            outputs["feat"] = g.pick(dotted) if dotted and g.chance(0.4) else g.pick(tops)
        elif len(outputs) == 1 and g.chance(0.5):
            outputs = None

    # What archspec must make of it: a fresh interpretation of the finished model.
    run = Run(g.blocks, shape)
    run.file_env = values
    top = Scope("", values, shape, "in")
    last = run.body(graph, top, shape)
    active = []
    if outputs is None:
        active.append(("output", last, False))
    else:
        for oname, raw in outputs.items():
            spec = raw if isinstance(raw, dict) else {"from": raw}
            if "when" in spec and not ev(spec["when"], values):
                continue
            active.append((oname, run.lookup(top, spec["from"]), bool(spec.get("train_only", False))))
    expect = None
    if g.chance(0.2):
        expect = {"params": sum(run.params.values()), "output": list(active[0][1])}
        if g.chance(0.5):
            expect["params"] = E(f"${{{expect['params'] - values['num_classes']} + num_classes}}",
                                 lambda e: 0)
        top_nodes = sorted(k for k, n in graph.items if k is not None and k in run.shapes)
        if top_nodes:
            name = g.pick(top_nodes)
            expect["shapes"] = FlowMap({name: list(run.shapes[name])})
    text = _spec_text(g, raw_args, input_raw, graph, outputs, expect, g.chance(0.7))
    return Generated(text, overrides, shape, dict(run.shapes), dict(run.params), dict(run.ops),
                     dict(run.frozen), active)


# ---------------------------------------------------------------------------------
# The property on valid specs.
# ---------------------------------------------------------------------------------


class PropertyFailure(AssertionError):
    pass


def _fail(message: str, text: str, overrides=None):
    extra = f"\n--- overrides: {overrides}" if overrides else ""
    raise PropertyFailure(f"{message}\n--- spec ---\n{text}{extra}")


def check_valid(example: Generated, stats: Counter | None = None) -> None:
    """Compile, infer, build and run a generated spec; raise PropertyFailure on a mismatch."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only cost time
    try:
        _check_valid(example, stats)
    finally:
        torch.set_num_threads(threads)


def _check_valid(example: Generated, stats: Counter | None = None) -> None:
    import torch
    import torch.fx as fx

    import archspec
    from archspec.api import build as build_network
    from archspec.builder import _trace
    from archspec.diagnostics import SpecError
    from archspec.graph import INPUT as A_INPUT

    stats = stats if stats is not None else Counter()
    text = example.text

    def fail(msg):
        _fail(msg, text, example.overrides)

    try:
        spec = archspec.loads(text, name="fuzz.yaml", **example.overrides)
        spec, inferred = archspec.compile_spec(spec)
    except SpecError as exc:
        for d in exc.diagnostics:
            stats[f"rejected {d.code}"] += 1
        fail(f"a valid spec was rejected:\n{exc}")
    except Exception:
        stats["crashed"] += 1
        fail(f"compiling raised:\n{traceback.format_exc()}")
    stats["compiled"] += 1
    graph = inferred.graph

    # 1. Static inference against the model.
    if graph.warnings:
        fail("unexpected warnings: " + "; ".join(w.message for w in graph.warnings))
    if set(graph.nodes) != set(example.shapes):
        fail(f"node names differ: archspec only {sorted(set(graph.nodes) - set(example.shapes))}, "
             f"model only {sorted(set(example.shapes) - set(graph.nodes))}")
    for name, node in graph.nodes.items():
        facts = inferred.facts[name]
        if node.op != example.ops[name]:
            fail(f"`{name}`: op {node.op}, the model says {example.ops[name]}")
        if facts.shape != example.shapes[name]:
            fail(f"`{name}`: inferred shape {list(facts.shape)}, the model says {list(example.shapes[name])}")
        if facts.params != example.params[name]:
            fail(f"`{name}`: inferred {facts.params} params, the model says {example.params[name]}")
    got_outputs = [(o.name, inferred.shape(o.node), o.train_only) for o in graph.outputs]
    if got_outputs != example.outputs:
        fail(f"outputs {got_outputs}, the model says {example.outputs}")

    # 2. The built module.
    try:
        net = build_network(spec)
    except Exception:
        stats["crashed"] += 1
        fail(f"building raised:\n{traceback.format_exc()}")
    real_total = sum(p.numel() for p in net.parameters())
    if real_total != inferred.total_params:
        fail(f"built module holds {real_total} params, inferred {inferred.total_params}")
    holders = {n for n, f in inferred.facts.items() if f.params}
    for name in holders:
        try:
            module = net.get_submodule(name)
        except AttributeError:
            fail(f"no module at `{name}`, which holds {inferred.facts[name].params} params")
        real = sum(p.numel() for p in module.parameters())
        if real != inferred.facts[name].params:
            fail(f"module `{name}` holds {real} params, inferred {inferred.facts[name].params}")
        trains = {p.requires_grad for p in module.parameters()}
        if trains != {not example.frozen[name]}:
            fail(f"module `{name}`: requires_grad {sorted(trains)}, but `frozen:` says "
                 f"{'frozen' if example.frozen[name] else 'trainable'}")
    for pname, _ in net.named_parameters():
        owner = pname.rsplit(".", 1)[0]
        if owner not in holders and owner.rsplit(".", 1)[0] not in holders:
            fail(f"parameter `{pname}` belongs to no node that holds parameters")

    # 3. Real forwards, train and eval, batch 2, on CPU.
    modules = dict(net.named_modules())
    x = torch.randn(2, *inferred.graph.input_shape)
    for training in (True, False):
        net.train(training)
        fx_graph = _trace(inferred, {k: modules[k] for k in modules if k and k in graph.nodes}, training)
        seen = {}

        class Recorder(fx.Interpreter):
            def run_node(self, n):
                result = super().run_node(n)
                if "archspec_node" in n.meta and isinstance(result, torch.Tensor):
                    seen[n.meta["archspec_node"]] = tuple(result.shape)
                return result

        gm = fx.GraphModule(net, fx_graph)
        mode = "train" if training else "eval"
        try:
            with torch.no_grad():
                torch.manual_seed(1)
                Recorder(gm).run(x.clone())
        except Exception:
            stats["crashed"] += 1
            fail(f"{mode} forward raised:\n{traceback.format_exc()}")
        real: dict = {A_INPUT: tuple(x.shape)}
        for name in graph.needed_for(training):
            node = graph.nodes[name]
            real[name] = seen.get(name, real.get(node.inputs[0]))
            want = (2, *inferred.facts[name].shape)
            if real[name] != want:
                fail(f"{mode}: `{name}` ({node.op}) is {list(real[name] or [])} in PyTorch, "
                     f"inferred {list(want)}")
        stats[f"nodes checked ({mode})"] += len(graph.needed_for(training))

        # The generated forward (in-place where archspec decided so) against the same graph
        # with every in-place flag off.
        reference_graph = _trace(inferred, {k: modules[k] for k in modules if k and k in graph.nodes}, training)
        for n in reference_graph.nodes:
            if n.op == "call_function" and n.kwargs.get("inplace"):
                n.kwargs = {**n.kwargs, "inplace": False}
        reference = fx.GraphModule(net, reference_graph)
        with torch.no_grad():
            torch.manual_seed(2)
            want_out = reference(x.clone())
            torch.manual_seed(2)
            got_out = net(x.clone())
        want_t = want_out if isinstance(want_out, tuple) else (want_out,)
        got_t = got_out if isinstance(got_out, tuple) else (got_out,)
        active = [o for o in example.outputs if training or not o[2]]
        if len(got_t) != len(active) or net.output_names() != tuple(o[0] for o in active):
            fail(f"{mode}: the module returns {len(got_t)} outputs {net.output_names()}, "
                 f"expected {[o[0] for o in active]}")
        for (oname, oshape, _), got, want in zip(active, got_t, want_t):
            if tuple(got.shape) != (2, *oshape):
                fail(f"{mode}: output `{oname}` is {list(got.shape)}, inferred {[2, *oshape]}")
            if not torch.allclose(got, want, atol=1e-5, rtol=1e-5, equal_nan=True):
                diff = (got - want).abs().max().item()
                fail(f"{mode}: output `{oname}` of the generated forward differs from the same graph "
                     f"run without in-place ops (max abs diff {diff:.3g})")
        if training:  # gradients through the generated forward and the reference agree
            weights = [torch.randn(o.shape, generator=torch.Generator().manual_seed(4)) for o in got_t]
            grads = []
            for forward in (net, reference):
                net.zero_grad(set_to_none=True)
                torch.manual_seed(3)
                outs = forward(x.clone())
                outs = outs if isinstance(outs, tuple) else (outs,)
                loss = sum((o * w).sum() for o, w in zip(outs, weights))
                if loss.requires_grad:
                    try:
                        loss.backward()
                    except RuntimeError:
                        which = "the generated forward" if forward is net else "the reference forward"
                        fail(f"train: backward through {which} raised:\n{traceback.format_exc()}")
                grads.append({n: p.grad for n, p in net.named_parameters()})
            for pname, g1 in grads[0].items():
                g2 = grads[1][pname]
                if (g1 is None) != (g2 is None) or (g1 is not None and not torch.allclose(g1, g2, atol=1e-4,
                                                                                       rtol=1e-4)):
                    fail(f"train: the gradient of `{pname}` differs between the generated forward "
                         "and the same graph run without in-place ops")
    stats["built and run"] += 1


# ---------------------------------------------------------------------------------
# Mutations of shipped specs.
# ---------------------------------------------------------------------------------

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
    n = len(lines)
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


_HEADER = re.compile(r"^(?:(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)|archspec): "
                     r"(?P<sev>error|warning)\[(?P<code>[EW]\d{4})\]: ")
_CONTINUATION = re.compile(r"^(?: *\d* \|.*|  = (?:note|hint): .*)$")
_CHECK_CODES = {"E0701", "E0702", "E0703"}


class MutationBench:
    """A scratch copy of the shipped specs (so `extends:` resolves) to validate mutants in."""

    def __init__(self, directory: Path = SPECS_DIR):
        self.source = Path(directory)
        self.dir = Path(tempfile.mkdtemp(prefix="archspec-fuzz-"))
        for p in self.source.glob("*.yaml"):
            shutil.copy(p, self.dir / p.name)
        self.children = {}  # parent file -> specs extending it
        for p in sorted(self.source.glob("*.yaml")):
            m = re.search(r"^extends:\s*(\S+)", p.read_text(encoding="utf-8"), re.M)
            if m:
                self.children.setdefault(m.group(1), []).append(p.name)

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def validate(self, path: Path):
        from archspec.cli import main as cli_main

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli_main(["validate", str(path)])
        return rc, out.getvalue(), err.getvalue()

    def check(self, mutant: Mutant, stats: Counter | None = None) -> None:
        stats = stats if stats is not None else Counter()
        target = self.dir / mutant.name
        try:
            target.write_text(mutant.text, encoding="utf-8", errors="surrogatepass")
            checked = [mutant.name]
            if mutant.name in self.children:  # a broken parent: its children report it too
                checked.append(self.children[mutant.name][0])
            for name in checked:
                self._check_one(mutant, self.dir / name, stats)
        finally:
            shutil.copy(self.source / mutant.name, target)

    def _check_one(self, mutant: Mutant, path: Path, stats: Counter) -> None:
        def fail(msg):
            _fail(f"{msg}\nmutations of {mutant.name}: {mutant.steps}"
                  + (f" (validating {path.name})" if path.name != mutant.name else ""), mutant.text)

        try:
            rc, out, err = self.validate(path)
        except BaseException:  # noqa: BLE001 - anything escaping main() is the failure
            stats["crashed"] += 1
            fail(f"`archspec validate` raised:\n{traceback.format_exc()}")
        stats[f"exit {rc}"] += 1
        if rc not in (0, 1, 2):
            stats["crashed"] += 1
            fail(f"`archspec validate` exited {rc}:\n{err}")
        if rc == 0:
            if "ok (" not in out:
                fail(f"exit 0 without an ok line: {out!r}")
            return
        lines = err.rstrip("\n").split("\n")
        codes = []
        if not lines or not _HEADER.match(lines[0]):
            fail(f"stderr does not start with `file:line:col: error[CODE]:`:\n{err}")
        for line in lines:
            m = _HEADER.match(line)
            if m:
                if m.group("sev") == "error":
                    codes.append(m.group("code"))
                if m.group("file"):
                    self._check_position(m, line, fail)
            elif not _CONTINUATION.match(line):
                fail(f"stray stderr line {line!r}:\n{err}")
        if not codes:
            fail(f"exit {rc} without an error diagnostic:\n{err}")
        for code in codes:
            stats[f"rejected {code}"] += 1
        if rc == 1 and set(codes) - _CHECK_CODES:
            fail(f"exit 1 (a figure failed) with errors {codes}:\n{err}")
        if rc == 2 and not set(codes) - _CHECK_CODES:
            fail(f"exit 2 with only figure errors {codes}:\n{err}")

    def _check_position(self, m, line, fail):
        file = Path(m.group("file"))
        if not file.is_absolute():
            file = Path.cwd() / file
        if not file.is_file():
            fail(f"diagnostic names a missing file: {line}")
        text = file.read_text(encoding="utf-8", errors="replace")
        lines = text.split("\n")
        line_no, col = int(m.group("line")), int(m.group("col"))
        # PyYAML puts the end of a file without a final newline on the line after it.
        at_end = line_no == len(lines) + 1 and col == 1
        if not (1 <= line_no <= len(lines) or at_end) or col < 1:
            n_lines = len(lines)
            fail(f"diagnostic position outside the file ({n_lines} lines): {line}")


# ---------------------------------------------------------------------------------
# Command line: python -m archspec.fuzz --examples N [--seed S] [--mode valid|mutate|both]
# ---------------------------------------------------------------------------------


def _run_property(title, strategy, check, examples, seed, out):
    stats = Counter()
    state = {"failed": None}

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @hypothesis.given(strategy)
    def prop(example):
        counting = state["failed"] is None  # shrinking re-runs examples: count until then
        local = Counter({"examples": 1})
        try:
            check(example, local)
        except Exception as exc:
            if counting:
                state["failed"] = str(exc)
                local["failures"] += 1
                stats.update(local)
            raise
        if counting:
            stats.update(local)

    if seed is not None:
        prop = hypothesis.seed(seed)(prop)
    failure = None
    try:
        prop()
    except Exception as exc:  # noqa: BLE001 - Hypothesis re-raises the minimal failure
        failure = str(exc) or repr(exc)
    print(f"== {title}: {stats['examples']} examples", file=out)
    for key in sorted(stats):
        if key != "examples":
            print(f"   {key}: {stats[key]}", file=out)
    if failure:
        print(f"   FAILED. First failure found:\n{state['failed']}\n   Minimal failing example:\n{failure}",
              file=out)
    return failure is None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m archspec.fuzz",
                                description="Property-based fuzzing of archspec (needs Hypothesis).")
    p.add_argument("--examples", type=int, default=100, help="examples per property (100)")
    p.add_argument("--seed", type=int, help="random seed, for a reproducible run")
    p.add_argument("--mode", choices=["valid", "mutate", "both"], default="both")
    p.add_argument("--specs", type=Path, default=SPECS_DIR, help="directory of specs to mutate")
    args = p.parse_args(argv)
    ok = True
    out = sys.stdout
    if args.mode in ("valid", "both"):
        ok &= _run_property("valid specs compile, infer and run as the model says", valid_specs(),
                            check_valid, args.examples, args.seed, out)
    if args.mode in ("mutate", "both"):
        if not shipped_specs(args.specs):
            print(f"no specs to mutate in {args.specs}", file=sys.stderr)
            return 2
        bench = MutationBench(args.specs)
        try:
            ok &= _run_property("mutated shipped specs end in archspec's own errors",
                                mutated_specs(directory=args.specs), bench.check, args.examples,
                                args.seed, out)
        finally:
            bench.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
