"""Learnable tokens of a vision transformer, held as bare parameters at the node's
name as torchvision's ViT holds them (`class_token`, `encoder.pos_embedding`)."""
from __future__ import annotations

import operator

from .attention import need_tokens
from .base import Example, Op
from .registry import register


@register
class ClassToken(Op):
    name = "class_token"
    doc = ("Prepend a learnable token to an (L, D) sequence: torchvision ViT's "
           "`class_token`, a (1, 1, D) parameter initialised to zeros.")
    shape_rule = "(L + 1, D)"
    output_saved_for_backward = False  # torch.cat keeps nothing for its backward
    examples = (Example({}, ((4, 6),)), Example({}, ((1, 3),)))

    def infer(self, a, shapes):
        length, dim = need_tokens(self, shapes[0])
        return (length + 1, dim)

    def params(self, a, shapes, out):
        return shapes[0][1]

    def module(self, a, shapes, factory):
        from ._transformer import class_token

        return class_token(need_tokens(self, shapes[0])[1], factory)

    def function(self, a, shapes, training, inplace):
        from ._transformer import prepend_token

        return prepend_token, {}


@register
class PosEmbedding(Op):
    name = "pos_embedding"
    doc = ("Add a learnable position embedding to an (L, D) sequence: torchvision ViT's "
           "`encoder.pos_embedding`, a (1, L, D) parameter drawn from N(0, 0.02^2).")
    output_saved_for_backward = False  # a sum keeps nothing for its backward
    examples = (Example({}, ((5, 6),)),)

    def infer(self, a, shapes):
        return need_tokens(self, shapes[0])

    def params(self, a, shapes, out):
        return shapes[0][0] * shapes[0][1]

    parameter_draw = ("normal_", {"std": 0.02})  # torchvision's Encoder: torch.empty(...).normal_(std=0.02)

    def module(self, a, shapes, factory):
        import torch
        import torch.nn as nn

        method, kwargs = self.parameter_draw
        return nn.Parameter(getattr(torch.empty(1, *need_tokens(self, shapes[0]), **factory), method)(**kwargs))

    def function(self, a, shapes, training, inplace):
        # Called with (x, parameter): reads `x + pos_embedding` in the generated forward.
        return (operator.iadd if inplace else operator.add), {}
