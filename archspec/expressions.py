"""The spec's own small expression language, evaluated without `eval`.

A string value is an expression when it is `$name` or `${expr}` as a whole (the
result keeps its type: `${planes * 4}` is an int), and text with `${expr}` inside
it is interpolated into a string (`branch${i}`). `expr` admits numbers, strings,
lists, names of the spec's arguments, arithmetic, comparisons, `and`/`or`/`not`,
`a if c else b`, indexing, and the functions in `FUNCTIONS`; nothing else parses.
Python's parser reads the text; this module walks the tree and computes the value
itself, so no construct outside that list can run.
"""
from __future__ import annotations

import ast
import math
import operator
import re

_WHOLE_NAME = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
MAX_EXPRESSION_CHARS = 500


class ExpressionError(Exception):
    """Raised with an error code; the caller adds the position."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


class Lazy:
    """A name whose value is worked out when an expression first reads it (the shape
    of a block's input: most expressions never ask, and asking costs inference)."""

    __slots__ = ("compute", "value", "done")

    def __init__(self, compute):
        self.compute, self.value, self.done = compute, None, False

    def get(self):
        if not self.done:
            self.value, self.done = self.compute(), True
        return self.value


class Function:
    """A function of the scope an expression is written in (`shape('conv1')`)."""

    __slots__ = ("call",)

    def __init__(self, call):
        self.call = call


def is_expression(value) -> bool:
    return isinstance(value, str) and "$" in value and (
        _WHOLE_NAME.match(value) is not None or _PLACEHOLDER.search(value) is not None)


def resolve(value, env: dict):
    """The value of a spec scalar: expressions evaluated, anything else as is."""
    if not isinstance(value, str) or "$" not in value:
        return value
    whole = _WHOLE_NAME.match(value)
    if whole:
        return _lookup(whole.group(1), env)
    stripped = value.strip()
    match = _PLACEHOLDER.fullmatch(stripped)
    if match:
        return evaluate(match.group(1), env)
    if _PLACEHOLDER.search(value):
        return _PLACEHOLDER.sub(lambda m: _as_text(evaluate(m.group(1), env)), value)
    return value


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evaluate(text: str, env: dict):
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError("E0505", f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError("E0501", f"cannot parse expression `{text.strip()}`: {exc.msg}") from None
    try:
        return _Evaluator(env).visit(tree.body)
    except OverflowError:
        raise ExpressionError("E0504", f"`{text.strip()}` overflows: the number is too large") from None
    except RecursionError:
        raise ExpressionError("E0505", "expression nests too deeply") from None


def make_divisible(value, divisor=8, min_value=None):
    """The nearest multiple of `divisor` to `value`, never below `min_value` (default:
    the divisor) and never more than 10% below `value`: the width rounding of
    torchvision's and timm's MobileNets and EfficientNets (`_make_divisible`)."""
    _need_numbers("make_divisible()", value, divisor)
    if divisor <= 0:
        raise ExpressionError("E0504", f"make_divisible(): the divisor must be positive, got {divisor}")
    least = divisor if min_value is None else min_value
    rounded = max(least, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def round_up(value, multiple):
    """The least multiple of `multiple` at or above `value` (Ultralytics' `make_divisible`)."""
    _need_numbers("round_up()", value, multiple)
    if multiple <= 0:
        raise ExpressionError("E0504", f"round_up(): the multiple must be positive, got {multiple}")
    return math.ceil(value / multiple) * multiple


def _sum(values):
    if not isinstance(values, list):
        raise ExpressionError("E0504", f"sum() needs a list, got {_show(values)}")
    _need_numbers("sum()", *values)
    return sum(values)


def _ceil(value):
    _need_numbers("ceil()", value)
    return math.ceil(value)


def _floor(value):
    _need_numbers("floor()", value)
    return math.floor(value)


FUNCTIONS = {
    "min": min, "max": max, "abs": abs, "int": int, "round": round, "len": len, "float": float,
    "ceil": _ceil, "floor": _floor, "sum": _sum, "make_divisible": make_divisible, "round_up": round_up,
}
_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_CONSTANT_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False,
                   "None": None}
_NUMBER = (int, float)
MAX_POWER_RESULT = 10 ** 30


def _lookup(name: str, env: dict):
    if name in env:
        value = env[name]
        if isinstance(value, Lazy):
            return value.get()
        if isinstance(value, Function):
            raise ExpressionError("E0504", f"`{name}` is a function: call it, as in `{name}('conv1')`")
        return value
    if name in _CONSTANT_NAMES:
        return _CONSTANT_NAMES[name]
    from .diagnostics import did_you_mean

    known = ", ".join(sorted(env)) or "none"
    raise ExpressionError("E0502", f"unknown name `{name}` in expression",
                          did_you_mean(name, env) or f"names in scope: {known}")


class _Evaluator(ast.NodeVisitor):
    def __init__(self, env: dict):
        self.env = env

    def generic_visit(self, node):
        raise ExpressionError("E0505", f"`{type(node).__name__}` is not allowed in expressions",
                              "expressions admit arithmetic, comparisons, and/or/not, "
                              "`a if c else b`, indexing and " + ", ".join(FUNCTIONS))

    def visit_Constant(self, node):
        if isinstance(node.value, (int, float, str, bool)) or node.value is None:
            return node.value
        return self.generic_visit(node)

    def visit_Name(self, node):
        return _lookup(node.id, self.env)

    def visit_List(self, node):
        return [self.visit(e) for e in node.elts]

    visit_Tuple = visit_List

    def visit_UnaryOp(self, node):
        if not isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            return self.generic_visit(node)  # `~` and whatever else Python adds
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        _need_numbers("unary minus" if isinstance(node.op, ast.USub) else "unary plus", value)
        return -value if isinstance(node.op, ast.USub) else +value

    def visit_BinOp(self, node):
        op = _BINARY.get(type(node.op))
        if op is None:
            return self.generic_visit(node)
        left, right = self.visit(node.left), self.visit(node.right)
        symbol = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
                  ast.Mod: "%", ast.Pow: "**"}[type(node.op)]
        both_lists = isinstance(left, list) and isinstance(right, list)
        if not (both_lists and symbol == "+"):
            _need_numbers(f"`{symbol}`", left, right)
        if symbol in ("/", "//", "%") and right == 0:
            raise ExpressionError("E0503", f"division by zero in `{_show(left)} {symbol} 0`")
        if symbol == "**" and (abs(right) > 64 or abs(left) > 10 ** 6):
            raise ExpressionError("E0504", f"`{_show(left)} ** {_show(right)}` is too large")
        return op(left, right)

    def visit_BoolOp(self, node):
        if isinstance(node.op, ast.And):
            value = True
            for expr in node.values:
                value = self.visit(expr)
                if not value:
                    return value
            return value
        value = False
        for expr in node.values:
            value = self.visit(expr)
            if value:
                return value
        return value

    def visit_Compare(self, node):
        left = self.visit(node.left)
        for op_node, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            try:
                ok = _COMPARE[type(op_node)](left, right)
            except TypeError:
                raise ExpressionError("E0504", f"cannot compare {_show(left)} with {_show(right)}") from None
            if not ok:
                return False
            left = right
        return True

    def visit_IfExp(self, node):
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Slice(self, node):
        parts = [None if part is None else self.visit(part) for part in (node.lower, node.upper, node.step)]
        if any(p is not None and (isinstance(p, bool) or not isinstance(p, int)) for p in parts):
            raise ExpressionError("E0504", "slice bounds must be whole numbers")
        if parts[2] == 0:
            raise ExpressionError("E0504", "a slice step cannot be zero")
        return slice(*parts)

    def visit_Subscript(self, node):
        container, index = self.visit(node.value), self.visit(node.slice)
        if isinstance(index, slice) and isinstance(container, (list, str)):
            return container[index]
        if not isinstance(container, (list, str)) or isinstance(index, bool) or not isinstance(index, int):
            raise ExpressionError("E0504", f"cannot index {_show(container)} with {_show(index)}")
        if not -len(container) <= index < len(container):
            raise ExpressionError("E0504", f"index {index} is out of range for {_show(container)}")
        return container[index]

    def visit_Call(self, node):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        scoped = self.env.get(name) if name is not None else None
        if isinstance(scoped, Function) and not node.keywords:
            return scoped.call(*[self.visit(a) for a in node.args])
        if name not in FUNCTIONS or node.keywords:
            raise ExpressionError("E0505", "only these functions may be called: " + ", ".join(
                [*FUNCTIONS, *(k for k, v in self.env.items() if isinstance(v, Function))]))
        args = [self.visit(a) for a in node.args]
        try:
            return FUNCTIONS[name](*args)
        except (TypeError, ValueError) as exc:
            raise ExpressionError("E0504", f"{node.func.id}(): {exc}") from None


def _need_numbers(what: str, *values) -> None:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, _NUMBER):
            raise ExpressionError("E0504", f"{what} needs numbers, got {_show(v)}")


def _show(value) -> str:
    return f"{type(value).__name__} {value!r}" if not isinstance(value, (int, float)) or isinstance(value, bool) else repr(value)
