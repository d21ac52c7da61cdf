"""The flat graph of primitive ops that every later stage works on."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType

from .diagnostics import Diagnostic, Position, SpecError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (PEP 781)
if TYPE_CHECKING:  # networkx is imported where a graph algorithm is needed, not at start-up
    import networkx as nx

INPUT = "input"  # the name of the graph's input node


@dataclass(frozen=True, slots=True)
class Node:
    name: str                 # qualified: `layer1.0.conv1`, also the module path of its weights
    op: str
    args: MappingProxyType    # normalised op arguments
    inputs: tuple             # qualified names of the producers, in order
    pos: Position | None      # where the node was written
    trace: tuple = ()         # instantiation chain, innermost first: ((what, pos), ...)
    arg_pos: dict = field(default_factory=dict)  # where each arg was written (read only)
    frozen: bool = False      # its weights have requires_grad=False
    scopes: tuple = ()        # enclosing namespaces and what made them: (("layer1.0", "bottleneck"), ...)


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
    # Qualified names of blocks, seqs and repeats -> the node that is their output.
    aliases: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # The node names as the spec writes them (expansion order), which can differ from
    # the topological order when a `from:` names a node written later. Modules are
    # registered in this order, so a spec decides its state dict's key order.
    written: tuple = ()

    def consumers(self) -> dict:
        readers = {name: [] for name in (INPUT, *self.nodes)}
        for node in self.nodes.values():
            for src in node.inputs:
                readers[src].append(node.name)
        return readers

    def needed_for(self, training: bool) -> list:
        """Names of the nodes computed in this mode, topologically ordered."""
        needed = _ancestors(self.nodes, [o.node for o in self.active_outputs(training)])
        return [n for n in self.nodes if n in needed]

    def active_outputs(self, training: bool) -> tuple:
        return tuple(o for o in self.outputs if training or not o.train_only)


def finish_graph(input_shape, nodes: dict, outputs: list, aliases: dict | None = None) -> Graph:
    """Order nodes topologically; report cycles as errors and unused nodes as warnings."""
    ordered = {name: nodes[name] for name in _topological_order(nodes)}
    used = _ancestors(ordered, [o.node for o in outputs])
    warnings = tuple(
        Diagnostic("W0308", f"node `{name}` feeds no output; it is left out", node.pos,
                   "name it in `outputs:`, or switch it off with `when:`", severity="warning")
        for name, node in ordered.items() if name not in used)
    reachable = {name: node for name, node in ordered.items() if name in used}
    aliases = {k: v for k, v in (aliases or {}).items() if v in reachable and k not in reachable}
    return Graph(tuple(input_shape), MappingProxyType(reachable), tuple(outputs), warnings,
                 MappingProxyType(aliases), tuple(n for n in nodes if n in reachable))


def to_networkx(nodes: dict) -> "nx.DiGraph":
    """The graph as a networkx.DiGraph, each node carrying its `Node` as `node`."""
    import networkx as nx

    dag = nx.DiGraph()
    dag.add_node(INPUT)
    dag.add_nodes_from((name, {"node": node}) for name, node in nodes.items())
    dag.add_edges_from((src, node.name) for node in nodes.values() for src in node.inputs)
    return dag


def _topological_order(nodes: dict) -> list:
    """Names in an order where every node follows its inputs, as written where possible."""
    seen = {INPUT}
    for name, node in nodes.items():  # the common case: written in order already
        if any(src not in seen for src in node.inputs):
            break
        seen.add(name)
    else:
        return list(nodes)
    import networkx as nx

    dag = to_networkx(nodes)
    rank = {name: i for i, name in enumerate(nodes)}
    rank[INPUT] = -1
    try:
        return [n for n in nx.lexicographical_topological_sort(dag, key=rank.__getitem__) if n != INPUT]
    except nx.NetworkXUnfeasible:
        cycle = [edge[0] for edge in nx.find_cycle(dag)]
        raise SpecError(Diagnostic(
            "E0307", "the graph has a cycle: " + " -> ".join(cycle + [cycle[0]]), nodes[cycle[0]].pos,
            "a `from:` names a node that (indirectly) reads this one")) from None


def _ancestors(nodes: dict, targets: list) -> set:
    found, stack = set(), list(targets)
    while stack:
        name = stack.pop()
        if name in found or name == INPUT:
            continue
        found.add(name)
        stack.extend(nodes[name].inputs)
    return found
