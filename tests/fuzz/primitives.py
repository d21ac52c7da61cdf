"""Primitive ops for the generator: convolutions, batch norms, activations, dropouts,
linear layers and pools, with arguments (literals or expressions of the names in scope)
that fit the shape they receive, and the adaptive pools that fit one shape to another."""
from __future__ import annotations

from .choices import Choices
from .model import E, Node, ev, name_ref
from .rules import Invalid, op_rule, pair

ACTIVATIONS = ["relu", "relu6", "silu", "gelu", "sigmoid", "tanh"]
MAX_CHANNELS = 24
MAX_FEATURES = 24


def _ordered(args: dict, order: list) -> dict:
    return {k: args[k] for k in order if k in args}


class Primitives(Choices):
    def conv(self, env, shape, template=None):
        C, H, W = shape
        args = {}
        if self.chance(0.15):
            args["depthwise"] = True
            if self.chance(0.3):
                args["out"] = C * self.pick([1, 2])
            groups = C
        else:
            groups = 1
            if self.chance(0.25):
                groups = self.pick([d for d in range(1, C + 1) if C % d == 0])
            raw, _ = self.int_value(env, 1, max(MAX_CHANNELS, groups), ok=lambda v: v % groups == 0,
                                    prefer="out" if template else None,
                                    p_expr=0.7 if template and "out" in env else 0.35)
            args["out"] = raw
            if groups != 1 or self.chance(0.1):
                args["groups"] = groups
        use_k_arg = template and "k" in env and self.chance(0.5)
        if use_k_arg:
            args["k"] = name_ref("k", quote=self.chance(0.5))
            args["pad"] = E("${k // 2}", lambda e: e["k"] // 2, quote=self.chance(0.5))
        else:
            if self.chance(0.25):
                k = [self.int(1, 5), self.int(1, 5)]
            else:
                k = self.int(1, 5)
            args["k"] = k
            kh, kw = pair(k)
            if self.chance(0.6):
                if self.chance(0.25):
                    args["pad"] = [self.int(0, kh // 2 + 1), self.int(0, kw // 2 + 1)]
                else:
                    args["pad"] = self.int(0, max(kh, kw) // 2 + 1)
            if self.chance(0.15):
                args["dilation"] = self.pick([2, [1, 2], [2, 1], 1])
        self._stride(args, env, template, 0.3, [2, 1, 3, [1, 2], [2, 1]])
        if self.chance(0.3):
            args["bias"] = self.chance(0.5)
        args = _ordered(args, ["out", "k", "stride", "pad", "dilation", "groups", "depthwise", "bias"])
        node = Node("op", op="conv", args=args, flow=self.chance(0.7))
        try:
            op_rule("conv", {k: ev(v, env) for k, v in args.items()}, [shape])
        except Invalid:  # too big a window for this input: a 1x1 conv always fits
            for key in ("pad", "dilation"):
                args.pop(key, None)
            args["k"] = 1
        return node

    def activation(self, p_flow=None):
        op = self.pick(ACTIVATIONS)
        return Node("op", op=op, flow=True if p_flow is None else self.chance(p_flow))

    def bn(self):
        args = {}
        if self.chance(0.3):
            args["eps"] = self.pick([0.001, 0.0001, 0.00001])
        if self.chance(0.2):
            args["momentum"] = self.pick([0.1, 0.01, 0.3])
        if self.chance(0.15):
            args["affine"] = self.chance(0.5)
        return Node("op", op="bn", args=args, flow=self.chance(0.8))

    def dropout(self, env):
        args = {}
        if "drop" in env and self.chance(0.4):
            args["p"] = name_ref("drop")
        elif self.chance(0.7):
            args["p"] = self.pick([0.5, 0.0, 0.2, 0.25, 1.0])
        return Node("op", op="dropout", args=args, flow=True)

    def linear(self, env):
        if "num_classes" in env and self.chance(0.3):
            raw = name_ref("num_classes", quote=self.chance(0.5))
        else:
            raw, _ = self.int_value(env, 1, MAX_FEATURES)
        args = {"out": raw}
        if self.chance(0.25):
            args["bias"] = self.chance(0.5)
        return Node("op", op="linear", args=args, flow=self.chance(0.8))

    def pool(self, env, shape, template=None):
        op = self.pick(["maxpool", "avgpool"])
        k = [self.int(1, 4), self.int(1, 4)] if self.chance(0.2) else self.int(1, 4)
        args = {"k": k}
        kh, kw = pair(k)
        self._stride(args, env, template, 0.6, [1, 2, 3, [1, 2]])
        if self.chance(0.4):
            args["pad"] = self.int(0, min(kh, kw) // 2) if self.chance(0.8) else [kh // 2, kw // 2]
        if self.chance(0.35):
            args["ceil_mode"] = self.chance(0.7)
        if op == "avgpool" and self.chance(0.3):
            args["count_include_pad"] = self.chance(0.5)
        node = Node("op", op=op, args=args, flow=self.chance(0.8))
        try:
            op_rule(op, {k2: ev(v, env) for k2, v in args.items()}, [shape])
        except Invalid:
            args.clear()
            args["k"] = 1
        return node

    def _stride(self, args, env, template, p, options):
        """A `stride:` (with probability p): a block's `$stride` in a block body, or a literal."""
        if template and "stride" in env and self.chance(0.4):
            args["stride"] = name_ref("stride", quote=self.chance(0.5))
        elif self.chance(p):
            args["stride"] = self.pick(options)

    def fix_spatial(self, h, w):
        out = h if h == w and self.chance(0.5) else [h, w]
        return Node("op", op=self.pick(["adaptive_avgpool", "adaptive_maxpool"]), args={"out": out}, flow=True)
