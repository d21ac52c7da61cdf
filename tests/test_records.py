"""archspec/records.py: the record classes that stand in for frozen dataclasses."""
import copy
import pickle

import pytest

from archspec.diagnostics import Diagnostic, Position
from archspec.graph import Node
from archspec.records import Factory, as_dict, record, replace


@record
class Pair:
    left: int
    right: int = 0
    notes: dict = Factory(dict)


def test_fields_defaults_and_factories():
    pair = Pair(1)
    assert (pair.left, pair.right, pair.notes) == (1, 0, {})
    assert Pair(1).notes is not Pair(1).notes  # a default made per instance, as default_factory does
    assert Pair(1, right=2, notes={"a": 1}).notes == {"a": 1}
    with pytest.raises(TypeError):
        Pair()  # a field without a default is required


def test_equality_hash_and_repr_follow_the_fields():
    assert Position("a.yaml", 1, 2) == Position("a.yaml", 1, 2)
    assert Position("a.yaml", 1, 2) != Position("a.yaml", 1, 3)
    assert Position("a.yaml", 1, 2) != ("a.yaml", 1, 2)
    assert len({Position("a.yaml", 1, 2), Position("a.yaml", 1, 2)}) == 1
    assert repr(Position("a.yaml", 1, 2)) == "Position(file='a.yaml', line=1, col=2)"


def test_frozen_records_refuse_changes():
    pos = Position("a.yaml", 1, 2)
    with pytest.raises(AttributeError):
        pos.line = 3
    with pytest.raises(AttributeError):
        del pos.line
    mutable = record(frozen=False)(type("Mutable", (), {"__annotations__": {"x": "int"}}))(1)
    mutable.x = 2
    assert mutable.x == 2


def test_replace_and_as_dict():
    d = Diagnostic("E0101", "bad", Position("a.yaml", 1, 2))
    changed = replace(d, hint="fix it")
    assert (changed.code, changed.hint, d.hint) == ("E0101", "fix it", None)
    assert as_dict(d)["pos"] == {"file": "a.yaml", "line": 1, "col": 2}


def test_slotted_records_copy_and_pickle():
    node = Node("conv1", "conv", {"out": 8}, ("input",), Position("a.yaml", 3, 5))
    assert not hasattr(node, "__dict__")  # slots: no per-node dict in graphs of many nodes
    assert node.arg_pos == {} and node.frozen is False
    assert pickle.loads(pickle.dumps(node)) == node
    assert copy.deepcopy(node) == node and copy.copy(node) == node
