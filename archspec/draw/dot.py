"""Graphviz DOT text: unfolded blocks become clusters, folded ones single boxes.

Node ids are the qualified names, so the text reads like the spec and can be edited
or re-rendered with any Graphviz tool (`dot -Tpdf`)."""
from __future__ import annotations

from .model import Drawing, Item, folded_edges, label_lines

_GRAPH = ('  graph [rankdir=TB, nodesep=0.25, ranksep=0.35, fontname="Helvetica,Arial,sans-serif", '
          'fontsize=11, labeljust=l, tooltip=" "];\n'
          '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", color="#4a5a6a", '
          'fontname="Helvetica,Arial,sans-serif", fontsize=10, margin="0.12,0.05"];\n'
          '  edge [color="#4a5a6a", arrowsize=0.6];\n')
# Fill of the clusters by nesting level, light to lighter.
_CLUSTER_FILLS = ("#eef3f8", "#f5f8fb", "#fafcfd")


def to_dot(drawing: Drawing, depth: int | None = None) -> str:
    lines = [f"digraph {_quote(drawing.title)} {{\n", _GRAPH]
    lines.append(f"  label={_quote(_caption(drawing))};\n  labelloc=t;\n")
    for child in drawing.root.children:
        _emit(child, depth, lines, "  ")
    for src, dst in folded_edges(drawing, depth):
        style = ' [style=dashed, color="#8a8a8a"]' if dst.train_only else ""
        lines.append(f"  {_quote(_id(src))} -> {_quote(_id(dst))}{style};\n")
    lines.append("}\n")
    return "".join(lines)


def _caption(drawing: Drawing) -> str:
    return (f"{drawing.title}: {drawing.params:,} params · {drawing.macs:,} MACs per sample (eval)"
            + (f"; {drawing.train_macs:,} in training" if drawing.train_macs != drawing.macs else ""))


def _emit(item: Item, depth: int | None, lines: list, indent: str) -> None:
    if item.is_block and (depth is None or item.depth < depth):
        fill = _CLUSTER_FILLS[min(item.depth, len(_CLUSTER_FILLS)) - 1]
        style = "dashed,filled" if item.train_only else "rounded,filled"
        lines.append(f"{indent}subgraph {_quote('cluster_' + item.name)} {{\n")
        # `\l` ends a left-justified line: the title sits at the cluster's left corner.
        label = _quote("\n".join(label_lines(item)) + "\n").replace("\\n", "\\l")
        lines.append(f"{indent}  label={label}; style={_quote(style)}; "
                     f"fillcolor={_quote(fill)}; color=\"#9aaaba\"; tooltip={_quote(item.name)};\n")
        for child in item.children:
            _emit(child, depth, lines, indent + "  ")
        lines.append(f"{indent}}}\n")
        return
    lines.append(f"{indent}{_quote(_id(item))} [{_attributes(item)}];\n")


def _attributes(item: Item) -> str:
    shape, style, fill = "box", ["rounded", "filled"], "#ffffff"
    if item.kind in ("input", "output"):
        style, fill = ["rounded", "filled", "bold"], "#e8f0e0"
    elif item.is_block:  # folded: a stack of boxes says there is more inside
        shape, style, fill = "box3d", ["filled"], "#eef3f8"
    attrs = {"label": "\n".join(label_lines(item)), "tooltip": _tooltip(item), "shape": shape}
    if item.train_only:
        style.append("dashed")
        attrs.update(color="#8a8a8a", fontcolor="#555555")
    attrs.update(style=",".join(style), fillcolor=fill)
    return ", ".join(f"{key}={_quote(value)}" for key, value in attrs.items())


def _tooltip(item: Item) -> str:
    if item.is_block:
        return f"{item.name} ({item.kind}, {sum(1 for _ in item.leaves())} nodes)"
    return f"{item.name}: {item.detail}" if item.detail else item.name


def _id(item: Item) -> str:
    return item.name


def _quote(text: str) -> str:
    """A DOT string: quotes and backslashes escaped, line breaks as \\n (centred lines)."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
