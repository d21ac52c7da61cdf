"""Verification: inferred shapes against a meta-device forward, for every shipped spec."""
import pytest

import archspec
from archspec import SpecError
from archspec.ops import REGISTRY
from conftest import SPECS


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_spec_verifies(path):
    archspec.build(path, verify=True, device="meta")


def test_a_wrong_shape_rule_is_reported_naming_the_node(monkeypatch):
    conv = REGISTRY["conv"]
    original = type(conv).infer

    def off_by_one(self, a, shapes):
        c, h, w = original(self, a, shapes)
        return (c, h + 1, w)

    monkeypatch.setattr(type(conv), "infer", off_by_one)
    spec = archspec.loads("input: [3, 8, 8]\ngraph:\n  first: {op: conv, out: 4, k: 3}\n")
    with pytest.raises(SpecError) as err:
        archspec.build(spec, verify=True)
    assert err.value.code == "E0704"
    assert "`first` was inferred as [4, 7, 6] but PyTorch computes [4, 6, 6]" in str(err.value)
