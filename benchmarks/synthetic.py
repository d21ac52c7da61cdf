"""Synthetic specs of a chosen size, and a widened ResNet of more than 10 billion parameters."""
from __future__ import annotations


def chain_spec(nodes: int) -> str:
    """A spec expanding to about `nodes` nodes: residual units of conv, bn, relu, add."""
    units = max(1, nodes // 4)
    return f"""
archspec: 1
name: synthetic_{nodes}
input: [8, 16, 16]
blocks:
  unit:
    body:
      sum:
        add:
          - conv: {{op: conv, out: 8, k: 3, pad: 1, bias: false}}
            bn: {{op: bn}}
            relu: {{op: relu}}
          - {{}}
graph:
  units: {{repeat: {units}, block: unit}}
"""


def wide_resnet_text(width: int = 1536) -> str:
    """ResNet-50 with 24x the stem width: about 570x the parameters (> 10 billion)."""
    return f"""
archspec: 1
extends: {{parent}}
name: resnet50_x{width // 64}
args: {{width: {width}}}
"""
