"""The op registry: each primitive op is declared once, here or in a sibling module.

An `Op` says which arguments it takes (with their JSON Schema and default), how
many inputs it joins, and its shape rule, parameter count, multiply-accumulates
and how it builds. Every stage looks ops up in `REGISTRY`; none of them branches
on an op's name, so adding an op means adding one class.

Shapes are per sample, without the batch dimension: (C, H, W) for images,
(F,) after flatten. Ops import torch inside `module` and `function` only, so
validating and summarising a spec never pays for importing it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # torch is imported only when something is built
    import torch.nn as nn


Shape = tuple


class OpError(Exception):
    """A problem with one node's arguments or input shapes; the caller adds the node."""

    def __init__(self, code: str, message: str, hint: str | None = None, arg: str | None = None):
        super().__init__(message)
        # `arg` names the argument at fault, so the error can point at the value written.
        self.code, self.message, self.hint, self.arg = code, message, hint, arg


REQUIRED = object()


@dataclass(frozen=True)
class Arg:
    kind: str  # one of ARG_KINDS
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple = ()


def _int_schema(minimum=None):
    s = {"type": "integer"}
    if minimum is not None:
        s["minimum"] = minimum
    return s


# kind -> (JSON Schema of a literal value, a checker/normaliser).
_PAIRS: dict = {}  # one tuple per distinct pair: graphs of 10,000s of nodes share them


def _pair(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        pair = (value, value)
    elif isinstance(value, list) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        pair = tuple(value)
    else:
        return None
    return _PAIRS.setdefault(pair, pair) if len(_PAIRS) < 4096 else pair


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bool(value):
    return value if isinstance(value, bool) else None


ARG_KINDS: dict[str, tuple[dict, Callable, str]] = {
    "int": (_int_schema(), _int, "an integer"),
    "pair": ({"oneOf": [_int_schema(), {"type": "array", "items": _int_schema(),
                                          "minItems": 2, "maxItems": 2}]},
             _pair, "an integer or a list of two integers"),
    "number": ({"type": "number"}, _number, "a number"),
    "bool": ({"type": "boolean"}, _bool, "true or false"),
    "choice": ({"type": "string"}, None, "one of the listed words"),
}

EXPRESSION_SCHEMA = {"type": "string", "pattern": r"\$"}


class Op:
    """Base class; subclasses set `name`, `args`, and override the rules they need."""

    name: str = ""
    doc: str = ""
    args: dict[str, Arg] = {}
    inputs: int | None = 1  # None: two or more
    # How many leading inputs the built forward receives; the rest only lend
    # their shape (a shortcut projection sizes itself after the body's output).
    fed_inputs: int | None = None

    def infer(self, a: dict, shapes: list[Shape]) -> Shape:
        return shapes[0]

    def params(self, a: dict, shapes: list[Shape], out: Shape) -> int:
        return 0

    def buffers(self, a: dict, shapes: list[Shape], out: Shape) -> tuple[int, int]:
        """Elements of the module's buffers: (floating point, int64), for memory estimates."""
        return 0, 0

    # False for ops whose output is a view or the input itself (no new storage).
    allocates: bool = True

    def macs(self, a: dict, shapes: list[Shape], out: Shape, params: int) -> int:
        """Multiply-accumulates per sample, torchinfo's definition: see docs."""
        return 0

    def module(self, a: dict, shapes: list[Shape], factory: dict) -> "nn.Module | None":
        """The module holding this node's weights, or None for a stateless op."""
        return None

    def function(self, a: dict, shapes: list[Shape], training: bool,
                 inplace: bool) -> tuple[Callable, dict] | None:
        """For stateless ops: the callable and keyword arguments the forward applies,
        or None where the op passes its input through (dropout in eval mode).
        `inplace` says the input has no other reader, so it may be overwritten."""
        raise NotImplementedError

    # -- argument handling shared by every op --------------------------------
    def normalise(self, given: dict) -> dict:
        """Defaults filled in and each value type-checked; raises OpError (E0304 for a
        missing argument, E0408 for a value of the wrong kind)."""
        out = {}
        for key, arg in self.args.items():
            if key not in given:
                if arg.default is REQUIRED:
                    raise OpError("E0304", f"op `{self.name}` needs argument `{key}`",
                                  f"`{key}`: {arg.doc}" if arg.doc else None)
                out[key] = None if arg.default is None else self.check_arg(key, arg.default)
                continue
            out[key] = self.check_arg(key, given[key])
        return out

    def check_arg(self, key: str, value):
        arg = self.args[key]
        if arg.kind == "choice":
            if value not in arg.choices:
                raise OpError("E0408", f"`{key}` of op `{self.name}` must be one of "
                              f"{', '.join(map(str, arg.choices))}, got {value!r}", arg=key)
            return value
        if value is None and arg.default is None:
            return None
        _, check, wanted = ARG_KINDS[arg.kind]
        result = check(value)
        if result is None:
            raise OpError("E0408", f"`{key}` of op `{self.name}` must be {wanted}, got {value!r}", arg=key)
        return result

    def arg_schema(self) -> dict:
        props = {}
        for key, arg in self.args.items():
            literal = dict(ARG_KINDS[arg.kind][0])
            if arg.kind == "choice":
                literal = {"enum": list(arg.choices)}
            options = [literal, EXPRESSION_SCHEMA]
            if arg.default is None:
                options.append({"type": "null"})
            props[key] = {"anyOf": options, "description": arg.doc}
        return props


REGISTRY: dict[str, Op] = {}


def register(cls):
    op = cls()
    assert op.name and op.name not in REGISTRY, op.name
    REGISTRY[op.name] = op
    return cls


def need_rank(op: Op, shape: Shape, rank: int, what: str = "input") -> None:
    if len(shape) != rank:
        layout = {3: "(C, H, W)", 1: "(features,)"}.get(rank, f"rank {rank}")
        hint = "add `{op: flatten}` before it" if rank == 1 else None
        raise OpError("E0407", f"op `{op.name}` needs a {layout} {what}, got {list(shape)}", hint)


def spatial_out(size: int, kernel: int, stride: int, pad: int, dilation: int = 1,
                ceil_mode: bool = False, axis: str = "H") -> int:
    """Output length of a sliding window, PyTorch's formula; errors say the arithmetic."""
    span = dilation * (kernel - 1) + 1
    padded = size + 2 * pad
    # In ceil mode PyTorch lets a window overhang the input; the size check below decides.
    if span > padded and not ceil_mode:
        raise OpError("E0404", f"kernel spans {span} along {axis} but the padded input is "
                      f"only {padded} ({size} + 2*{pad})",
                      "use a smaller kernel, more padding, or a larger input", arg="k")
    numerator = padded - span
    out = (-(-numerator // stride) if ceil_mode else numerator // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1  # PyTorch drops a last window that would start in the right padding
    if out < 1:
        formula = (f"ceil(({size} + 2*{pad} - {span}) / {stride}) + 1" if ceil_mode
                   else f"({size} + 2*{pad} - {span}) // {stride} + 1")
        raise OpError("E0403", f"output {axis} would be {out}: {formula}",
                      "the input is too small for this many downsampling steps")
    return out
