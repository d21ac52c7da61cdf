"""Running an op's declared examples against PyTorch (used by test_op_registry.py and
test_plugins.py).

For one example: the example becomes a one-op spec, checked by the schema (archspec's
and jsonschema alone), compiled, built and run in training and eval mode; the static
shape, parameter count and MACs must equal what PyTorch reports for the same
computation (the real output's shape, the module's parameters, FlopCounterMode's
flops / 2), and a meta-device forward must agree with every inferred shape.

An op with several inputs takes its first from the network input and the others from
`example_input` nodes, a test-only op that produces a random tensor of a given shape.
"""
from __future__ import annotations

import json
from contextlib import contextmanager

import jsonschema
import torch
from torch.utils.flop_counter import FlopCounterMode

import archspec
from archspec import Arg, Example, Op
from archspec.ops import REGISTRY
from archspec.schema import build_schema
from archspec.spec import loads

BATCH = 2


class ExampleInput(Op):
    """A random tensor of `shape` per sample (the batch size is read from its input)."""

    name = "example_input"
    args = {"shape": Arg("ints")}
    examples = (Example({"shape": [2, 3]}, ((4,),)),)

    def infer(self, a, shapes):
        return tuple(a["shape"])

    def function(self, a, shapes, training, inplace):
        return random_like_batch, {"shape": tuple(a["shape"])}


def random_like_batch(x, shape):
    return torch.randn(x.shape[0], *shape, device=x.device, dtype=x.dtype)


@contextmanager
def example_inputs_registered():
    archspec.register_op(ExampleInput, replace=True)
    try:
        yield
    finally:
        REGISTRY.remove("example_input")


def example_document(op: Op, example: Example) -> dict:
    node = {"op": op.name, **example.args}
    graph = {}
    if len(example.inputs) > 1:
        for index, shape in enumerate(example.inputs[1:], start=1):
            graph[f"extra{index}"] = {"op": "example_input", "shape": list(shape), "from": "input"}
        node["from"] = ["input"] + [f"extra{i}" for i in range(1, len(example.inputs))]
    graph["node"] = node
    return {"archspec": 1, "name": f"{op.name}_example", "input": list(example.inputs[0]), "graph": graph}


def check_example(op: Op, example: Example) -> None:
    document = example_document(op, example)
    # The schema accepts it, archspec's fast path and the reference validator alike.
    jsonschema.Draft202012Validator(build_schema()).validate(document)
    spec = loads(json.dumps(document), name=f"<{op.name} example>")

    compiled = archspec.compile_spec(spec)
    facts = compiled.inferred.facts["node"]
    net = archspec.build(spec, verify=True)  # verify: a meta-device forward agrees with each shape

    x = torch.randn(BATCH, *example.inputs[0])
    for training in (True, False):
        net.train(training)
        with torch.no_grad():
            out = net(x.clone())
        assert tuple(out.shape) == (BATCH, *facts.shape), (op.name, example, training, out.shape)

    params = sum(p.numel() for p in net.parameters())
    assert facts.params == params, (op.name, example.args, facts.params, params)

    net.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x)
    assert facts.macs * BATCH == counter.get_total_flops() // 2, (op.name, example.args, facts.macs)


def all_examples():
    """(op name, example index) for every op and example registered now."""
    return [(name, index) for name, op in REGISTRY.everything().items() if name != "example_input"
            for index in range(len(op.examples))]
