"""Element-wise activations: stateless, applied in place where nothing else reads the input."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Op, register


def _activation(op_name: str, fn, supports_inplace: bool = True, doc: str = ""):
    class Activation(Op):
        name = op_name

        def function(self, a, shapes, training, inplace):
            return fn, ({"inplace": True} if inplace and supports_inplace else {})

    Activation.doc = doc
    Activation.__name__ = Activation.__qualname__ = f"{op_name.capitalize()}Op"
    return register(Activation)


_activation("relu", F.relu, doc="max(x, 0)")
_activation("relu6", F.relu6, doc="min(max(x, 0), 6)")
_activation("silu", F.silu, doc="x * sigmoid(x)")
_activation("gelu", F.gelu, supports_inplace=False, doc="Gaussian error linear unit")
_activation("sigmoid", torch.sigmoid, supports_inplace=False, doc="1 / (1 + exp(-x))")
_activation("tanh", torch.tanh, supports_inplace=False, doc="hyperbolic tangent")
