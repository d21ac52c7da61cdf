"""The forward pass of an inferred graph as a torch.fx graph, in one mode.

The builder turns it into Python source (the generated forward), `verify` runs it on
the meta device node by node, and tools that need the real tensors of every spec
node (the property tests) interpret it. Each fx node is named after the spec node it
computes (`layer1.0.relu1` becomes `layer1_0_relu1`) and carries that name in
`meta["archspec_node"]`, so the generated code reads beside the YAML.
"""
from __future__ import annotations

import re

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
    graph = inferred.graph
    order = graph.needed_for(training)
    outputs = graph.active_outputs(training)
    g = fx.Graph()
    values = {INPUT: g.placeholder("x")}
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
        plans[name] = (op, fed, plan, shares, shapes)

    # How many consumers read each storage; a view is not a reader, its readers are.
    readers: dict[str, int] = {}
    for name in order:
        _, fed, _, shares, _ = plans[name]
        if not shares:
            for src in fed:
                readers[storage[src]] = readers.get(storage[src], 0) + 1
    for out in outputs:
        readers[storage[out.node]] = readers.get(storage[out.node], 0) + 1

    for name in order:
        node = graph.nodes[name]
        op, fed, plan, _, shapes = plans[name]
        args = [values[src] for src in fed]
        if name in modules and isinstance(modules[name], nn.Parameter):
            args.append(g.get_attr(name))
        if name in modules and not isinstance(modules[name], nn.Parameter):
            value = g.create_node("call_module", name, tuple(args), {}, name=variable_name(name))
        elif plan is None:
            values[name] = args[0]
            continue
        else:
            source = storage[fed[0]]
            producer = REGISTRY[graph.nodes[source].op] if source != INPUT else None
            # The first input may be overwritten when nothing else reads its memory (the
            # op decides whether it can use that: activations and a residual sum do, as
            # torchvision's do); in training, only where autograd keeps no copy of it.
            inplace = (producer is not None and readers.get(source) == 1
                       and (not training or not producer.output_saved_for_backward))
            # Asked again: the in-place choice is known only now that readers are counted.
            fn, kwargs = plan if not inplace else op.function(node.args, shapes, training, True)
            call_args = (list(args),) if op.takes_list else tuple(args)
            value = g.create_node("call_function", fn, call_args, kwargs, name=variable_name(name))
        value.meta["archspec_node"] = name
        values[name] = value
    results = [values[o.node] for o in outputs]
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
