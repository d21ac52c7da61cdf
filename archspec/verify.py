"""Verification: a forward on the meta device must produce every inferred shape.

The meta device computes shapes without data, so this runs the real PyTorch ops of
the built module at no cost and compares each node's tensor to static inference.
A disagreement is a bug in archspec's shape rules and is reported naming the node.
"""
from __future__ import annotations

import torch
import torch.fx as fx

from .builder import build_module
from .forward import forward_graph, node_parts, spec_names
from .diagnostics import Diagnostic, SpecError
from .infer import InferredGraph

VERIFY_BATCH = 2  # batch norm in training mode needs more than one value per channel


def verify(inferred: InferredGraph, name: str = "network") -> None:
    net = build_module(inferred, name, device="meta")
    parts = node_parts(net, inferred.graph)
    problems, reported = [], set()
    for training in (True, False):
        net.train(training)
        graph = forward_graph(inferred, parts, training)
        seen = {}

        class Recorder(fx.Interpreter):
            def run_node(self, n):
                result = super().run_node(n)
                if n.op in ("call_module", "call_function") and isinstance(result, torch.Tensor):
                    seen[n] = tuple(result.shape[1:])
                return result

        gm = fx.GraphModule(net, graph)
        x = torch.empty((VERIFY_BATCH, *inferred.graph.input_shape), device="meta")
        Recorder(gm).run(x)
        names = spec_names(graph)
        for fx_node, shape in seen.items():
            spec_name = names.get(fx_node)
            if spec_name is None or spec_name in reported:
                continue
            expected = inferred.facts[spec_name].shape
            if shape != expected:
                reported.add(spec_name)  # once, though both modes run it
                problems.append(Diagnostic(
                    "E0704", f"internal error: `{spec_name}` was inferred as {list(expected)} but "
                    f"PyTorch computes {list(shape)}", inferred.graph.nodes[spec_name].pos,
                    "this is a bug in archspec's shape rules; please report it with the spec"))
    if problems:
        raise SpecError(problems)
