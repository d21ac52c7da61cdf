"""Writing generated documents as YAML text: block style, with flow mappings (`{...}`)
where the generator asks for them, and scalars quoted only where YAML needs it."""
from __future__ import annotations

import json
import re

from .model import Body, E, Node


class FlowMap(dict):
    """A mapping written inline, `{k: v, ...}`."""


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_YAML11_WORDS = {w for base in ("y", "yes", "n", "no", "true", "false", "on", "off", "null")
                 for w in (base, base.capitalize(), base.upper())}


def _float_text(v: float) -> str:
    text = f"{v:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _scalar(v, flow: bool) -> str:
    if isinstance(v, E):
        t = v.text
        special = set("{}[],") if flow else set()
        if v.quote or any(c in special for c in t) or ": " in t or " #" in t or t[:1] in "-?:,[]{}#&*!|>'\"%@`":
            return json.dumps(t)
        return t
    if v is None:
        return "~"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return _float_text(v)
    if isinstance(v, str):
        if _PLAIN.match(v) and v not in _YAML11_WORDS:
            return v
        return json.dumps(v)
    raise TypeError(v)


def _inline(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)}: {_inline(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_inline(x) for x in v) + "]"
    return _scalar(v, True)


def _key(k) -> str:
    if isinstance(k, int):
        return str(k)
    return _scalar(k, True)


def _inlinable(v) -> bool:
    if isinstance(v, FlowMap) or (isinstance(v, dict) and not v):
        return True
    if isinstance(v, list):
        return all(_inlinable(x) for x in v)
    return not isinstance(v, dict)


def _inline_value(v) -> str:
    """An inlinable value after `key: ` or `- `."""
    return _inline(v) if isinstance(v, (dict, list)) else _scalar(v, False)


def _block_map(d: dict, indent: int) -> list:
    pad = " " * indent
    lines = []
    for k, v in d.items():
        if _inlinable(v):
            lines.append(f"{pad}{_key(k)}: {_inline_value(v)}")
        elif isinstance(v, dict):
            lines.append(f"{pad}{_key(k)}:")
            lines += _block_map(v, indent + 2)
        else:
            lines.append(f"{pad}{_key(k)}:")
            lines += _block_list(v, indent + 2)
    return lines


def _block_list(items: list, indent: int) -> list:
    pad = " " * indent
    lines = []
    for v in items:
        if _inlinable(v):
            lines.append(f"{pad}- {_inline_value(v)}")
        elif isinstance(v, dict):
            inner = _block_map(v, indent + 2)
            lines.append(pad + "- " + inner[0][indent + 2:])
            lines += inner[1:]
        else:
            lines.append(pad + "-")
            lines += _block_list(v, indent + 2)
    return lines


def to_yaml(doc: dict) -> str:
    return "\n".join(_block_map(doc, 0)) + "\n"


def _node_yaml(node: Node):
    if node.shorthand:
        return _body_yaml(node.body)
    d = FlowMap() if node.flow else {}
    if node.kind == "op":
        d["op"] = node.op
        d.update(node.args)
    elif node.kind == "block":
        d["block"] = node.block
        d.update(node.args)
    elif node.kind == "seq":
        d["seq"] = _body_yaml(node.body)
    else:
        d[node.kind] = [_body_yaml(b) if b is not None else ({} if node.empty == "{}" else None)
                        for b in node.branches]
        if node.dim is not None:
            d["dim"] = node.dim
    for key, value in (("name", node.name), ("from", node.src), ("when", node.when),
                       ("repeat", node.repeat), ("names", node.names), ("frozen", node.frozen),
                       ("doc", node.doc)):
        if value is not None:
            d[key] = value
    if node.at:
        d["at"] = FlowMap({k: FlowMap(v) for k, v in node.at.items()})
    return d


def _body_yaml(body: Body):
    if body.style == "map":
        return {k: _node_yaml(n) for k, n in body.items}
    return [_node_yaml(n) for _, n in body.items]


def spec_text(blocks: dict, file_args: dict, input_raw, graph: Body, outputs, expect,
              archspec_key: bool) -> str:
    """The whole spec document."""
    doc = {}
    if archspec_key:
        doc["archspec"] = 1
    doc["name"] = "fuzz"
    if file_args:
        doc["args"] = file_args
    doc["input"] = input_raw
    if blocks:
        doc["blocks"] = {name: {"args": FlowMap(b.args), "body": _body_yaml(b.body)}
                         for name, b in blocks.items()}
    doc["graph"] = _body_yaml(graph)
    if outputs:
        doc["outputs"] = outputs
    if expect:
        doc["expect"] = expect
    return to_yaml(doc)
