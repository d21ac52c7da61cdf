"""Element-wise activations: stateless, applied in place where nothing else reads the input."""
from __future__ import annotations

from .base import Op, register


def _activation(op_name: str, fn_path: str, supports_inplace: bool = True, doc: str = ""):
    """`fn_path`: where the function lives, as `module.attribute` below torch."""
    module_path, _, attr = fn_path.rpartition(".")

    class Activation(Op):
        name = op_name

        def function(self, a, shapes, training, inplace):
            import importlib

            fn = getattr(importlib.import_module(module_path), attr)
            return fn, ({"inplace": True} if inplace and supports_inplace else {})

    Activation.doc = doc
    Activation.__name__ = Activation.__qualname__ = f"{op_name.capitalize()}Op"
    return register(Activation)


_activation("relu", "torch.nn.functional.relu", doc="max(x, 0)")
_activation("relu6", "torch.nn.functional.relu6", doc="min(max(x, 0), 6)")
_activation("silu", "torch.nn.functional.silu", doc="x * sigmoid(x)")
_activation("gelu", "torch.nn.functional.gelu", supports_inplace=False, doc="Gaussian error linear unit")
_activation("sigmoid", "torch.sigmoid", supports_inplace=False, doc="1 / (1 + exp(-x))")
_activation("tanh", "torch.tanh", supports_inplace=False, doc="hyperbolic tangent")
