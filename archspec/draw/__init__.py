"""Drawings of a network worked out from its spec alone: nothing is built or traced.

    from archspec.draw import render
    text = render("specs/resnet18.yaml", "mermaid", depth=1)

`model` turns the compiled graph into boxes, blocks and edges; one module per format
writes them out.
"""
from __future__ import annotations

from ..api import _need_count, compile_spec
from .model import Drawing, drawing_of

FORMATS = ("svg", "html", "dot", "mermaid")
# Extensions `archspec draw -o FILE` recognises when --format is not given.
EXTENSIONS = {".svg": "svg", ".html": "html", ".htm": "html", ".dot": "dot", ".gv": "dot",
              ".mmd": "mermaid", ".mermaid": "mermaid"}
HTML_DEPTH = 1  # the page opens with the top-level blocks folded; a click unfolds one


def drawing(path_or_spec, *, input_shape=None, scale: str | None = None, max_params: int | None = None,
            **overrides) -> Drawing:
    """The drawing model of a spec: its blocks, nodes, figures and edges."""
    compiled = compile_spec(path_or_spec, input_shape, check=False, max_params=max_params, scale=scale,
                            **overrides)
    spec = compiled.spec
    title = spec.name + (f" (scale {spec.scale})" if spec.scale else "")
    return drawing_of(compiled.inferred, title, spec.document.get("description") or "")


def render(path_or_spec, format: str = "svg", *, depth: int | None = None, input_shape=None,
           scale: str | None = None, max_params: int | None = None, **overrides) -> str:
    """The drawing as text in `format` (svg, html, dot, mermaid). With `depth`, blocks
    deeper than that many name parts are one box (html: the page opens so)."""
    if format not in FORMATS:
        from ..diagnostics import error

        raise error("E0604", f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if depth is not None:
        _need_count("depth", depth)
    model = drawing(path_or_spec, input_shape=input_shape, scale=scale, max_params=max_params, **overrides)
    if format == "html":
        from .html import to_html

        return to_html(model, HTML_DEPTH if depth is None else depth)
    if format == "svg":
        from .svg import to_svg

        return to_svg(model, depth)
    if format == "dot":
        from .dot import to_dot

        return to_dot(model, depth)
    from .mermaid import to_mermaid

    return to_mermaid(model, depth)
