"""Element-wise activations: stateless, any rank, applied in place where nothing else
reads the input; and softmax along one dimension."""
from __future__ import annotations

import importlib

from .base import Arg, Example, Op
from .join import batched_axis
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


@register
class Hardswish(_Activation):
    name, doc, fn = "hardswish", "x * relu6(x + 3) / 6 (MobileNetV3)", "torch.nn.functional.hardswish"
    output_saved_for_backward = False  # its backward reads the input, not the output


@register
class Hardsigmoid(_Activation):
    name, fn = "hardsigmoid", "torch.nn.functional.hardsigmoid"
    doc = "relu6(x + 3) / 6 (MobileNetV3's squeeze-excitation gate)"
    output_saved_for_backward = False  # its backward reads the input, not the output


@register
class Softmax(Op):
    name = "softmax"
    doc = "exp(x) / sum(exp(x)) along one dimension (torch.softmax)."
    args = {"dim": Arg("int", -1, "batched dimension to normalise along (the batch is 0; -1 the last)")}
    examples = (Example({}, ((3, 5, 5),)), Example({"dim": 1}, ((4, 6),)), Example({}, ((7,),)))

    def infer(self, a, shapes):
        batched_axis(self, a["dim"], len(shapes[0]))
        return shapes[0]

    def function(self, a, shapes, training, inplace):
        import torch

        return torch.softmax, {"dim": a["dim"]}
