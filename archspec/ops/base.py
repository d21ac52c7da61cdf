"""What an op is: its arguments, its rules, its capabilities and its examples.

An `Op` subclass declares everything every stage needs to know about one primitive
operation, in one place:

- `args`: the arguments a spec may write, each an `Arg` of a kind in `ARG_KINDS`;
  the JSON Schema of a node using the op is generated from them;
- the rules: `infer` (output shape), `params`, `buffers`, `macs`, each pure
  arithmetic on per-sample shapes;
- how it runs: `module` (an nn.Module holding weights, placed at the node's name)
  or `function` (a stateless callable for the generated forward);
- capabilities the builder and summary ask about (`allocates`,
  `output_saved_for_backward`, `takes_list`, `join`);
- `examples`: small argument sets and input shapes that the registry test builds,
  runs and measures against PyTorch, so an op without examples fails the suite.

Shapes are per sample, without the batch dimension: (C, H, W) for images, (C, L) for
signals, (C, T, H, W) for video, (L, D) for token sequences, (F,) for vectors. Ops
import torch only inside `module` and `function`, so validating and summarising a
spec never pays for importing it.
"""
from __future__ import annotations

from collections.abc import Callable

from ..records import Factory, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (PEP 781)
if TYPE_CHECKING:  # torch is imported only when something is built
    from typing import Any

    import torch.nn as nn


Shape = tuple


class OpError(Exception):
    """A problem with one node's arguments or input shapes; the caller adds the node."""

    def __init__(self, code: str, message: str, hint: str | None = None, arg: str | None = None):
        super().__init__(message)
        # `arg` names the argument at fault, so the error can point at the value written.
        self.code, self.message, self.hint, self.arg = code, message, hint, arg


REQUIRED = object()
# PyTorch's kernels index with 32-bit integers: sizes, strides and paddings beyond this
# fail inside the forward, far from the spec.
MAX_INT = 2**31 - 1


@record
class Arg:
    kind: str  # a key of ARG_KINDS, or "choice"
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple = ()


@record
class Example:
    """One small use of an op, run by tests/test_op_registry.py: `args` as a spec writes
    them, `inputs` the per-sample shape of each input, in order."""

    args: dict = Factory(dict)
    inputs: tuple = ((3, 8, 8),)


def _int_schema():
    return {"type": "integer"}


EXPRESSION_SCHEMA = {"type": "string", "pattern": r"\$"}
_INT_OR_EXPRESSION = {"anyOf": [_int_schema(), EXPRESSION_SCHEMA]}

# Graphs of 10,000s of nodes repeat the same few tuples; one object serves them all.
_INTERNED: dict = {}


def _intern(value: tuple) -> tuple:
    return _INTERNED.setdefault(value, value) if len(_INTERNED) < 4096 else value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value):
    return value if _is_int(value) else None


def _number(value):
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _bool(value):
    return value if isinstance(value, bool) else None


def _text(value):
    return value if isinstance(value, str) else None


def _ints(value):
    if isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
        return _intern(tuple(value))
    return None


def _size(value):
    """An int (the same along every spatial dimension) or one int per dimension."""
    if _is_int(value):
        return value
    if isinstance(value, (list, tuple)) and 1 <= len(value) <= 3:
        return _ints(value)
    return None


def _factor(value):
    """A number (the same along every spatial dimension) or one per dimension."""
    if isinstance(value, (list, tuple)) and 1 <= len(value) <= 3:
        numbers = [_number(v) for v in value]
        return None if None in numbers else _intern(tuple(numbers))
    return _number(value)


_NUMBER_OR_EXPRESSION = {"anyOf": [{"type": "number"}, EXPRESSION_SCHEMA]}

# kind -> (JSON Schema of a literal value, checker returning the normalised value or
# None, what the kind is in words). Lists admit an expression for any item.
ARG_KINDS: dict[str, tuple[dict, Callable, str]] = {
    "int": (_int_schema(), _int, "an integer"),
    "size": ({"anyOf": [_int_schema(), {"type": "array", "items": _INT_OR_EXPRESSION,
                                         "minItems": 1, "maxItems": 3}]},
             _size, "an integer or a list of one integer per spatial dimension"),
    "ints": ({"type": "array", "items": _INT_OR_EXPRESSION}, _ints, "a list of integers"),
    "number": ({"type": "number"}, _number, "a number"),
    "factor": ({"anyOf": [{"type": "number"}, {"type": "array", "items": _NUMBER_OR_EXPRESSION,
                                               "minItems": 1, "maxItems": 3}]},
               _factor, "a number or a list of one number per spatial dimension"),
    "bool": ({"type": "boolean"}, _bool, "true or false"),
    "text": ({"type": "string"}, _text, "text"),
    "choice": ({"type": "string"}, None, "one of the listed words"),
}


