"""The op registry: every op proves itself from its own declared examples, and
registration refuses declarations that would fail later."""
import pytest
import torch

import archspec
from archspec import Arg, Example, Op, RegistrationError, SpecError
from archspec.ops import REGISTRY
from op_examples import all_examples, check_example, example_inputs_registered

EXAMPLES = all_examples()


@pytest.fixture(scope="module", autouse=True)
def _example_inputs():
    with example_inputs_registered():
        yield


@pytest.mark.parametrize("name, index", EXAMPLES, ids=[f"{n}-{i}" for n, i in EXAMPLES])
def test_every_op_example_agrees_with_pytorch(name, index):
    op = REGISTRY[name]
    check_example(op, op.examples[index])


def test_every_builtin_op_has_examples_and_docs():
    ops = REGISTRY.builtin()
    assert len(ops) >= 15
    for name, op in ops.items():
        assert op.examples, name
        assert op.doc, name
        assert all(arg.doc or key in ("bias", "eps", "momentum", "affine", "stride", "dilation", "groups",
                                      "pad", "ceil_mode", "count_include_pad", "start", "end", "dim",
                                      "p", "out", "inplace")
                   for key, arg in op.args.items()), name


class Doubling(Op):
    name = "doubling"
    doc = "2 x"
    examples = (Example({}, ((3, 4),)),)

    def function(self, a, shapes, training, inplace):
        return torch.mul, {"other": 2.0}


@pytest.fixture
def doubling():
    op = archspec.register_op(Doubling)
    yield op
    REGISTRY.remove("doubling")


def test_a_registered_op_is_usable_at_once(doubling):
    # No file to regenerate: the schema is built from the registry.
    spec = archspec.loads("input: [3, 4]\ngraph:\n  twice: {op: doubling}\n")
    net = archspec.build(spec)
    x = torch.randn(2, 3, 4)
    assert torch.equal(net(x), 2 * x)
    summary = archspec.summarize(spec)
    assert [(r.name, r.op) for r in summary.rows] == [("twice", "doubling")]


def test_a_registered_op_gets_did_you_mean(doubling):
    with pytest.raises(SpecError) as err:
        archspec.loads("input: [3, 4]\ngraph:\n  twice: {op: dubling}\n")
    (d,) = err.value.diagnostics
    assert d.code == "E0301" and d.hint == "did you mean `doubling`?" and (d.pos.line, d.pos.col) == (3, 15)


def test_registration_refuses_a_duplicate_name(doubling):
    with pytest.raises(RegistrationError, match="an op named `doubling` is already registered"):
        archspec.register_op(Doubling)
    # A notebook cell run twice may declare its op again ...
    archspec.register_op(Doubling, replace=True)

    class FakeConv(Doubling):
        name = "conv"
    # ... but never replace a built-in one.
    with pytest.raises(RegistrationError, match="already registered by archspec"):
        archspec.register_op(FakeConv, replace=True)


@pytest.mark.parametrize("change, message", [
    ({"function": None}, "builds neither a module nor a function"),
    ({"examples": ()}, "declares no `examples`"),
    ({"name": "Bad-Name"}, "needs a `name` of lowercase letters"),
    ({"args": {"k": Arg("tuple")}}, "argument `k` has unknown kind 'tuple'"),
    ({"args": {"mode": Arg("choice", "a")}}, "choice argument `mode` lists no choices"),
    ({"args": {"k": Arg("int")}}, "an example's arguments are wrong: op `incomplete` needs argument `k`"),
])
def test_registration_refuses_incomplete_declarations(change, message):
    namespace = {"name": "incomplete", "examples": (Example({}, ((3,),)),),
                 "function": lambda self, a, shapes, training, inplace: None}
    namespace.update(change)
    if namespace["function"] is None:
        del namespace["function"]
    cls = type("Incomplete", (Op,), namespace)
    with pytest.raises(RegistrationError, match=message):
        archspec.register_op(cls)
    assert "incomplete" not in REGISTRY.available()


class Scaled(Op):
    """A learnable per-channel factor held as a bare parameter at the node's name."""

    name = "scaled_for_test"
    doc = "x * gamma"
    examples = (Example({}, ((3, 4, 4),)),)

    def params(self, a, shapes, out):
        return shapes[0][0]

    def module(self, a, shapes, factory):
        import torch.nn as nn

        return nn.Parameter(torch.full((shapes[0][0], 1, 1), 0.5, **factory))

    def function(self, a, shapes, training, inplace):
        return torch.mul, {}


def test_an_op_may_hold_a_bare_parameter_at_its_node_name():
    archspec.register_op(Scaled, replace=True)
    try:
        spec = archspec.loads("input: [3, 4, 4]\ngraph:\n  conv: {op: conv, out: 3, k: 1}\n"
                              "  gamma: {op: scaled_for_test}\n")
        net = archspec.build(spec, verify=True)
        # A module lists its own parameters before its children's, as torchvision's ViT does.
        assert list(net.state_dict()) == ["gamma", "conv.weight", "conv.bias"]
        x = torch.randn(2, 3, 4, 4)
        assert torch.allclose(net(x), net.conv(x) * 0.5)
        check_example(REGISTRY["scaled_for_test"], Scaled.examples[0])
    finally:
        REGISTRY.remove("scaled_for_test")


def test_ops_page_lists_every_op_as_the_registry_declares_it():
    import subprocess
    import sys

    from conftest import ROOT

    result = subprocess.run([sys.executable, str(ROOT / "docs" / "ops_doc.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    page = (ROOT / "docs" / "ops.md").read_text()
    for name in REGISTRY.builtin():
        assert f"\n### {name}\n" in page, name
