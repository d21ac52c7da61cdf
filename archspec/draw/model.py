"""What a drawing shows, worked out from the compiled graph alone (nothing is traced
or allocated): a tree of blocks and nodes with their figures, and the data edges.

The tree follows the qualified names, as `summary --depth` folds them: `layer1.0.conv1`
sits in block `layer1.0`, which sits in `layer1`. A block's figures are the sums of
what it holds; its shape is its output node's.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..graph import INPUT
from ..infer import InferredGraph
from ..ops import REGISTRY


@dataclass(eq=False)
class Item:
    """A node of the network, a block (anything with children), the input or an output."""

    name: str                 # qualified name ("" for the whole network)
    label: str                # what the box says first: the last part of the name
    kind: str                 # op; block name, "repeat x3" or "seq"; "input"; "output"
    shape: tuple = ()         # per sample
    params: int = 0
    macs: int = 0
    train_only: bool = False  # computed only in training mode (an auxiliary head)
    frozen: bool = False
    detail: str = ""          # the op's arguments, for tooltips
    parent: "Item | None" = None
    children: list | None = None  # None: drawn as one box whatever the depth

    @property
    def is_block(self) -> bool:
        return self.children is not None

    @property
    def depth(self) -> int:
        """How many name parts it has: 1 for `layer1`, 2 for `layer1.0`."""
        return self.name.count(".") + 1 if self.name else 0

    def leaves(self):
        if self.children is None:
            yield self
            return
        for child in self.children:
            yield from child.leaves()


@dataclass
class Drawing:
    title: str
    description: str
    root: Item                # the network; its children are the top level
    edges: list = field(default_factory=list)  # (Item, Item) between leaves, data flow only
    params: int = 0
    macs: int = 0             # eval mode
    train_macs: int = 0


def drawing_of(inferred: InferredGraph, title: str, description: str = "") -> Drawing:
    graph, facts = inferred.graph, inferred.facts
    in_eval = set(graph.needed_for(False))
    root = Item("", title, "network", children=[])
    input_item = Item(INPUT, INPUT, "input", shape=graph.input_shape, parent=root)
    root.children.append(input_item)
    leaves = {INPUT: input_item}
    blocks = {"": root}

    def block(name: str, scopes: dict) -> Item:
        found = blocks.get(name)
        if found is None:
            parent = block(name.rpartition(".")[0], scopes)
            found = Item(name, name.rpartition(".")[2], scopes.get(name, "block"), parent=parent, children=[])
            parent.children.append(found)
            blocks[name] = found
        return found

    edges = []
    for name, node in graph.nodes.items():
        parent = block(name.rpartition(".")[0], dict(node.scopes))
        fact = facts[name]
        leaf = Item(name, name.rpartition(".")[2], _kind(node, inferred), fact.shape, fact.params, fact.macs,
                    name not in in_eval, node.frozen, _detail(node), parent)
        parent.children.append(leaf)
        leaves[name] = leaf
        fed = REGISTRY[node.op].fed_inputs
        # Inputs past `fed_inputs` only lend their shape (a shortcut projection's
        # reference): they carry no data, so they are not drawn.
        for src in node.inputs[:fed] if fed is not None else node.inputs:
            edges.append((leaves[src], leaf))
    for out in graph.outputs:
        item = Item(f"output:{out.name}", out.name, "output", inferred.shape(out.node),
                    train_only=out.train_only, parent=root)
        root.children.append(item)
        edges.append((leaves[out.node], item))
    for name, item in blocks.items():
        if name:
            _sum_figures(item, graph.aliases.get(name), leaves)
    description = " ".join(str(description or "").split())
    return Drawing(title, description, root, edges, inferred.total_params, inferred.macs(False),
                   inferred.macs(True))


def _kind(node, inferred) -> str:
    if node.op == "project" and inferred.shape(node.inputs[0]) == inferred.shape(node.inputs[1]):
        return "identity"  # a shortcut whose shapes already agree: no conv, no weights
    return node.op


def _detail(node) -> str:
    op = REGISTRY[node.op]
    shown = [f"{key}={_value(value)}" for key, value in node.args.items()
             if value is not None and (key not in op.args or value != op.args[key].default)]
    return f"{node.op}({', '.join(shown)})" if shown else node.op


def _value(value) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _sum_figures(block: Item, output: str | None, leaves: dict) -> None:
    """The figures of a block as `Summary.folded` gives them: sums of its nodes; the
    shape of its output node, else of its last node."""
    members = list(block.leaves())
    block.params = sum(m.params for m in members)
    block.macs = sum(m.macs for m in members)
    block.train_only = all(m.train_only for m in members)
    block.frozen = all(m.frozen for m in members)
    block.shape = leaves[output].shape if output in leaves else members[-1].shape


def visible(item: Item, depth: int | None) -> Item:
    """The box that shows `item` when blocks deeper than `depth` name parts are folded."""
    if depth is None:
        return item
    while item.depth > depth:
        item = item.parent
    return item


def folded_edges(drawing: Drawing, depth: int | None) -> list:
    """Edges between the boxes shown at `depth`, each once, in graph order; edges
    inside a folded block disappear with it."""
    seen, edges = set(), []
    for src, dst in drawing.edges:
        a, b = visible(src, depth), visible(dst, depth)
        if a is not b and (a, b) not in seen:
            seen.add((a, b))
            edges.append((a, b))
    return edges


def shape_text(shape) -> str:
    """A per-sample shape as `--input` writes it: 64x56x56."""
    return "x".join(str(d) for d in shape)


def figures_text(item: Item) -> str:
    """`9,408 params · 118,013,952 MACs`; zero figures are left out for single nodes."""
    parts = []
    if item.params or item.is_block:
        parts.append(f"{item.params:,} params" + (" (frozen)" if item.frozen and item.params else ""))
    if item.macs or item.is_block:
        parts.append(f"{item.macs:,} MACs")
    return " · ".join(parts)


def title_text(item: Item) -> str:
    """`conv1: conv`, `layer1: repeat x2`, `relu` (not `relu: relu`), `input`, `output logits`."""
    if item.kind == "input":
        return "input"
    if item.kind == "output":
        return "output" if item.label == "output" else f"output {item.label}"
    return item.label if item.label == item.kind else f"{item.label}: {item.kind}"


def label_lines(item: Item) -> list:
    """The lines of a box: what it is, its output shape, its figures, training-only mark."""
    lines = [title_text(item), shape_text(item.shape)]
    figures = figures_text(item)
    if figures:
        lines.append(figures)
    if item.train_only:
        lines.append("training only")
    return lines
