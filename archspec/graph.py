"""The flat graph of primitive ops that every later stage works on."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

import networkx as nx

from .diagnostics import Diagnostic, Position, SpecError

INPUT = "input"  # the name of the graph's input node


@dataclass(frozen=True)
class Node:
    name: str                 # qualified: `layer1.0.conv1`, also the module path of its weights
    op: str
    args: MappingProxyType    # normalised op arguments
    inputs: tuple             # qualified names of the producers, in order
    pos: Position | None      # where the node was written
    trace: tuple = ()         # instantiation chain, innermost first: ((what, pos), ...)
    arg_pos: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))  # where each arg was written


@dataclass(frozen=True)
class Output:
    name: str
    node: str
    train_only: bool
    pos: Position | None


@dataclass(frozen=True)
class Graph:
    input_shape: tuple
    nodes: MappingProxyType   # name -> Node, in topological order
    outputs: tuple            # Output, in declared order
    warnings: tuple = ()      # Diagnostics that do not stop a build
    # Top-level names of blocks, seqs and repeats -> the node that is their output.
    aliases: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def consumers(self) -> dict:
        readers = {name: [] for name in (INPUT, *self.nodes)}
        for node in self.nodes.values():
            for src in node.inputs:
                readers[src].append(node.name)
        return readers

    def needed_for(self, training: bool) -> list:
        """Names of the nodes computed in this mode, topologically ordered."""
        wanted = [o.node for o in self.outputs if training or not o.train_only]
        seen = set()
        stack = list(wanted)
        while stack:
            name = stack.pop()
            if name in seen or name == INPUT:
                continue
            seen.add(name)
            stack.extend(self.nodes[name].inputs)
        return [n for n in self.nodes if n in seen]

    def active_outputs(self, training: bool) -> tuple:
        return tuple(o for o in self.outputs if training or not o.train_only)


def finish_graph(input_shape, nodes: dict, outputs: list, aliases: dict | None = None) -> Graph:
    """Order nodes topologically; report cycles as errors and unused nodes as warnings."""
    dag = nx.DiGraph()
    dag.add_node(INPUT)
    for node in nodes.values():
        dag.add_node(node.name)
        for src in node.inputs:
            dag.add_edge(src, node.name)
    try:
        order = list(nx.lexicographical_topological_sort(dag, key=_insertion_key(nodes)))
    except nx.NetworkXUnfeasible:
        cycle = [edge[0] for edge in nx.find_cycle(dag)]
        first = nodes[cycle[0]]
        raise SpecError(Diagnostic(
            "E0307", "the graph has a cycle: " + " -> ".join(cycle + [cycle[0]]), first.pos,
            "a `from:` names a node that (indirectly) reads this one")) from None
    ordered = {name: nodes[name] for name in order if name != INPUT}
    used = set()
    for out in outputs:
        used |= nx.ancestors(dag, out.node) | {out.node}
    warnings = tuple(
        Diagnostic("W0308", f"node `{name}` feeds no output; it is left out", node.pos,
                   "name it in `outputs:`, or switch it off with `when:`", severity="warning")
        for name, node in ordered.items() if name not in used)
    reachable = {name: node for name, node in ordered.items() if name in used}
    aliases = {k: v for k, v in (aliases or {}).items() if v in reachable and k not in reachable}
    return Graph(tuple(input_shape), MappingProxyType(reachable), tuple(outputs), warnings,
                 MappingProxyType(aliases))


def _insertion_key(nodes: dict):
    rank = {name: i for i, name in enumerate(nodes)}
    rank[INPUT] = -1
    return lambda name: rank[name]
