"""Mermaid flowchart text (GitHub, GitLab and many wikis render it in Markdown):
unfolded blocks become subgraphs, folded ones single boxes."""
from __future__ import annotations

from .model import Drawing, Item, folded_edges, label_lines

_CLASSES = ("  classDef block fill:#eef3f8,stroke:#4a5a6a,stroke-width:2px\n"
            "  classDef io fill:#e8f0e0,stroke:#4a5a6a\n"
            "  classDef trainOnly stroke-dasharray:5 4,color:#555555\n")


def to_mermaid(drawing: Drawing, depth: int | None = None) -> str:
    ids: dict = {}  # Mermaid ids must be plain words; qualified names have dots

    def ident(item: Item) -> str:
        return ids.setdefault(item, f"n{len(ids)}")

    lines = ["flowchart TD\n"]
    classes: dict[str, list] = {"block": [], "io": [], "trainOnly": []}

    def emit(item: Item, indent: str) -> None:
        label = _text("<br/>".join(label_lines(item)))
        if item.is_block and (depth is None or item.depth < depth):
            lines.append(f'{indent}subgraph {ident(item)}["{label}"]\n')
            for child in item.children:
                emit(child, indent + "  ")
            lines.append(f"{indent}end\n")
        else:
            lines.append(f'{indent}{ident(item)}["{label}"]\n')
            if item.is_block:
                classes["block"].append(ident(item))
            elif item.kind in ("input", "output"):
                classes["io"].append(ident(item))
        if item.train_only:
            classes["trainOnly"].append(ident(item))

    for child in drawing.root.children:
        emit(child, "  ")
    for src, dst in folded_edges(drawing, depth):
        lines.append(f"  {ident(src)} {'-.->' if dst.train_only else '-->'} {ident(dst)}\n")
    lines.append(_CLASSES)
    lines.extend(f"  class {','.join(members)} {name}\n" for name, members in classes.items() if members)
    return "".join(lines)


def _text(label: str) -> str:
    """Mermaid label text: its entity codes for the characters that end or confuse a label."""
    return label.replace("&", "#amp;").replace('"', "#quot;").replace("<br/>", "\0").replace(
        "<", "#lt;").replace(">", "#gt;").replace("\0", "<br/>")
