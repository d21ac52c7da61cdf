"""The spec's own small expression language, evaluated without `eval`.

A string value is an expression when it is `$name` or `${expr}` as a whole (the
result keeps its type: `${planes * 4}` is an int), and text with `${expr}` inside
it is interpolated into a string (`branch${i}`). `expr` admits numbers, strings,
lists, names of the spec's arguments, arithmetic, comparisons, `and`/`or`/`not`,
`a if c else b`, indexing, and the functions in `FUNCTIONS`; nothing else parses.
Python's parser reads the text; this module walks the tree and computes the value
itself, so no construct outside that list can run.

Every value an expression makes is bounded, so that no chain of arguments, each
doubling the last, can grow one without limit: whole numbers stay below 10**30
(a power is refused before it is computed), floats are finite, lists hold at most
MAX_ITEMS values (nested ones counted) and interpolated text MAX_TEXT_CHARS.
"""
from __future__ import annotations

import ast
import math
import operator
import re
import reprlib
from functools import lru_cache

_WHOLE_NAME = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_PLACEHOLDER = re.compile(r"\$\{([^{}]*)\}")
MAX_EXPRESSION_CHARS = 500
MAX_EXPRESSION_DEPTH = 100  # nested operations: the evaluator recurses once per level
MAX_INTEGER = 10 ** 30      # every whole number an expression makes is smaller than this
MAX_ITEMS = 10_000          # values in a list an expression makes, nested lists included
MAX_LIST_DEPTH = 32
MAX_TEXT_CHARS = 10_000     # length of text made by interpolation
MAX_ROUND_DIGITS = 30       # round(x, n): |n| at most this (10 ** n is computed)


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
    form, payload = _form(value)
    if form == "name":
        return _lookup(payload, env)
    if form == "expression":
        return evaluate(payload, env)
    if form == "template":
        return _interpolate(value, env)
    return value


@lru_cache(maxsize=4096)
def _form(value: str) -> tuple:
    """What kind of scalar `value` is, and the part to evaluate. Cached: a block's
    body is instantiated once per use, so the same few strings come back thousands of
    times in a large spec, and matching them again cost more than evaluating them."""
    whole = _WHOLE_NAME.match(value)
    if whole:
        return "name", whole.group(1)
    match = _PLACEHOLDER.fullmatch(value.strip())
    if match:
        return "expression", match.group(1)
    if _PLACEHOLDER.search(value):
        return "template", None
    return "text", None


def _interpolate(template: str, env: dict) -> str:
    parts, length, end = [], 0, 0
    for match in _PLACEHOLDER.finditer(template):
        parts += [template[end:match.start()], _as_text(evaluate(match.group(1), env))]
        length += len(parts[-2]) + len(parts[-1])
        if length > MAX_TEXT_CHARS:  # checked as it grows: text made from text can double each time
            raise ExpressionError("E0504", f"text made with ${{...}} would be longer than "
                                  f"{MAX_TEXT_CHARS:,} characters")
        end = match.end()
    return "".join(parts) + template[end:]


def _as_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evaluate(text: str, env: dict):
    tree = _parsed(text)
    try:
        return _Evaluator(env).visit(tree.body)
    except OverflowError:
        raise ExpressionError("E0504", f"`{text.strip()}` overflows: the number is too large") from None
    except RecursionError:
        raise ExpressionError("E0505", "expression nests too deeply") from None


