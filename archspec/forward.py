"""The forward pass of an inferred graph as a torch.fx graph, in one mode.

The builder turns it into Python source (the generated forward), `verify` runs it on
the meta device node by node, and tools that need the real tensors of every spec
node (the property tests) interpret it. Each fx node is named after the spec node it
computes (`layer1.0.relu1` becomes `layer1_0_relu1`) and carries that name in
`meta["archspec_node"]`, so the generated code reads beside the YAML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch.fx as fx
import torch.nn as nn

from .graph import INPUT
from .infer import InferredGraph
from .ops import REGISTRY

_NOT_IN_IDENTIFIERS = re.compile(r"[^0-9A-Za-z_]")
# Names the generated forward itself uses: the module and its input.
_TAKEN = {"self", "x"}


def variable_name(node_name: str) -> str:
    """The Python variable that holds a spec node's value in the generated forward
    (fx makes it unique and steers it clear of keywords and builtins)."""
    name = _NOT_IN_IDENTIFIERS.sub("_", node_name)
    return name + "_" if name in _TAKEN else name


def forward_graph(inferred: InferredGraph, modules: dict, training: bool) -> fx.Graph:
    """`modules`: qualified name -> what the node's op built: an nn.Module, called
    with the node's inputs, or an nn.Parameter, handed to the op's function after them."""
    return emit(forward_plan(inferred, modules, training))


@dataclass(frozen=True)
class Step:
    """One computation of the forward: `kind` is "module" (call the module at `name`)
    or "function" (call `target` with `kwargs`; with `parameter`, the node's own
    parameter comes after the inputs); `fed` are the values it takes."""

    name: str
    kind: str
    target: object
    fed: tuple
    kwargs: dict
    takes_list: bool = False
    parameter: bool = False


@dataclass(frozen=True)
class Plan:
    """What the forward computes in one mode, in order; plans compare equal when the
    two modes would generate the same code."""

    steps: tuple
    values: tuple   # (node, the node whose value it is): pass-throughs included
    outputs: tuple  # node names, in output order


def forward_plan(inferred: InferredGraph, modules: dict, training: bool) -> Plan:
    graph = inferred.graph
    order = graph.needed_for(training)
    outputs = graph.active_outputs(training)
    # storage[node]: the node whose tensor memory its value lives in. Pass-throughs and
    # views (flatten) share their input's; anything else owns its own.
    storage = {INPUT: INPUT}
    plans = {}
    for name in order:
        node = graph.nodes[name]
        op = REGISTRY[node.op]
        fed = node.inputs[:op.fed_inputs] if op.fed_inputs else node.inputs
        shapes = [inferred.shape(src) for src in node.inputs]
        calls_module = name in modules and not isinstance(modules[name], nn.Parameter)
        plan = None if calls_module else op.function(node.args, shapes, training, inplace=False)
        shares = not calls_module and (plan is None or not op.allocates)
        storage[name] = storage[fed[0]] if shares else name
        plans[name] = (op, fed, plan, shares, shapes, calls_module)

    # How many consumers read each storage; a view is not a reader, its readers are.
    readers: dict[str, int] = {}
    for name in order:
        _, fed, _, shares, _, _ = plans[name]
        if not shares:
            for src in fed:
                readers[storage[src]] = readers.get(storage[src], 0) + 1
    for out in outputs:
        readers[storage[out.node]] = readers.get(storage[out.node], 0) + 1

    steps, value_of = [], {INPUT: INPUT}
    for name in order:
        node = graph.nodes[name]
        op, fed, plan, _, shapes, calls_module = plans[name]
        fed = tuple(value_of[src] for src in fed)
        if calls_module:
            steps.append(Step(name, "module", name, fed, {}))
        elif plan is None:
            value_of[name] = fed[0]
            continue
        else:
            source = storage[node.inputs[0] if not op.fed_inputs else node.inputs[:op.fed_inputs][0]]
            producer = REGISTRY[graph.nodes[source].op] if source != INPUT else None
            # The first input may be overwritten when nothing else reads its memory (the
            # op decides whether it can use that: activations and a residual sum do, as
            # torchvision's do); in training, only where autograd keeps no copy of it.
            inplace = (producer is not None and readers.get(source) == 1
                       and (not training or not producer.output_saved_for_backward))
            # Asked again: the in-place choice is known only now that readers are counted.
            fn, kwargs = plan if not inplace else op.function(node.args, shapes, training, True)
            steps.append(Step(name, "function", fn, fed, kwargs, op.takes_list, name in modules))
        value_of[name] = name
    return Plan(tuple(steps), tuple(value_of.items()), tuple(value_of[o.node] for o in outputs))


def emit(plan: Plan) -> fx.Graph:
    """The fx graph of a plan."""
    g = fx.Graph()
    values = {INPUT: g.placeholder("x")}
    for step in plan.steps:
        args = [values[src] for src in step.fed]
        if step.kind == "module":
            value = g.create_node("call_module", step.name, tuple(args), {}, name=variable_name(step.name))
        else:
            if step.parameter:
                args.append(g.get_attr(step.name))
            call_args = (list(args),) if step.takes_list else tuple(args)
            value = g.create_node("call_function", step.target, call_args, step.kwargs,
                                  name=variable_name(step.name))
        value.meta["archspec_node"] = step.name
        values[step.name] = value
    results = [values[name] for name in plan.outputs]
    g.output(results[0] if len(results) == 1 else tuple(results))
    return g


def node_parts(net: nn.Module, graph) -> dict:
    """What each node of `graph` placed in the built `net`: its module or parameter."""
    parts = {}
    for name in graph.nodes:
        *scopes, leaf = name.split(".")
        parent = net
        for part in scopes:
            parent = parent._modules.get(part) if parent is not None else None
        if parent is not None:
            found = parent._modules.get(leaf, parent._parameters.get(leaf))
            if found is not None:
                parts[name] = found
    return parts


def spec_names(graph: fx.Graph) -> dict:
    """fx node -> the spec node it computes."""
    return {n: n.meta["archspec_node"] for n in graph.nodes if "archspec_node" in n.meta}