class Op:
    """Base class; subclasses set `name`, `args`, `examples`, and override the rules
    they need. Defaults describe a stateless op that keeps its input's shape."""

    name: str = ""
    doc: str = ""
    args: dict[str, Arg] = {}
    examples: tuple[Example, ...] = ()
    # For docs/ops.md: the shape and MAC rules in words.
    shape_rule: str = "the input's shape"
    mac_rule: str = "0"

    inputs: int | tuple | None = 1  # an exact count, (least, most) with most None for "or more", or None: two or more
    # How many leading inputs the built forward receives; the rest only lend
    # their shape (a shortcut projection sizes itself after the body's output).
    fed_inputs: int | None = None
    # Also a node kind joining branches (`concat: [...]`), not only `op: concat`.
    join: bool = False
    # The function takes its inputs as one list (torch.cat), not as arguments.
    takes_list: bool = False
    # False for ops whose output is a view or the input itself (no new storage).
    allocates: bool = True
    # Whether autograd keeps this op's output for its backward: then an in-place op
    # after it must not overwrite that output in training. True is the safe default.
    output_saved_for_backward: bool = True

    def input_range(self) -> tuple:
        """(least, most) inputs; most is None when there is no upper bound."""
        if self.inputs is None:
            return 2, None
        return (self.inputs, self.inputs) if isinstance(self.inputs, int) else tuple(self.inputs)

    def input_words(self) -> str:
        least, most = self.input_range()
        words = {1: "one", 2: "two", 3: "three"}
        if most is None:
            return f"{words.get(least, least)} or more"
        if least == most:
            return words.get(least, str(least))
        return f"{words.get(least, least)} to {words.get(most, most)}" if most > least + 1 else \
            f"{words.get(least, least)} or {words.get(most, most)}"

    # -- rules (per-sample shapes; pure arithmetic) -------------------------------
    def infer(self, a: dict, shapes: list[Shape]) -> Shape:
        return shapes[0]

    def params(self, a: dict, shapes: list[Shape], out: Shape) -> int:
        return 0

    def buffers(self, a: dict, shapes: list[Shape], out: Shape) -> tuple[int, int]:
        """Elements of the module's buffers: (floating point, int64), for memory estimates."""
        return 0, 0

    def macs(self, a: dict, shapes: list[Shape], out: Shape) -> int:
        """Multiply-accumulates per sample, as FlopCounterMode counts them (flops / 2)."""
        return 0

    # -- building ------------------------------------------------------------------
    def module(self, a: dict, shapes: list[Shape], factory: dict) -> "nn.Module | nn.Parameter | None":
        """What holds this node's weights, placed at the node's qualified name: an
        nn.Module (called with the node's inputs), or a bare nn.Parameter (as
        torchvision's `class_token`; the op's `function` then receives it after the
        inputs). None for a stateless op. `factory` holds the device and dtype."""
        return None

    # Optional, for `archspec eject`: `module_source(a, shapes) -> (cls, args, kwargs)`,
    # the class `module` builds and its arguments (without device and dtype), for a
    # class that keeps them under other attribute names than its constructor's.
    # And `parameter_draw = (method, kwargs)` for an op whose bare parameter starts as
    # `torch.empty(shape).method(**kwargs)` (a random draw): eject writes the same draw, so
    # the ejected file takes the generator's numbers where archspec.build does.

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
                out[key] = self._checked_default(key, arg)
                continue
            out[key] = self.check_arg(key, given[key])
        return out

    def _checked_default(self, key: str, arg: Arg):
        """An argument's default, checked once per op: most nodes leave most arguments
        out, and a large spec has thousands of nodes."""
        checked = self.__dict__.setdefault("_checked_defaults", {})
        if key not in checked:
            checked[key] = None if arg.default is None else self.check_arg(key, arg.default)
        return checked[key]

    def check_arg(self, key: str, value):
        arg = self.args[key]
        if value is None and arg.default is None:
            return None
        if arg.kind == "choice":
            if value not in arg.choices:
                raise OpError("E0408", f"`{key}` of op `{self.name}` must be one of "
                              f"{', '.join(map(str, arg.choices))}, got {value!r}", arg=key)
            return value
        _, check, wanted = ARG_KINDS[arg.kind]
        result = check(value)
        if result is None:
            raise OpError("E0408", f"`{key}` of op `{self.name}` must be {wanted}, got {value!r}", arg=key)
        for v in result if isinstance(result, tuple) else (result,):  # a loop: any() over a generator is slower
            if _is_int(v) and abs(v) > MAX_INT:
                raise OpError("E0408", f"`{key}` of op `{self.name}` is {value!r}, beyond what PyTorch "
                              f"accepts (at most {MAX_INT:,})", arg=key)
        return result

    def arg_schema(self) -> dict:
        props = {}
        for key, arg in self.args.items():
            literal = {"enum": list(arg.choices)} if arg.kind == "choice" else dict(ARG_KINDS[arg.kind][0])
            options = [literal, EXPRESSION_SCHEMA]
            if arg.default is None:
                options.append({"type": "null"})
            props[key] = {"anyOf": options, "description": arg.doc}
        return props


# -- helpers the ops share -------------------------------------------------------

_LAYOUTS = {1: "(F,)", 2: "(C, L)", 3: "(C, H, W)", 4: "(C, T, H, W)"}


def need_rank(op: Op, shape: Shape, ranks, what: str = "input") -> None:
    """Raise E0407 unless `shape` has one of `ranks` (an int or a tuple of them)."""
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    if len(shape) not in ranks:
        layout = " or ".join(_LAYOUTS.get(r, f"rank {r}") for r in ranks)
        hint = "add `{op: flatten}` before it" if ranks == (1,) else None
        raise OpError("E0407", f"op `{op.name}` needs a {layout} {what}, got {list(shape)}", hint)


def per_dim(value, rank: int, arg: str):
    """An int or list argument as one value per spatial dimension."""
    if isinstance(value, int):
        return (value,) * rank
    if len(value) != rank:
        raise OpError("E0408", f"`{arg}` has {len(value)} values but the input has {rank} spatial "
                      f"dimension{'s' if rank != 1 else ''}", f"write one integer, or {rank} of them", arg=arg)
    return tuple(value)


AXES = {1: ("length",), 2: ("height", "width"), 3: ("time", "height", "width")}


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
