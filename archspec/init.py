"""Initialisation: a spec's `init:` rules, planned on the graph and applied to the
built network.

    init:
      - {op: conv, weight: {kaiming_normal: {mode: fan_out, nonlinearity: relu}}}
      - {op: bn, weight: ones, bias: zeros}
      - {name: "layer*.*.bn3", weight: zeros, when: $zero_init_residual}

A rule selects nodes by op (`op: conv`, `op: [conv, linear]`) and/or qualified name
(`name: "layer*.*.bn3"`: `*` stays within one dotted part, `**` spans any number) and
sets tensors of each: the key is the tensor's state-dict name after the node's name
(`weight`, `bias`, `running_var`, `in_proj_weight`, `0.weight` of a `project`
shortcut's conv), or `value` for a node that is itself one parameter (`class_token`).
Rules apply in order and, for one tensor, the last rule that sets it wins. Tensors no
rule sets keep what PyTorch's module constructor drew for them (as does the scheme
`default`); `init: default` says so for the whole network.

Planning (`plan`) needs no torch: it checks schemes, arguments and selections when
the spec is compiled, so `archspec validate` reports them. Applying (`apply`) runs
when the network is built: it checks that each key names a tensor of some node its
rule selects, works out arguments that read the tensor (`fan_in`, `fan_out`), and then
draws, in the network's module order, which is the order torchvision's constructors
initialise in: with the same seed and the same schemes, the weights are the same
numbers. A meta-device build checks everything and draws nothing.
"""
from __future__ import annotations

import math
import re
from types import MappingProxyType

from .diagnostics import Diagnostic, SpecError, did_you_mean
from .expressions import ExpressionError, Function, Lazy, is_expression, resolve
from .ops import REGISTRY
from .records import Factory, record
from .yaml_source import position_of

# Keys of a rule that select nodes or describe the rule; every other key names a tensor.
RULE_KEYS = ("op", "name", "when", "doc")
BARE = "value"  # the key of a node that is itself one parameter (class_token, layer_scale, ...)
_PATTERN_CHARS = re.compile(r"[A-Za-z0-9_\-.*?]+")

# torch.nn.init.calculate_gain's names.
NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")
_REQUIRED = object()


@record
class Scheme:
    name: str
    args: dict            # argument -> (kind, default); kinds in _ARG_KINDS
    doc: str
    random: bool = True   # draws from the generator (an integer tensor cannot take it)
    fan: bool = False     # reads the tensor's fan in/out: 2 dimensions or more


_KAIMING = {"a": ("number", 0), "mode": ("mode", "fan_in"), "nonlinearity": ("nonlinearity", "leaky_relu")}
SCHEMES = {s.name: s for s in (
    Scheme("kaiming_normal", _KAIMING, "N(0, std^2), std = gain / sqrt(fan) (He et al.)", fan=True),
    Scheme("kaiming_uniform", _KAIMING, "U(-bound, bound), bound = gain * sqrt(3 / fan) (He et al.)", fan=True),
    Scheme("xavier_uniform", {"gain": ("positive", 1.0)}, "U(-bound, bound), bound = gain * sqrt(6 / (fan_in + "
           "fan_out)) (Glorot and Bengio)", fan=True),
    Scheme("xavier_normal", {"gain": ("positive", 1.0)}, "N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))",
           fan=True),
    Scheme("trunc_normal", {"mean": ("number", 0.0), "std": ("positive", 1.0), "a": ("number", -2.0),
                            "b": ("number", 2.0)},
           "N(mean, std^2) redrawn outside [a, b]; a and b are values, not multiples of std (as in torch)"),
    Scheme("normal", {"mean": ("number", 0.0), "std": ("positive", 1.0)}, "N(mean, std^2)"),
    Scheme("uniform", {"a": ("number", 0.0), "b": ("number", 1.0)}, "U(a, b)"),
    Scheme("constant", {"value": ("number", _REQUIRED)}, "every element `value` (a bare number says the same)",
           random=False),
    Scheme("zeros", {}, "every element 0", random=False),
    Scheme("ones", {}, "every element 1", random=False),
    Scheme("default", {}, "what PyTorch's module constructor drew (its reset_parameters); undoes an "
                          "earlier rule", random=False),
)}

_ARG_KINDS = {
    "number": "a number",
    "positive": "a positive number",
    "mode": "fan_in or fan_out",
    "nonlinearity": "one of " + ", ".join(NONLINEARITIES),
}


class _NeedsTensor(Exception):
    """An argument reads the tensor (`fan_in`): it is worked out when the network is built."""


