"""The strategy for valid specs: `valid_specs()` draws a whole spec (file arguments and
overrides, an input, a graph, a classifier head, outputs, `expect:` figures) and returns
its text with what the model says archspec must infer from it."""
from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from .generate import Gen, node_stem
from .model import INPUT, Body, E, Node, Run, Scope, ev, name_ref, visible
from .yaml_text import FlowMap, spec_text


@dataclass
class Generated:
    """A generated spec and what the model says archspec must make of it."""

    text: str
    overrides: dict
    input_shape: tuple
    shapes: dict          # qualified node -> per-sample shape
    params: dict          # qualified node -> parameters
    ops: dict             # qualified node -> op
    frozen: dict          # qualified node -> whether its weights are frozen
    outputs: list         # [(name, shape, train_only)] active outputs, declared order

    def __repr__(self):
        extra = f"  overrides: {self.overrides}\n" if self.overrides else ""
        return f"Generated(<<\n{self.text}{extra}>>)"


@st.composite
def valid_specs(draw, max_nodes: int = 30):
    """Random spec texts that archspec must compile, with the figures it must infer."""
    g = Gen(draw, max_nodes)
    C, H = g.int(1, 8), g.int(4, 24)
    W = H if g.chance(0.6) else g.int(4, 24)
    raw_args, values, input_raw, aux_head, overrides = _file_args(g, C, H, W)
    g.file_env = values
    g.want_unit = g.chance(0.2)

    shape = (C, H, W)
    g.input_shape = shape
    root = Scope("", values, shape)
    style = g.weighted([(4, "map"), (1, "list")])
    graph, cur, ref, conditional = g.body(root, shape, INPUT if g.chance(0.5) else "in",
                                          g.int(1, 6), 0, style=style)
    if "unit" in values:
        raw_args["unit"] = values["unit"]
    main_ref = _head(g, graph, root, cur, ref, conditional)
    outputs = _outputs(g, graph, root, main_ref, aux_head)

    # What archspec must make of it: a fresh interpretation of the finished model.
    run = Run(g.blocks, shape, values)
    top = Scope("", values, shape)
    last = run.body(graph, top, shape)
    active = []
    if outputs is None:
        active.append(("output", last, False))
    else:
        for oname, raw in outputs.items():
            spec = raw if isinstance(raw, dict) else {"from": raw}
            if "when" in spec and not ev(spec["when"], values):
                continue
            active.append((oname, run.lookup(top, spec["from"]), bool(spec.get("train_only", False))))
    expect = _expect(g, run, graph, active, values) if g.chance(0.2) else None
    text = spec_text(g.blocks, raw_args, input_raw, graph, outputs, expect, g.chance(0.7))
    return Generated(text, overrides, shape, dict(run.shapes), dict(run.params), dict(run.ops),
                     dict(run.frozen), active)


def _file_args(g: Gen, C, H, W):
    """The file's `args:` as written and their values, the `input:` as written, whether
    there is an auxiliary head, and the overrides the spec is loaded with."""
    raw_args, values = {}, {}
    if g.chance(0.7):
        raw_args["width"] = values["width"] = g.int(2, 8)
    if g.chance(0.5):
        raw_args["wide"] = E("${width * 2}", lambda e: e["width"] * 2) if "width" in values else 6
        values["wide"] = ev(raw_args["wide"], values)
    raw_args["num_classes"] = values["num_classes"] = g.int(2, 10)
    if g.chance(0.5):
        raw_args["use_bn"] = values["use_bn"] = g.chance(0.5)
    if g.chance(0.4):
        raw_args["depth"] = values["depth"] = g.int(0, 3)
    if g.chance(0.3):
        raw_args["layers"] = values["layers"] = [g.int(0, 3) for _ in range(g.int(1, 3))]
    if g.chance(0.3):
        raw_args["drop"] = values["drop"] = g.pick([0.25, 0.5, 0.0])
    input_raw = [C, H, W]
    if g.chance(0.2):
        raw_args["cin"] = values["cin"] = C
        input_raw = [name_ref("cin", quote=g.chance(0.5)), H, W]
    aux_head = g.chance(0.25)
    if aux_head:
        raw_args["aux"] = values["aux"] = g.chance(0.6)
    overrides = {}
    if "width" in values and g.chance(0.2):
        overrides["width"] = values["width"] = g.int(1, 8)
        if "wide" in values:
            values["wide"] = ev(raw_args["wide"], values)
    if g.chance(0.1):
        overrides["num_classes"] = values["num_classes"] = g.int(1, 6)
    return raw_args, values, input_raw, aux_head, overrides


def _head(g: Gen, graph: Body, root: Scope, cur, ref, conditional) -> str:
    """A classifier head, and then perhaps a few 1-D layers; the name of the last node."""
    if len(cur) == 3 and g.chance(0.7):
        if g.chance(0.7):
            cur, ref = g.append(graph, root, cur, Node("op", op="adaptive_avgpool",
                                                       args={"out": g.pick([1, 2])}, flow=True))
        cur, ref = g.append(graph, root, cur, Node("op", op="flatten", flow=True))
        conditional = False
    if len(cur) == 1 and g.chance(0.7):
        g.budget = max(g.budget, 3)
        extra, cur, ref, conditional = g.body(root, cur, ref, g.int(1, 3), 1, style=graph.style,
                                              name_items=graph.style == "list")
        graph.items.extend(extra.items)
    if conditional:  # the main output must not be switched off
        cur, ref = g.append(graph, root, cur, Node("op", op="identity", flow=True))
    return ref


def _outputs(g: Gen, graph: Body, root: Scope, main_ref: str, aux_head: bool):
    """`outputs:` (None: the last node is the output): `logits`, and an auxiliary head
    for training only or a feature tap."""
    if not (aux_head or g.chance(0.1)):
        return None
    conditional_names = {k if k is not None else n.name for k, n in graph.items if n.when is not None}
    tops = sorted(n for n in root.names if n != main_ref and n not in conditional_names)
    outputs = {"logits": main_ref}
    if tops and aux_head:
        tap = g.pick(tops)
        items = []
        if len(root.names[tap]) == 3:
            items += [Node("op", op="adaptive_avgpool", args={"out": g.pick([1, 2])}, flow=True),
                      Node("op", op="flatten", flow=True)]
        items.append(Node("op", op="linear", args={"out": name_ref("num_classes")},
                          flow=True))
        body = Body([(f"{node_stem(n)}{k + 1}", n) for k, n in enumerate(items)], "map")
        aux_node = Node("seq", body=body, src=tap, when=name_ref("aux", quote=g.chance(0.5)))
        aux_name = g.append(graph, root, None, aux_node, stem="aux")[1]
        outputs["aux"] = FlowMap({"from": aux_name, "when": name_ref("aux"),
                                  "train_only": True})
    elif tops:
        dotted = sorted(r for r, _ in visible(root) if "." in r)
        outputs["feat"] = g.pick(dotted) if dotted and g.chance(0.4) else g.pick(tops)
    elif g.chance(0.5):
        outputs = None
    return outputs


def _expect(g: Gen, run: Run, graph: Body, active: list, values: dict) -> dict:
    """An `expect:` section with the right figures."""
    expect = {"params": sum(run.params.values()), "output": list(active[0][1])}
    if g.chance(0.5):
        expect["params"] = E(f"${{{expect['params'] - values['num_classes']} + num_classes}}",
                             lambda e: 0)
    top_nodes = sorted(k for k, n in graph.items if k is not None and k in run.shapes)
    if top_nodes:
        name = g.pick(top_nodes)
        expect["shapes"] = FlowMap({name: list(run.shapes[name])})
    return expect
