"""A self-contained interactive page: the drawing's data as JSON, and the page's own
script and style inlined (page.js, page.css beside this file). It loads nothing: its
Content-Security-Policy allows only the inline script and style it carries."""
from __future__ import annotations

import base64
import hashlib
import html
import json
from pathlib import Path

from .model import Drawing, Item, shape_text

_HERE = Path(__file__).parent


def to_html(drawing: Drawing, depth: int) -> str:
    script = (_HERE / "page.js").read_text(encoding="utf-8")
    style = (_HERE / "page.css").read_text(encoding="utf-8")
    policy = (f"default-src 'none'; script-src '{_digest(script)}'; style-src '{_digest(style)}'; "
              "img-src data:")
    e = html.escape
    totals = (f"input {shape_text(drawing.root.children[0].shape)} · {drawing.params:,} params · "
              f"{drawing.macs:,} MACs per sample (eval)"
              + (f", {drawing.train_macs:,} in training" if drawing.train_macs != drawing.macs else ""))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{e(policy, quote=False)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="archspec draw">
<title>{e(drawing.title)} · archspec draw</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>{e(drawing.title)}</h1>
{f'<p class="description">{e(drawing.description)}</p>' if drawing.description else ''}
<p class="totals">{e(totals)}</p>
<p class="controls"><button type="button" id="fold-all">Fold all</button>
<button type="button" id="unfold-level">Unfold one level</button>
<span class="legend">Click a block <b>&#9656;</b> to unfold it, the title of an open block <b>&#9662;</b>
to fold it; hover a box for its qualified name and arguments. Dashed: computed in training only.
Shapes are per sample; a block's figures are the sums of what it holds.</span></p>
<p id="notes" role="status"></p>
</header>
<main id="drawing"><noscript>This page draws the network with its inline script; enable JavaScript,
or use `archspec draw --format svg`.</noscript></main>
<script type="application/json" id="archspec-data">{_json(drawing, depth)}</script>
<script>{script}</script>
</body>
</html>
"""


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _json(drawing: Drawing, depth: int) -> str:
    index: dict = {}
    items: list = []

    def add(item: Item, parent: int) -> None:
        index[item] = len(items)
        entry = {"name": item.name, "label": item.label, "kind": item.kind, "shape": shape_text(item.shape),
                 "params": item.params, "macs": item.macs, "train": item.train_only, "frozen": item.frozen,
                 "detail": item.detail, "parent": parent, "depth": item.depth, "children": None}
        items.append(entry)
        if item.is_block:
            entry["children"] = []
            for child in item.children:
                entry["children"].append(len(items))
                add(child, index[item])

    add(drawing.root, -1)
    data = {"title": drawing.title, "depth": depth, "items": items,
            "edges": [[index[a], index[b]] for a, b in drawing.edges]}
    # No `<` at all inside the script element, so no name can end it early.
    return json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