@record
class Setting:
    """One tensor key of one rule: the scheme and its arguments as written."""

    rule: int             # index of the rule in `init:`
    key: str
    scheme: Scheme
    args: MappingProxyType  # argument -> value, or the expression text when it reads the tensor
    deferred: tuple       # arguments whose expression reads the tensor
    pos: object           # where the scheme is written
    arg_pos: MappingProxyType


@record
class Plan:
    """What `init:` sets: state-dict key -> Setting; and per rule key, the nodes its
    rule selected (every key must name a tensor of one of them)."""

    settings: MappingProxyType
    uses: tuple = ()      # (Setting, node names)
    env: MappingProxyType = Factory(lambda: MappingProxyType({}))  # the spec's args

    def __bool__(self) -> bool:
        return bool(self.uses)


EMPTY = Plan(MappingProxyType({}))


# -- planning: torch-free, at compile time ---------------------------------------------

def plan(spec, graph) -> Plan:
    """The spec's `init:` rules resolved on the expanded graph; SpecError lists every
    mistake (E0320-E0324, expression errors) at the value written."""
    rules = spec.document.get("init")
    if not rules or rules == "default":  # `init: default`: PyTorch's constructors' draws, kept
        return EMPTY
    problems: list = []
    env = dict(spec.args)
    nodes = graph.nodes
    used_ops = {node.op for node in nodes.values()}
    settings: dict = {}
    uses: list = []
    for index, rule in enumerate(rules):
        pos = position_of(rules, index)
        found = _read_rule(rule, index, pos, env, problems)
        if found is None:
            continue
        ops, patterns, rule_settings, active = found
        if not active:
            continue
        selected = _select(rule, ops, patterns, nodes, used_ops, problems)
        for setting in rule_settings:
            uses.append((setting, selected))
            for name in selected:
                settings[name if setting.key == BARE else f"{name}.{setting.key}"] = setting
    if problems:
        raise SpecError(_unique(problems))
    return Plan(MappingProxyType(settings), tuple(uses), MappingProxyType(env))


def _read_rule(rule, index, pos, env, problems):
    """(ops, name patterns, settings, whether `when:` holds), or None if the rule is
    malformed (the problems are recorded)."""
    where = f"init rule {index + 1}"
    before = len(problems)
    ops = _selector(rule, "op", problems)
    patterns = _selector(rule, "name", problems)
    for pattern in patterns:
        if not _PATTERN_CHARS.fullmatch(pattern):
            problems.append(Diagnostic("E0324", f"{where}: name pattern {pattern!r} holds characters no node "
                                       "name has", rule.where("name"),
                                       "names are letters, digits, _ and -, parts joined by dots; * matches "
                                       "within a part, ** across parts, ? one character"))
    if "op" not in rule and "name" not in rule:
        problems.append(Diagnostic("E0324", f"{where} says which nodes by neither `op:` nor `name:`", pos,
                                   "add `op: conv`, `name: \"layer*.*.bn3\"`, or both"))
    keys = [k for k in rule if k not in RULE_KEYS]
    if not keys:
        problems.append(Diagnostic("E0324", f"{where} sets nothing", pos,
                                   "name a tensor and its scheme, e.g. `weight: {normal: {std: 0.01}}`, "
                                   "`bias: zeros`"))
    settings = [s for s in (_setting(rule, index, key, env, problems) for key in keys) if s is not None]
    active = True
    if "when" in rule:
        try:
            active = _value(rule["when"], env, rule.where("when"), "when")
        except SpecError as exc:
            problems.extend(exc.diagnostics)
            return None
        if not isinstance(active, bool):
            problems.append(Diagnostic("E0504", f"`when:` must be true or false, got {active!r}", rule.where("when"),
                                       "write a comparison, e.g. `${n > 0}`" if isinstance(active, (int, float))
                                       else None))
            return None
    if len(problems) > before:
        return None
    return ops, patterns, settings, active


