"""graph.py orders nodes itself; networkx's lexicographical_topological_sort is the reference."""
import random

import networkx as nx
import pytest

from archspec.diagnostics import SpecError
from archspec.graph import INPUT, Node, _topological_order, to_networkx


def _nodes(edges: dict) -> dict:
    return {name: Node(name, "relu", {}, tuple(inputs), None) for name, inputs in edges.items()}


def _reference(nodes: dict) -> list:
    rank = {name: i for i, name in enumerate(nodes)}
    rank[INPUT] = -1
    return [n for n in nx.lexicographical_topological_sort(to_networkx(nodes), key=rank.__getitem__) if n != INPUT]


@pytest.mark.parametrize("seed", range(20))
def test_order_is_networkx_lexicographical_order(seed):
    rng = random.Random(seed)
    names = [f"n{i}" for i in range(40)]
    # a DAG over a random order, written in another random order, so that `from:`s name later nodes
    edges = {name: [rng.choice([INPUT, *names[:i]]) for _ in range(rng.randint(1, 3))] for i, name in enumerate(names)}
    written = names[:]
    rng.shuffle(written)
    nodes = _nodes({name: edges[name] for name in written})
    assert _topological_order(nodes) == _reference(nodes)


def test_a_cycle_is_an_error():
    with pytest.raises(SpecError) as caught:
        _topological_order(_nodes({"a": [INPUT], "b": ["c"], "c": ["b"]}))
    assert caught.value.diagnostics[0].code == "E0307"
