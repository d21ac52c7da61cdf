"""The spec's `init:` section as ejected source: a table of every tensor it sets, in the
order archspec.build draws them, and `init_weights(net)`, which draws them with
torch.nn.init. With the same `torch.manual_seed`, an ejected network's weights are then
the numbers archspec.build gives.

Each row holds the arguments worked out for its tensors. An argument that reads the
tensor's fans (`std: ${sqrt(2 / fan_out)}`) is written as a lambda of `fan_in` and
`fan_out` where its expression is plain arithmetic and `sqrt` / `log` of them, so it
follows the sizes `build()` is given; any other such argument is written as the number
it has for the ejected sizes, and `eject` keeps every file-level arg that changes a
row out of `build()`'s arguments (it compares the rows of each variant it compiles).
"""
from __future__ import annotations

import ast
import textwrap

from ..expressions import _form
from ..init import draws, plan

# archspec's scheme -> (torch.nn.init function, argument renames)
_TORCH = {"constant": ("constant_", {"value": "val"}), "zeros": ("zeros_", {}), "ones": ("ones_", {})}
_FAN_NAMES = {"fan_in", "fan_out"}
_MATH = {"sqrt", "log"}
_ARITHMETIC = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow,
               ast.USub, ast.UAdd, ast.Load)


def init_rows(compilation) -> tuple:
    """((torch.nn.init function, {argument: source text}, state-dict keys), ...) in draw
    order, consecutive tensors drawn alike sharing a row; () when `init:` sets nothing."""
    from ..builder import build_module  # torch, only when there is something to write

    init_plan = plan(compilation.spec, compilation.inferred.graph)
    if not init_plan:
        return ()
    net = build_module(compilation.inferred, compilation.spec.name, device="meta")
    jobs = draws(init_plan, net)
    # Only the random draws' order matters (each takes the generator's next numbers):
    # consecutive ones drawn alike share a row, and the constants come after them, one
    # row per kind.
    jobs.sort(key=lambda job: not job[2].scheme.random)
    rows: list = []
    for key, _, setting, args in jobs:
        scheme = setting.scheme
        function, renames = _TORCH.get(scheme.name, (scheme.name + "_", {}))
        # Arguments at their defaults are left out: torch.nn.init's defaults are the same.
        written = {renames.get(arg, arg): _argument(setting.args[arg] if arg in setting.deferred else None, value)
                   for arg, value in args.items() if arg in setting.deferred or value != scheme.args[arg][1]}
        alike = [row for row in rows[-1:] if row[:2] == (function, written)] if scheme.random else \
            [row for row in rows if not row[3] and row[:2] == (function, written)]
        if alike:
            alike[0][2].append(key)
        else:
            rows.append((function, written, [key], scheme.random))
    return tuple((function, written, tuple(keys)) for function, written, keys, _ in rows)


def _argument(expression: str | None, value) -> str:
    """The source of one argument: a lambda of the fans for a fan-only expression, else
    the value for this tensor."""
    if expression is not None:
        form, payload = _form(expression)
        if form == "expression":
            body = _fan_expression(payload)
            if body is not None:
                return f"lambda fan_in, fan_out: {body}"
    return repr(value)


def _fan_expression(text: str) -> str | None:
    """`text` as Python over fan_in and fan_out, or None if it reads anything else."""
    tree = ast.parse(text.strip(), mode="eval")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _MATH and len(node.args) == 1
                    and not node.keywords):
                return None
            node.func = ast.Attribute(ast.Name("math", ast.Load()), node.func.id, ast.Load())
        elif isinstance(node, ast.Name):
            if node.id not in _FAN_NAMES | _MATH | {"math"}:
                return None
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                return None
        elif not isinstance(node, (*_ARITHMETIC, ast.Attribute)):
            return None
    return ast.unparse(ast.fix_missing_locations(tree))


def init_text(rows: tuple, spec_name: str) -> str:
    """The table and `init_weights` for the ejected file."""
    lines = ["# The spec's `init:`, tensor by tensor in the order archspec.build draws them:",
             "# (torch.nn.init function, its arguments, state-dict keys).",
             "INIT = ("]
    for function, written, keys in rows:
        arguments = "{" + ", ".join(f"{arg!r}: {text}" for arg, text in written.items()) + "}"
        lines.append(f"    ({function!r}, {arguments}, (")
        lines += textwrap.wrap(" ".join(f"{k!r}," for k in keys), 88, initial_indent=" " * 8,
                               subsequent_indent=" " * 8, break_long_words=False, break_on_hyphens=False)
        lines.append("    )),")
    lines.append(")")
    body = [
        "",
        "",
        "def init_weights(net):",
        f'    """Start the weights of a {spec_name} network as its spec\'s `init:` does. Drawn in',
        "    archspec's order, so with the same torch.manual_seed they are the numbers",
        "    archspec.build gives; tensors INIT does not list keep what their module drew.\"\"\"",
        "    tensors = net.state_dict(keep_vars=True)",
        "    with torch.no_grad():",
        "        for function, arguments, keys in INIT:",
        "            for key in keys:",
    ]
    if not uses_math(rows):
        return "\n".join(lines + body + ["                getattr(nn.init, function)(tensors[key], **arguments)"])
    body += [
        "                worked = arguments",
        "                if any(callable(value) for value in arguments.values()):  # reads the fans",
        "                    fan_in, fan_out = _fans(key, tensors)",
        "                    worked = {arg: value(fan_in, fan_out) if callable(value) else value",
        "                              for arg, value in arguments.items()}",
        "                getattr(nn.init, function)(tensors[key], **worked)",
        "",
        "",
        "def _fans(key, tensors):",
        '    """Fan in and out of a tensor of 2 or more dimensions, else of the weight beside',
        '    it (a bias reads its weight\'s fans)."""',
        "    tensor = tensors[key]",
        "    if tensor.dim() < 2:",
        "        tensor = tensors[key.rpartition('.')[0] + '.weight']",
        "    receptive = math.prod(tensor.shape[2:])",
        "    return tensor.shape[1] * receptive, tensor.shape[0] * receptive",
    ]
    return "\n".join(lines + body)


def uses_math(rows: tuple) -> bool:
    """Some argument is a lambda of the fans: the file needs `import math` and `_fans`."""
    return any("lambda" in text for _, written, _ in rows for text in written.values())