@lru_cache(maxsize=4096)
def _parsed(text: str) -> ast.Expression:
    """The parse tree of an expression's text. Cached (errors are not): the same
    expression is evaluated once per instance of its block, and parsing it is most of
    the cost of evaluating it. Nothing changes a tree once parsed."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise ExpressionError("E0505", f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:  # ValueError: a NUL byte, on some Pythons
        reason = exc.msg if isinstance(exc, SyntaxError) else str(exc)
        raise ExpressionError("E0501", f"cannot parse expression `{text.strip()}`: {reason}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError("E0505", "expression nests too deeply") from None
    if _depth(tree.body) > MAX_EXPRESSION_DEPTH:  # a limit of its own, not Python's recursion limit
        raise ExpressionError("E0505", "expression nests too deeply")
    return tree


def _depth(node) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:  # without recursion: this is what guards the evaluator's recursion
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _round(number, ndigits=None):
    # round(1, -10**9) would compute 10 ** 10**9.
    if isinstance(ndigits, int) and abs(ndigits) > MAX_ROUND_DIGITS:
        raise ValueError(f"ndigits must lie between -{MAX_ROUND_DIGITS} and {MAX_ROUND_DIGITS}, got {ndigits}")
    return round(number, ndigits)


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
    "min": min, "max": max, "abs": abs, "int": int, "round": _round, "len": len, "float": float,
    "ceil": _ceil, "floor": _floor, "sum": _sum, "make_divisible": make_divisible, "round_up": round_up,
}
_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
            ast.Pow: "**"}
_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_CONSTANT_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False,
                   "None": None}
_NUMBER = (int, float)
_METHODS: dict = {}  # node class -> _Evaluator's method for it
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxlong = _SHORT.maxother = 40


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

    def visit(self, node):
        # NodeVisitor.visit builds the method's name as text for every node visited;
        # a large spec visits thousands, so the method is looked up once per node class.
        method = _METHODS.get(type(node))
        if method is None:
            method = _METHODS[type(node)] = getattr(_Evaluator, "visit_" + type(node).__name__,
                                                    _Evaluator.generic_visit)
        value = method(self, node)
        _check_number(value, node)
        return value

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
        return _check_list([self.visit(e) for e in node.elts], node)

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
        symbol = _SYMBOLS[type(node.op)]
        if symbol == "+" and isinstance(left, list) and isinstance(right, list):
            return _check_list(left + right, node)  # the one operator lists take
        _need_numbers(f"`{symbol}`", left, right)
        if (symbol in ("/", "//", "%") and right == 0) or (symbol == "**" and left == 0 and right < 0):
            raise ExpressionError("E0503", f"division by zero in `{_show(left)} {symbol} {_show(right)}`")
        if symbol == "**":
            _check_power(left, right)
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


def _check_power(base, exponent) -> None:
    """A whole-number power is computed exactly, however large: refuse one past
    MAX_INTEGER before computing it. (A float power overflows quickly by itself.)"""
    if isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0 \
            and (abs(base).bit_length() - 1) * exponent >= MAX_INTEGER.bit_length():
        raise ExpressionError("E0504", f"`{_show(base)} ** {_show(exponent)}` is too large: "
                              f"whole numbers in a spec stay below 10**30")


def _check_number(value, node) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, int) and abs(value) >= MAX_INTEGER:
        raise ExpressionError("E0504", f"`{_source(node)}` is too large: whole numbers in a spec stay below 10**30")
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("E0504", f"`{_source(node)}` is {value}, not a finite number")
    if isinstance(value, complex):  # (-8) ** 0.5
        raise ExpressionError("E0504", f"`{_source(node)}` has no real value")


def _check_list(items: list, node) -> list:
    """Count the values of a list the expression made, nested lists included and one
    list met twice counted twice (that is what printing or copying it costs);
    counting stops at the limit, so it is cheap however large the list would be."""
    count, stack = 0, [(items, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > MAX_LIST_DEPTH:
            raise ExpressionError("E0504", f"`{_source(node)}` nests lists more than {MAX_LIST_DEPTH} deep")
        count += len(current)
        if count > MAX_ITEMS:
            raise ExpressionError("E0504", f"`{_source(node)}` makes a list of more than {MAX_ITEMS:,} values")
        stack.extend((item, depth + 1) for item in current if isinstance(item, list))
    return items


def _source(node) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def _need_numbers(what: str, *values) -> None:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, _NUMBER):
            raise ExpressionError("E0504", f"{what} needs numbers, got {_show(v)}")


def _show(value) -> str:
    """A value for a message, shortened: it may be a list of thousands of items."""
    text = _SHORT.repr(value)
    return f"{type(value).__name__} {text}" if not isinstance(value, (int, float)) or isinstance(value, bool) else text