def _selector(rule, key, problems) -> tuple:
    value = rule.get(key)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _setting(rule, index, key, env, problems) -> Setting | None:
    raw, pos = rule[key], rule.where(key)
    if is_expression(raw):  # a number (a constant) or a scheme's name, worked out
        try:
            raw = _value(raw, {**env, **_FUNCTIONS}, pos, key)
        except SpecError as exc:
            problems.extend(exc.diagnostics)
            return None
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return Setting(index, key, SCHEMES["constant"], MappingProxyType({"value": raw}), (), pos,
                       MappingProxyType({"value": pos}))
    written_args = None
    if isinstance(raw, str):
        name = raw
    elif isinstance(raw, dict) and len(raw) == 1:
        name, written_args = next(iter(raw.items()))
        if name == "constant" and isinstance(written_args, (int, float)) and not isinstance(written_args, bool):
            written_args = {"value": written_args}  # {constant: 0.5}, as the number alone says
        if written_args is not None and not isinstance(written_args, dict):
            hint = f"write `{{{name}: {{ARG: VALUE}}}}`"
            problems.append(Diagnostic("E0321", f"`{key}`: the arguments of `{name}` are a mapping, got "
                                       f"{written_args!r}", position_of(raw, name), hint))
            return None
    else:
        what = "a mapping of several schemes" if isinstance(raw, dict) and raw else repr(raw)
        problems.append(Diagnostic("E0320", f"`{key}` must name one scheme, got {what}", pos,
                                   "write a scheme's name (`zeros`), a number, or one scheme with its "
                                   "arguments: `{normal: {std: 0.01}}`"))
        return None
    scheme = SCHEMES.get(name) if isinstance(name, str) else None
    if scheme is None:
        scheme_pos = pos if isinstance(raw, str) else raw.key_pos.get(name, pos) if hasattr(raw, "key_pos") else pos
        problems.append(Diagnostic("E0320", f"`{key}`: unknown init scheme `{name}`", scheme_pos,
                                   did_you_mean(str(name), SCHEMES) or "schemes: " + ", ".join(SCHEMES)))
        return None
    written_args = written_args or {}
    args, deferred, arg_pos = {}, [], {}
    for arg, value in written_args.items():
        where = position_of(written_args, arg)
        if arg not in scheme.args:
            taken = ", ".join(scheme.args) or "no arguments"
            problems.append(Diagnostic("E0321", f"`{key}`: `{name}` has no argument `{arg}`",
                                       written_args.key_pos.get(arg, where) if hasattr(written_args, "key_pos")
                                       else where, did_you_mean(arg, scheme.args) or f"`{name}` takes: {taken}"))
            continue
        arg_pos[arg] = where
        try:
            args[arg] = _value(value, {**env, **_STATIC_TENSOR_NAMES}, where, f"{name} {arg}")
        except _NeedsTensor:
            args[arg] = value
            deferred.append(arg)
        except SpecError as exc:
            problems.extend(exc.diagnostics)
    for arg, (kind, default) in scheme.args.items():
        if arg not in written_args:
            if default is _REQUIRED:
                problems.append(Diagnostic("E0321", f"`{key}`: `{name}` needs `{arg}`", pos,
                                           f"e.g. `{{{name}: {{{arg}: 0.5}}}}`, or the number alone"))
            else:
                args[arg] = default
    problems.extend(_check_args(scheme, key, {a: v for a, v in args.items() if a not in deferred}, arg_pos, pos))
    return Setting(index, key, scheme, MappingProxyType(args), tuple(deferred), pos, MappingProxyType(arg_pos))


def _check_args(scheme: Scheme, key: str, args: dict, arg_pos: dict, pos) -> list:
    """E0321 for each argument value a scheme cannot take."""
    problems = []
    for arg, value in args.items():
        kind = scheme.args[arg][0]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        ok = {"number": number, "positive": number and value > 0,
              "mode": value in ("fan_in", "fan_out"), "nonlinearity": value in NONLINEARITIES}[kind]
        if number and not math.isfinite(value):
            ok = False
        if not ok:
            hint = did_you_mean(str(value), NONLINEARITIES if kind == "nonlinearity" else ("fan_in", "fan_out")) \
                if kind in ("mode", "nonlinearity") else None
            problems.append(Diagnostic("E0321", f"`{key}`: `{scheme.name}` {arg} must be {_ARG_KINDS[kind]}, "
                                       f"got {value!r}", arg_pos.get(arg, pos), hint))
    if {"a", "b"} <= set(args) and scheme.name in ("uniform", "trunc_normal") and not problems:
        if not args["a"] < args["b"]:
            problems.append(Diagnostic("E0321", f"`{key}`: `{scheme.name}` needs a < b, got a = {args['a']!r} and "
                                       f"b = {args['b']!r}", arg_pos.get("b", arg_pos.get("a", pos)),
                                       "a and b bound the values themselves"))
    return problems


