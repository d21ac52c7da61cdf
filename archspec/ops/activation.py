"""Element-wise activations: stateless, any rank, applied in place where nothing else
reads the input."""
from __future__ import annotations

import importlib

from .base import Example, Op
from .registry import register

_ANY = (Example({}, ((3, 5, 5),)), Example({}, ((7,),)))


class _Activation(Op):
    fn = ""                  # the function, as `module.attribute` below torch
    has_inplace = True       # it takes `inplace=True`
    examples = _ANY

    def function(self, a, shapes, training, inplace):
        module_path, _, attr = self.fn.rpartition(".")
        fn = getattr(importlib.import_module(module_path), attr)
        return fn, ({"inplace": True} if inplace and self.has_inplace else {})


@register
class ReLU(_Activation):
    name, doc, fn = "relu", "max(x, 0)", "torch.nn.functional.relu"


@register
class ReLU6(_Activation):
    name, doc, fn = "relu6", "min(max(x, 0), 6)", "torch.nn.functional.relu6"


@register
class SiLU(_Activation):
    name, doc, fn = "silu", "x * sigmoid(x) (swish)", "torch.nn.functional.silu"


@register
class GELU(_Activation):
    name, doc, fn, has_inplace = "gelu", "Gaussian error linear unit (exact erf form)", "torch.nn.functional.gelu", False


@register
class Sigmoid(_Activation):
    name, doc, fn, has_inplace = "sigmoid", "1 / (1 + exp(-x))", "torch.sigmoid", False


@register
class Tanh(_Activation):
    name, doc, fn, has_inplace = "tanh", "hyperbolic tangent", "torch.tanh", False
