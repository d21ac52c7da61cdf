"""Multi-head self-attention over a token sequence, laid out as torchvision's ViT."""
from __future__ import annotations

from .base import Arg, Example, Op, OpError
from .registry import register


def need_tokens(op: Op, shape) -> tuple[int, int]:
    """(L, D) of a token-sequence input; E0407 for any other rank."""
    if len(shape) != 2:
        raise OpError("E0407", f"op `{op.name}` needs an (L, D) token sequence, got {list(shape)}",
                      "a ViT flattens its patch grid (`{op: flatten, start: 2}`) and puts "
                      "the channels last (a permute)")
    return shape


@register
class Attention(Op):
    name = "attention"
    doc = ("Multi-head self-attention on an (L, D) sequence: nn.MultiheadAttention(D, heads, "
           "batch_first=True) called as attn(x, x, x, need_weights=False)[0], as torchvision's "
           "ViT encoder block does (keys in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias).")
    shape_rule = "the input's shape (L, D)"
    mac_rule = ("projections L*D*3D + L*D*D, plus the two attention products q k^T and "
                "weights v, L*L*D each")
    args = {
        "heads": Arg("int", doc="attention heads; must divide the model width D"),
        "dropout": Arg("number", 0.0, "dropout on the attention weights in training"),
        "bias": Arg("bool", True),
    }
    output_saved_for_backward = False  # the output projection does not keep its output
    examples = (
        Example({"heads": 2}, ((5, 8),)),
        Example({"heads": 3, "dropout": 0.1, "bias": False}, ((4, 12),)),
        Example({"heads": 1}, ((1, 6),)),
    )

    def _check(self, a, shape):
        _, dim = need_tokens(self, shape)
        if a["heads"] < 1:
            raise OpError("E0408", f"attention `heads` must be positive, got {a['heads']}", arg="heads")
        if dim % a["heads"]:
            raise OpError("E0408", f"attention width {dim} is not divisible by {a['heads']} heads",
                          "heads must divide the last dimension of the input", arg="heads")
        if not 0.0 <= a["dropout"] <= 1.0:
            raise OpError("E0408", f"attention `dropout` must lie in [0, 1], got {a['dropout']}", arg="dropout")
        return shape

    def infer(self, a, shapes):
        return self._check(a, shapes[0])

    def params(self, a, shapes, out):
        dim = shapes[0][1]
        return 4 * dim * dim + (4 * dim if a["bias"] else 0)

    def macs(self, a, shapes, out):
        length, dim = shapes[0]
        # heads x (L x L x D/heads) per product: the head count cancels.
        return length * dim * 3 * dim + length * dim * dim + 2 * length * length * dim

    def module(self, a, shapes, factory):
        cls, args, kwargs = self.module_source(a, shapes)
        return cls(*args, **kwargs, **factory)

    def module_source(self, a, shapes):
        from ._transformer import SelfAttention

        length, dim = self._check(a, shapes[0])
        return SelfAttention, (dim, a["heads"]), {"dropout": a["dropout"], "bias": a["bias"]}