def _select(rule, ops, patterns, nodes, used_ops, problems) -> tuple:
    """Names of the nodes a rule selects; E0322 when there are none."""
    for op in ops:
        if op not in used_ops:
            known = op in REGISTRY.available() or op in REGISTRY
            close = did_you_mean(op, used_ops if known else REGISTRY.available())
            message = f"`op: {op}`: no node of this spec is a `{op}`" if known else f"`op: {op}`: unknown op"
            problems.append(Diagnostic("E0322", message, rule.where("op"),
                                       close or "ops this spec uses: " + ", ".join(sorted(used_ops))))
            return ()
    matchers = [_compile_pattern(p) for p in patterns]
    selected = tuple(name for name, node in nodes.items()
                     if (not ops or node.op in ops) and (not matchers or any(m.fullmatch(name) for m in matchers)))
    if not selected:
        of = f" of op {', '.join(ops)}" if ops else ""
        shown = ", ".join(patterns)
        names = [n for n, node in nodes.items() if not ops or node.op in ops]
        problems.append(Diagnostic("E0322", f"`name: {shown}` matches no node{of}", rule.where("name"),
                                   _pattern_hint(patterns, names)))
    return selected


def _pattern_hint(patterns, names) -> str:
    spanning = [re.sub(r"\*+", "**", p) for p in patterns]
    wider = next((n for n in names if any(_compile_pattern(p).fullmatch(n) for p in spanning)), None)
    if wider:
        return f"`*` matches within one dotted part of a name; `**` spans parts (and would match `{wider}`)"
    close = did_you_mean(patterns[0], names) if patterns else None
    return close or ("`*` matches within one dotted part of a name, `**` across parts; guard a rule for "
                     "optional parts with `when:`")


def _compile_pattern(pattern: str):
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    regex = "".join({"**": ".*", "*": "[^.]*", "?": "[^.]"}.get(p, re.escape(p)) for p in parts)
    return re.compile(regex)


def _value(raw, env, pos, what):
    """A written value, its expression evaluated; expression errors at `pos`."""
    try:
        return resolve(raw, env)
    except ExpressionError as exc:
        raise SpecError(Diagnostic(exc.code, f"{what}: {exc.message}", pos, exc.hint)) from None


def _unique(problems: list) -> list:
    seen, unique = set(), []
    for d in sorted(problems, key=lambda d: (d.pos is None, d.pos and (d.pos.file, d.pos.line, d.pos.col))):
        if (d.code, d.pos, d.message) not in seen:
            seen.add((d.code, d.pos, d.message))
            unique.append(d)
    return unique


def _needs_tensor():
    raise _NeedsTensor()


