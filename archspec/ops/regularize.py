"""Regularisers that act only in training: stochastic depth."""
from __future__ import annotations

from .base import Arg, Example, Op, OpError
from .registry import register


@register
class StochasticDepth(Op):
    name = "stochastic_depth"
    doc = ("torchvision.ops.stochastic_depth: in training, zero the whole sample (`row`) or "
           "the whole batch (`batch`) with probability p and scale survivors by 1 / (1 - p); "
           "nothing at all in eval mode. Draws its noise by torchvision's calls, so one "
           "seed gives torchvision's result.")
    args = {
        "p": Arg("number", doc="probability of zeroing (a residual branch, in ConvNeXt and EfficientNet)"),
        "mode": Arg("choice", "row", "`row`: each sample on its own; `batch`: the whole batch at once",
                    choices=("row", "batch")),
    }
    allocates = False  # counted as nothing: eval mode has no stochastic depth at all
    output_saved_for_backward = False  # the product keeps the noise, not its output
    examples = (
        Example({"p": 0.5}, ((3, 4, 4),)),
        Example({"p": 0.2, "mode": "batch"}, ((5, 6),)),
        Example({"p": 0.0}, ((8,),)),
    )

    def infer(self, a, shapes):
        if not 0.0 <= a["p"] <= 1.0:
            raise OpError("E0408", f"stochastic_depth `p` must lie in [0, 1], got {a['p']}", arg="p")
        return shapes[0]

    def function(self, a, shapes, training, inplace):
        if not training or a["p"] == 0.0:
            return None
        from .functional import stochastic_depth

        return stochastic_depth, {"p": a["p"], "mode": a["mode"], **({"inplace": True} if inplace else {})}
