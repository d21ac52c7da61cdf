"""A compiled spec as a tree of namespaces, each knowing the argument values it was
expanded with: what eject turns into one class per block.

The flat graph keeps, per node, the namespaces around it (`Node.scopes`) and where
each was written (`Node.trace`), but not the values of the arguments a block was
given. Eject needs them to name constructor arguments after the spec's own, so the
expansion here records each namespace's expression scope as it is made.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..diagnostics import Position, SpecError
from ..expand import _Expander
from ..graph import INPUT
from ..infer import InferredGraph, infer
from ..spec import SHAPE_NAMES, Spec
from ..yaml_source import SourceList, SourceMap

_PLAIN = (bool, int, float, str, type(None))


class _RecordingExpander(_Expander):
    """The expander, also keeping each namespace's expression scope: file-level args,
    the block's arguments (defaults included) and, for seqs, those of the block
    around it."""

    def __init__(self, spec: Spec):
        super().__init__(spec)
        self.envs: dict = {}

    def child_scope(self, scope, name, source, env, frame, label):
        child = super().child_scope(scope, name, source, env, frame, label)
        # The same dict the block then adds its defaults to: read once expansion is over.
        self.envs[child.prefix[:-1]] = child.env
        return child


@dataclass(eq=False)
class Compilation:
    """One variant of the spec, expanded and inferred, with each namespace's values."""

    spec: Spec
    inferred: InferredGraph
    envs: dict      # namespace -> {name: plain value}
    docs: dict      # (file, line, col) of a node mapping -> its `doc:`

    @property
    def graph(self):
        return self.inferred.graph

    def shape(self, name: str) -> tuple:
        return self.inferred.shape(name)


def compile_recording(spec: Spec) -> Compilation:
    """Expand and infer `spec` (already known to compile), keeping namespace values."""
    expander = _RecordingExpander(spec)
    expansion = expander.run()
    if expansion.errors:
        raise SpecError(list(expansion.errors))
    inferred = infer(expansion.graph, known=expansion.facts)
    envs = {ns: {k: _plain(v) for k, v in env.items()
                 if k not in SHAPE_NAMES and _is_plain(v)} for ns, env in expander.envs.items()}
    return Compilation(spec, inferred, envs, _docs(spec.document))


def _is_plain(value) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return isinstance(value, _PLAIN)


def _plain(value):
    if isinstance(value, (list, tuple)):  # read-only SourceLists become plain lists
        return [_plain(v) for v in value]
    return value


def _docs(document) -> dict:
    """Every `doc:` of a node or block mapping, by where the mapping starts."""
    found, stack = {}, [document]
    while stack:
        item = stack.pop()
        if isinstance(item, SourceMap):
            doc = item.get("doc")
            if isinstance(doc, str) and item.pos is not None:
                found[(item.pos.file, item.pos.line, item.pos.col)] = doc
            stack.extend(item.values())
        elif isinstance(item, SourceList):
            stack.extend(item)
    return found


def doc_at(compilation: Compilation, pos: Position | None) -> str | None:
    return compilation.docs.get((pos.file, pos.line, pos.col)) if pos is not None else None


@dataclass(eq=False)
class Scope:
    """A namespace of one compilation: the root, a block instance, a seq or a repeat."""

    name: str                  # qualified; "" for the root
    label: str                 # block name, `seq`, `repeat xN`; the spec's name for the root
    kind: str                  # root, block, seq or repeat
    definition: tuple          # what the instances of one class share
    pos: Position | None       # where the node that made it was written
    env: dict
    children: list = field(default_factory=list)  # Scope or node name, in graph order
    nodes: list = field(default_factory=list)     # every node below it, in graph order

    @property
    def local(self) -> str:
        return self.name.rpartition(".")[2]

    def rel(self, name: str) -> str:
        """A qualified name relative to this namespace (`conv1`, `branch2.1.relu`)."""
        return name[len(self.name) + 1:] if self.name else name


def scope_tree(compilation: Compilation) -> Scope:
    """The namespaces of a compilation, each with its children in graph order."""
    spec, graph = compilation.spec, compilation.graph
    root = Scope("", spec.name, "root", ("root",), None, dict(spec.args))
    made = {"": root}
    for name, node in graph.nodes.items():
        parent = root
        parent.nodes.append(name)
        frames = list(reversed(node.trace))  # outermost first, one per namespace
        block = None  # the innermost block around, whose definition a seq or repeat is written in
        for depth, (ns, label) in enumerate(node.scopes):
            scope = made.get(ns)
            kind = "seq" if label == "seq" else "repeat" if label.startswith("repeat x") else "block"
            if scope is None:
                pos = frames[depth][1] if depth < len(frames) else None
                definition = ("block", label) if kind == "block" else \
                    (kind, _where(pos), ns.rpartition(".")[2], block)
                scope = made[ns] = Scope(ns, label, kind, definition, pos, compilation.envs.get(ns, {}))
                parent.children.append(scope)
            scope.nodes.append(name)
            parent = scope
            if kind == "block":
                block = label
        parent.children.append(name)
    return root


def _where(pos: Position | None):
    return (pos.file, pos.line, pos.col) if pos is not None else None


def walk(scope: Scope):
    """Every namespace below `scope` (itself included), innermost first."""
    for child in scope.children:
        if isinstance(child, Scope):
            yield from walk(child)
    yield scope


def reads(compilation: Compilation) -> dict:
    """Node -> the nodes (or the graph's outputs, as `output:NAME`) that are fed its value."""
    from ..ops import REGISTRY

    readers = {INPUT: []}
    graph = compilation.graph
    for name in graph.nodes:
        readers[name] = []
    for name, node in graph.nodes.items():
        op = REGISTRY[node.op]
        for src in fed_inputs(node, op):
            readers[src].append(name)
    for out in graph.outputs:
        readers[out.node].append(f"output:{out.name}")
    return readers


def fed_inputs(node, op) -> tuple:
    """The inputs a node's module or function receives (a shortcut projection only
    takes its size from its second input)."""
    return node.inputs[:op.fed_inputs] if op.fed_inputs else node.inputs
