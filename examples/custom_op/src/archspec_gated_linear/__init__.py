"""An archspec op that archspec does not ship: a gated linear unit.

    y = a * silu(b),  where [a, b] = x W + c splits the last dimension in two

(SwiGLU, Shazeer 2020, "GLU Variants Improve Transformer"). One linear layer
computes both halves, so the weights sit in one module, `proj`, under the node's
name: a node `mix` holds `mix.proj.weight` and `mix.proj.bias`.

Importing this module does not import torch: archspec reads the declaration to
validate and summarise specs, and torch is needed only to build.
"""
from __future__ import annotations

import math

from archspec import Arg, Example, Op, OpError


class GatedLinear(Op):
    name = "gated_linear"
    doc = "Gated linear unit on the last dimension: a * silu(b), [a, b] = x W + c."
    shape_rule = "the input's shape with the last dimension replaced by out"
    mac_rule = "in x 2*out x positions (the one projection; the gate's product is not a MAC)"
    args = {"out": Arg("int", doc="output features"), "bias": Arg("bool", True)}
    output_saved_for_backward = False
    examples = (Example({"out": 6}, ((10,),)), Example({"out": 4, "bias": False}, ((5, 8),)))

    def infer(self, a, shapes):
        if a["out"] < 1:
            raise OpError("E0408", f"gated_linear `out` must be positive, got {a['out']}", arg="out")
        return (*shapes[0][:-1], a["out"])

    def params(self, a, shapes, out):
        return shapes[0][-1] * 2 * a["out"] + (2 * a["out"] if a["bias"] else 0)

    def macs(self, a, shapes, out):
        return math.prod(shapes[0]) * 2 * a["out"]

    def module(self, a, shapes, factory):
        from ._module import GatedLinearModule

        return GatedLinearModule(shapes[0][-1], a["out"], a["bias"], **factory)
