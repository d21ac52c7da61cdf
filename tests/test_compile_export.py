"""Compiled networks trace whole: torch.compile(fullgraph=True) and torch.export.

The eager backend runs TorchDynamo's full tracing (where graph breaks happen) without
inductor's code generation, which is minutes on a small CPU; benchmarks/ covers
inductor for every shipped spec.
"""
import pytest
import torch

import archspec
from conftest import SPECS


@pytest.mark.parametrize("training", [False, True])
def test_torch_compile_fullgraph_has_no_graph_break(training):
    torch._dynamo.reset()
    net = archspec.build(SPECS / "googlenet_cifar.yaml").train(training)
    x = torch.randn(2, 3, 32, 32)
    compiled = torch.compile(net, fullgraph=True, backend="eager")
    torch.manual_seed(1)
    got = compiled(x)
    torch.manual_seed(1)
    want = net(x)
    got, want = (got, want) if training else ((got,), (want,))
    assert len(got) == len(want) == (3 if training else 1)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("training", [False, True])
def test_torch_export(training):
    net = archspec.build(SPECS / "resnet18.yaml").train(training)
    x = torch.randn(2, 3, 64, 64)
    exported = torch.export.export(net, (x,))
    if not training:
        assert torch.allclose(exported.module()(x), net(x), atol=1e-5)
    # The exported program's parameters are the network's, under the same names.
    assert set(exported.state_dict) >= {name for name, _ in net.named_parameters()}
