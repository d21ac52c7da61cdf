"""Static inference: every node's output shape, parameter count and MACs, by arithmetic.

Nothing is allocated: the op registry's rules are applied in topological order.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from .diagnostics import Diagnostic, SpecError
from .graph import INPUT, Graph
from .ops import REGISTRY, OpError


@dataclass(frozen=True, slots=True)
class NodeFacts:
    shape: tuple   # per sample
    params: int
    macs: int      # per sample, torchinfo's definition (see README, "MACs")
    buffers: tuple = (0, 0)  # buffer elements: (floating point, int64)


@dataclass(frozen=True)
class InferredGraph:
    graph: Graph
    facts: MappingProxyType  # node name -> NodeFacts

    def __deepcopy__(self, memo):
        return self  # immutable: a deep copy of a network built from it shares it

    def shape(self, name: str) -> tuple:
        return self.graph.input_shape if name == INPUT else self.facts[name].shape

    @property
    def total_params(self) -> int:
        return sum(f.params for f in self.facts.values())

    def macs(self, training: bool = False) -> int:
        return sum(self.facts[n].macs for n in self.graph.needed_for(training))


def node_facts(op_name: str, args, shapes: list) -> NodeFacts:
    """One node's facts from its op's rules; raises OpError."""
    op = REGISTRY[op_name]
    out = op.infer(args, shapes)
    return NodeFacts(tuple(out), op.params(args, shapes, out), op.macs(args, shapes, out),
                     op.buffers(args, shapes, out))


def infer(graph: Graph, known: dict | None = None) -> InferredGraph:
    """Facts for every node; every node whose inputs are sound is checked, and all
    errors are raised together. `known` holds facts already worked out (expansion
    infers what expressions ask about) for nodes of exactly these args and inputs."""
    facts: dict[str, NodeFacts] = {}
    errors: list[Diagnostic] = []
    known = known or {}

    def shape_of(name):
        return graph.input_shape if name == INPUT else facts[name].shape

    for name, node in graph.nodes.items():
        if name in known:
            facts[name] = known[name]
            continue
        if any(src != INPUT and src not in facts for src in node.inputs):
            continue  # an input failed and was reported
        shapes = [shape_of(src) for src in node.inputs]
        try:
            facts[name] = node_facts(node.op, node.args, shapes)
        except OpError as exc:
            message = f"{name}: {exc.message}"
            if len(shapes) > 1 and exc.code in ("E0401", "E0402"):
                message += ": " + ", ".join(f"{src} is {list(s)}" for src, s in zip(node.inputs, shapes))
            elif shapes:
                message += f" (input {list(shapes[0])})" if "input" not in exc.message else ""
            pos = node.arg_pos.get(exc.arg, node.pos)
            errors.append(Diagnostic(exc.code, message, pos, exc.hint, node.trace))
    if errors:
        raise SpecError(errors)
    return InferredGraph(graph, MappingProxyType(facts))
