"""An independent model of the spec language, written from the README (not from
archspec's code): a small tree mirroring the language, its namespaces, and an
interpreter (`Run`) that gives every qualified node its shape and parameter count by the
rules in `rules`. The generator uses it to stay valid; the property compares archspec's
inference with it."""
from __future__ import annotations

from dataclasses import dataclass, field

from .rules import Invalid, op_rule


class E:
    """An expression: the text written in the spec and the value the model gives it."""

    __slots__ = ("text", "fn", "quote")

    def __init__(self, text: str, fn, quote: bool = True):
        self.text, self.fn, self.quote = text, fn, quote

    def __repr__(self):
        return f"E({self.text!r})"


def name_ref(name: str, quote: bool = True) -> E:
    """`$name`: the value of a name in scope."""
    return E(f"${name}", lambda e: e[name], quote)


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

    def __init__(self, prefix: str, env: dict, input_shape, frozen: bool = False):
        self.prefix, self.env, self.input, self.frozen = prefix, env, input_shape, frozen
        self.names: dict = {}        # local name -> output shape
        self.children: dict = {}     # local name -> Scope
        self.switched: set = set()
        self.counter = [0]           # shared by copies: one namespace, one sequence of names

    def clone(self) -> "Scope":
        c = Scope(self.prefix, self.env, self.input, self.frozen)
        c.names, c.children, c.switched = dict(self.names), dict(self.children), set(self.switched)
        c.counter = self.counter
        return c

    def view(self, env=None, frozen=None) -> "Scope":
        """The same namespace (shared tables), another environment or frozen flag."""
        c = Scope(self.prefix, self.env if env is None else env, self.input,
                  self.frozen if frozen is None else frozen)
        c.names, c.children, c.switched, c.counter = self.names, self.children, self.switched, self.counter
        return c


def visible(scope: Scope, depth: int = 2, prefix: str = ""):
    """(reference, shape) of the names `from:` can reach from a scope, dotted ones too."""
    for name, shape in scope.names.items():
        yield prefix + name, shape
    if depth > 1:
        for name, child in scope.children.items():
            yield from visible(child, depth - 1, f"{prefix}{name}.")


class Run:
    """Interprets a model: qualified name -> shape and parameters of every primitive node."""

    def __init__(self, blocks: dict, input_shape, file_env: dict):
        self.blocks = blocks
        self.input_shape = input_shape
        self.file_env = file_env         # the file's arguments: what block bodies start from
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
            child = Scope(f"{scope.prefix}{name}.", scope.env, src[0], scope.frozen)
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
        child = Scope(f"{scope.prefix}{name}.", env, source, scope.frozen)
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
            group = Scope(f"{scope.prefix}{name}.", scope.env, out, scope.frozen)
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