def _sqrt(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0:
        raise ExpressionError("E0504", f"sqrt() needs a number at least 0, got {x!r}")
    return math.sqrt(x)


def _log(x):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x <= 0:
        raise ExpressionError("E0504", f"log() needs a positive number, got {x!r}")
    return math.log(x)


# Names init expressions see besides the spec's args: the tensor's fans (worked out at
# build time) and the functions torch's init formulas use.
_FUNCTIONS = {"sqrt": Function(_sqrt), "log": Function(_log)}
_STATIC_TENSOR_NAMES = {"fan_in": Lazy(_needs_tensor), "fan_out": Lazy(_needs_tensor), **_FUNCTIONS}


# -- applying: at build time -----------------------------------------------------------

def apply(init_plan: Plan, net) -> None:
    """Set the network's tensors as the plan says, in module order; on the meta device
    check and draw nothing. SpecError (E0321, E0323, E0325, expression errors) before
    any tensor is changed."""
    if not init_plan:
        return
    import torch

    with torch.no_grad():
        for _, tensor, setting, args in draws(init_plan, net):
            if tensor.device.type != "meta":
                _DRAW[setting.scheme.name](tensor, **args)


def draws(init_plan: Plan, net) -> list:
    """What `apply` draws, in its order: (state-dict key, tensor, Setting, arguments
    worked out for that tensor). SpecError as for `apply`."""
    tensors = net.state_dict(keep_vars=True)  # module order: the order torchvision's loops visit
    problems = []
    for setting, nodes in init_plan.uses:
        if not any((name if setting.key == BARE else f"{name}.{setting.key}") in tensors for name in nodes):
            problems.append(_missing_key(setting, nodes, tensors))
    jobs, cache, failed = [], {}, set()
    for key, tensor in tensors.items():
        setting = init_plan.settings.get(key)
        if setting is None or setting.scheme.name == "default" or id(setting) in failed:
            continue
        try:
            args = _tensor_args(setting, key, tensor, tensors, init_plan.env, cache)
        except SpecError as exc:  # reported for the first tensor only: the rest fail alike
            problems.extend(exc.diagnostics)
            failed.add(id(setting))
            continue
        jobs.append((key, tensor, setting, args))
    if problems:
        raise SpecError(_unique(problems))
    return jobs


def _missing_key(setting: Setting, nodes: tuple, tensors: dict) -> Diagnostic:
    have = sorted({k[len(n) + 1:] if k != n else BARE for n in nodes[:50] for k in tensors
                   if k == n or k.startswith(n + ".")})
    shown = ", ".join(nodes[:3]) + (f" and {len(nodes) - 3} more" if len(nodes) > 3 else "")
    hint = did_you_mean(setting.key, have) or (f"they hold: {', '.join(have)}" if have else
                                                "they hold no parameters or buffers")
    return Diagnostic("E0323", f"`{setting.key}` is no parameter or buffer of the nodes init rule "
                      f"{setting.rule + 1} selects ({shown})", setting.pos, hint)


def _tensor_args(setting: Setting, key: str, tensor, tensors: dict, env, cache) -> dict:
    scheme = setting.scheme
    if scheme.random and not tensor.is_floating_point():
        raise SpecError(Diagnostic("E0325", f"`{key}` holds {str(tensor.dtype).replace('torch.', '')} values: "
                                   f"`{scheme.name}` draws real numbers", setting.pos,
                                   "set a counter with zeros or a whole number"))
    fans = _fans(key, tensor, tensors)
    if scheme.fan and (fans is None or fans[2] is not tensor):
        raise SpecError(Diagnostic("E0325", f"`{key}` has {tensor.dim()} dimension"
                                   f"{'s' if tensor.dim() != 1 else ''} {list(tensor.shape)}: `{scheme.name}` "
                                   "needs the fan in and out of a tensor of 2 or more", setting.pos,
                                   "use normal, uniform, trunc_normal or a constant for biases and norms"))
    if not setting.deferred:
        return dict(setting.args)
    cache_key = (id(setting), fans[:2] if fans else None)
    if cache_key not in cache:
        names = _tensor_names(key, fans)
        args = dict(setting.args)
        for arg in setting.deferred:
            args[arg] = _value(setting.args[arg], {**env, **names}, setting.arg_pos[arg],
                               f"{scheme.name} {arg} of `{key}`")
        problems = _check_args(scheme, setting.key, args, dict(setting.arg_pos), setting.pos)
        if problems:
            raise SpecError(problems)
        cache[cache_key] = args
    return cache[cache_key]


def _fans(key: str, tensor, tensors: dict):
    """(fan_in, fan_out, the tensor they are of): this tensor's when it has 2 or more
    dimensions, else the `weight` beside it (a bias reads its weight's fans), else None."""
    candidates = [tensor]
    if tensor.dim() < 2 and "." in key:
        beside = tensors.get(key.rsplit(".", 1)[0] + ".weight")
        if beside is not None:
            candidates.append(beside)
    for t in candidates:
        if t.dim() >= 2:
            receptive = math.prod(t.shape[2:])
            return t.shape[1] * receptive, t.shape[0] * receptive, t
    return None


def _tensor_names(key: str, fans) -> dict:
    def unknown():
        raise ExpressionError("E0325", "fan_in and fan_out are not defined for a tensor of fewer than 2 "
                              "dimensions without a weight of 2 or more beside it")

    if fans is None:
        return {"fan_in": Lazy(unknown), "fan_out": Lazy(unknown), **_FUNCTIONS}
    return {"fan_in": fans[0], "fan_out": fans[1], **_FUNCTIONS}


def _torch_init():
    import torch.nn.init as init

    return init


def _draw_constant(tensor, value):
    tensor.fill_(value)


_DRAW = {
    "kaiming_normal": lambda t, **a: _torch_init().kaiming_normal_(t, **a),
    "kaiming_uniform": lambda t, **a: _torch_init().kaiming_uniform_(t, **a),
    "xavier_uniform": lambda t, **a: _torch_init().xavier_uniform_(t, **a),
    "xavier_normal": lambda t, **a: _torch_init().xavier_normal_(t, **a),
    "trunc_normal": lambda t, **a: _torch_init().trunc_normal_(t, **a),
    "normal": lambda t, **a: _torch_init().normal_(t, **a),
    "uniform": lambda t, **a: _torch_init().uniform_(t, **a),
    "constant": _draw_constant,
    "zeros": lambda t: t.zero_(),
    "ones": lambda t: t.fill_(1),
}
