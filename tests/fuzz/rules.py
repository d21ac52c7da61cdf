"""PyTorch's shape and parameter rules for the primitive ops, written from its
documented formulas (not from archspec's code). A spec the rules refuse is `Invalid`."""
from __future__ import annotations

import math


class Invalid(Exception):
    """The model finds the spec invalid (the generator then picks something else)."""


def pair(v):
    if isinstance(v, bool):
        raise Invalid(f"not a pair: {v!r}")
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool)
                                                            for x in v):
        return tuple(v)
    raise Invalid(f"not a pair: {v!r}")


def conv_len(n, k, s, p, d):
    if k < 1 or s < 1 or d < 1 or p < 0:
        raise Invalid("conv window")
    span = d * (k - 1) + 1
    if n + 2 * p < span:
        raise Invalid("conv kernel larger than the padded input")
    return (n + 2 * p - span) // s + 1


def pool_len(n, k, s, p, ceil):
    """PyTorch's pooling_output_shape."""
    if k < 1 or s < 1 or p < 0 or p > k // 2:
        raise Invalid("pool window")
    out = (n + 2 * p - k + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= n + p:
        out -= 1
    if out < 1:
        raise Invalid("pool output too small")
    return out


def op_rule(op: str, a: dict, shapes: list):
    """(output shape, parameters) of a primitive op, from PyTorch's rules."""
    x = shapes[0]

    def need3():
        if len(x) != 3:
            raise Invalid(f"{op} needs (C, H, W)")

    if op == "conv":
        need3()
        cin = x[0]
        depthwise = a.get("depthwise", False)
        groups = cin if depthwise else a.get("groups", 1)
        out = a.get("out")
        if out is None:
            out = cin if depthwise else None
        if out is None or not isinstance(out, int) or out < 1 or groups < 1:
            raise Invalid("conv out/groups")
        if cin % groups or out % groups:
            raise Invalid("conv groups")
        (kh, kw), (sh, sw) = pair(a["k"]), pair(a.get("stride", 1))
        (ph, pw), (dh, dw) = pair(a.get("pad", 0)), pair(a.get("dilation", 1))
        shape = (out, conv_len(x[1], kh, sh, ph, dh), conv_len(x[2], kw, sw, pw, dw))
        return shape, out * (cin // groups) * kh * kw + (out if a.get("bias", True) else 0)
    if op == "bn":
        if len(x) not in (1, 3):
            raise Invalid("bn rank")
        return x, (2 * x[0] if a.get("affine", True) else 0)
    if op in ("relu", "relu6", "silu", "gelu", "sigmoid", "tanh", "identity"):
        return x, 0
    if op == "dropout":
        if not 0 <= a.get("p", 0.5) <= 1:
            raise Invalid("dropout p")
        return x, 0
    if op in ("maxpool", "avgpool"):
        need3()
        k = pair(a["k"])
        s = pair(a["stride"]) if a.get("stride") is not None else k
        p = pair(a.get("pad", 0))
        ceil = a.get("ceil_mode", False)
        return (x[0], pool_len(x[1], k[0], s[0], p[0], ceil), pool_len(x[2], k[1], s[1], p[1], ceil)), 0
    if op in ("adaptive_avgpool", "adaptive_maxpool"):
        need3()
        oh, ow = pair(a.get("out", 1))
        if oh < 1 or ow < 1:
            raise Invalid("adaptive out")
        return (x[0], oh, ow), 0
    if op == "flatten":
        return (math.prod(x),), 0
    if op == "linear":
        if len(x) != 1 or a["out"] < 1:
            raise Invalid("linear")
        return (a["out"],), x[0] * a["out"] + (a["out"] if a.get("bias", True) else 0)
    if op == "concat":
        return concat_rule(shapes, a.get("dim", 1)), 0
    if op == "add":
        if any(s != x for s in shapes):
            raise Invalid("add shapes")
        return x, 0
    if op == "project":
        x, ref = shapes
        if len(x) != 3 or len(ref) != 3:
            raise Invalid("project rank")
        if x == ref:
            return ref, 0
        if x[1] % ref[1] or x[2] % ref[2] or x[1] // ref[1] != x[2] // ref[2]:
            raise Invalid("project stride")
        return ref, x[0] * ref[0] + (ref[0] if a.get("bias", False) else 0) + 2 * ref[0]
    raise Invalid(f"unknown op {op}")


def concat_rule(shapes, dim):
    axis = dim - 1
    rank = len(shapes[0])
    if not 0 <= axis < rank:
        raise Invalid("concat dim")
    for s in shapes[1:]:
        if len(s) != rank or any(u != v for i, (u, v) in enumerate(zip(s, shapes[0])) if i != axis):
            raise Invalid("concat shapes")
    out = list(shapes[0])
    out[axis] = sum(s[axis] for s in shapes)
    return tuple(out)
