"""How one node appears in PyTorch source, found generically from what its op builds.

An op says how it runs by returning an `nn.Module` (`Op.module`) or a callable and
keyword arguments (`Op.function`); nothing else is asked of it. A module becomes a
constructor call: its class must be one of `torch.nn`'s, and its constructor
arguments are read back from the attributes torch keeps under the parameter names
(`in_channels`, `kernel_size`, `eps`, ...), then checked by building the call on the
meta device and comparing every setting and every state-dict shape, so a module
whose constructor cannot be recovered is refused rather than written wrong. A
callable becomes its public name in `torch` or `torch.nn.functional`, an operator
(`a + b`), or a small helper function copied into the file when it is plain Python
that needs nothing but torch.
"""
from __future__ import annotations

import ast
import inspect
import operator
import re
import textwrap
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..diagnostics import error

NO_DEFAULT = object()
# Keyword arguments of torch.nn.functional that take an int or a tuple of one int per
# spatial dimension (torch's `_size_any_t`): (3, 3) may be written 3.
_SIZE_KEYWORDS = frozenset({"kernel_size", "stride", "padding", "dilation", "output_size"})
_INFIX = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/",
          operator.matmul: "@"}
_NEVER_FROM_MODULE = {"self", "device", "dtype"}


@dataclass(frozen=True)
class Arg:
    """One argument of a call as written for one node: `name` None for a positional
    one; `short` another spelling of the same value (3 for (3, 3)) or None."""

    label: str          # what the argument is called (positional ones too)
    keyword: bool
    value: object
    short: object = None
    default: object = NO_DEFAULT


@dataclass(frozen=True)
class Ctor:
    """A module constructor call: `nn.Conv2d(64, 64, 3, ...)`; containers hold children."""

    cls: str                      # `nn.Conv2d`
    args: tuple = ()              # Arg
    children: tuple = ()          # Ctor (nn.Sequential's modules, in order)


@dataclass(frozen=True)
class FunctionCall:
    """A stateless call: `F.relu(x)`, `torch.cat([a, b], dim=1)`, `a + b`, `helper(a, b, c)`."""

    text: str                     # what is called, or the operator
    infix: bool = False
    takes_list: bool = False
    args: tuple = ()              # keyword Args
    helper: tuple | None = None   # (name,) of a function copied into the file
    uses: frozenset = frozenset()  # module names it needs: torch, F


@dataclass(frozen=True)
class BareParameter:
    """An op's own nn.Parameter: its shape, whether it trains, and the value every
    element starts at, or the draw the op declares (`parameter_draw`); with neither the
    file starts it at zeros."""

    shape: tuple
    requires_grad: bool
    fill: float | None
    draw: tuple | None = None     # (tensor method, kwargs): torch.empty(shape).normal_(std=0.02)


_READ_VALUES_UP_TO = 1 << 16  # elements of a bare parameter built for real to read its start value


@dataclass
class Renderer:
    """Caches what each distinct (op, args, shapes) looks like in source, and the
    helper functions and classes the file must define (name -> (source, modules used))."""

    modules: dict = field(default_factory=dict)
    functions: dict = field(default_factory=dict)
    helpers: dict = field(default_factory=dict)

    def module(self, op, args, shapes, node_name: str) -> Ctor | BareParameter | None:
        key = (op.name, _frozen(args), tuple(shapes))
        if key not in self.modules:
            made = op.module(args, shapes, {"device": "meta"})
            if made is None:
                self.modules[key] = None
            elif isinstance(made, nn.Parameter):
                self.modules[key] = _bare(op, args, shapes, made)
            else:
                declared = getattr(op, "module_source", None)
                call = declared(args, shapes) if callable(declared) else None
                self.modules[key] = constructor(made, op.name, node_name, self.helpers, call)
        return self.modules[key]

    def function(self, fn, kwargs: dict, takes_list: bool, op_name: str, node_name: str) -> FunctionCall:
        key = (id(fn), _frozen(kwargs), takes_list)
        if key not in self.functions:
            self.functions[key] = function_call(fn, kwargs, takes_list, op_name, node_name, self.helpers)
        return self.functions[key]


def _bare(op, args, shapes, made: nn.Parameter) -> BareParameter:
    draw = getattr(op, "parameter_draw", None)
    if draw is not None:
        return BareParameter(tuple(made.shape), made.requires_grad, None, draw)
    fill = None
    if made.numel() <= _READ_VALUES_UP_TO:  # small: build it for real to see what it starts at
        real = op.module(args, shapes, {})
        first = real.detach().reshape(-1)[:1]
        if real.numel() and bool((real == first).all()):
            fill = _shortest(first.item(), real.dtype)
    return BareParameter(tuple(made.shape), made.requires_grad, fill)


def _shortest(value: float, dtype) -> float:
    """The shortest decimal that gives the same `dtype` value: 1e-06, not the
    9.999999974752427e-07 a float32 holds for it."""
    target = torch.tensor(value, dtype=dtype)
    for digits in range(1, 18):
        candidate = float(f"{value:.{digits}g}")
        if torch.tensor(candidate, dtype=dtype) == target:
            return candidate
    return value


def _frozen(value):
    if hasattr(value, "items"):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


# -- modules ------------------------------------------------------------------------

def constructor(module: nn.Module, op_name: str, node_name: str, helpers: dict, declared=None) -> Ctor:
    """The constructor call that builds `module` again, checked on the meta device.

    The arguments are the op's own declaration when it has one (`Op.module_source`:
    class, positional args, keyword args), else read back off the module under the
    constructor's parameter names. A class that is not torch.nn's is copied into the
    file (into `helpers`) when it is plain Python over torch; otherwise E0615."""
    cls = type(module)
    if cls is nn.Sequential and declared is None:
        if list(module._modules) != [str(i) for i in range(len(module))]:
            raise _cannot(op_name, node_name, "it builds an nn.Sequential with named children")
        return Ctor("nn.Sequential", (), tuple(constructor(m, op_name, node_name, helpers) for m in module))
    if declared is not None:
        cls = declared[0]
    name = _class_name(cls, op_name, node_name, helpers)
    args = _declared_args(cls, declared) if declared is not None else _args_read_back(cls, module, op_name, node_name)
    full = Ctor(name, tuple(args))
    if not _rebuilds(cls, full, module, shortened=False):
        raise _cannot(op_name, node_name, f"{name} built again from the arguments "
                      f"{'it declares' if declared is not None else 'read off the module'} differs from it")
    if any(a.short is not None for a in args) and not _rebuilds(cls, full, module, shortened=True):
        full = Ctor(full.cls, tuple(Arg(a.label, a.keyword, a.value, None, a.default) for a in args))
    return full


def _class_name(cls, op_name, node_name, helpers) -> str:
    if getattr(nn, cls.__name__, None) is cls:
        return f"nn.{cls.__name__}"
    why: list = []
    if not copy_into(cls, helpers, why):
        raise _cannot(op_name, node_name, f"it builds a {cls.__module__}.{cls.__qualname__}, which is not "
                      f"torch.nn's and cannot be copied into the file: {why[0]}")
    return cls.__name__


def _args_read_back(cls, module, op_name, node_name) -> list:
    args = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in _NEVER_FROM_MODULE or p.kind == p.VAR_KEYWORD:  # **factory: never given
            continue
        if p.kind == p.VAR_POSITIONAL:
            raise _cannot(op_name, node_name, f"{cls.__name__} takes *args")
        default = p.default if p.default is not p.empty else NO_DEFAULT
        if hasattr(module, p.name):
            value = getattr(module, p.name)
            if isinstance(default, bool) and (value is None or isinstance(value, torch.Tensor)):
                value = value is not None   # `bias=False` leaves no bias parameter
        elif default is not NO_DEFAULT:
            value = default
        else:
            raise _cannot(op_name, node_name, f"{cls.__name__}'s `{p.name}` is not kept on the module "
                          "under that name (an op can declare it: see `module_source` in docs/errors.md#e0615)")
        if isinstance(value, (nn.Module, torch.Tensor)):
            raise _cannot(op_name, node_name, f"{cls.__name__}'s `{p.name}` is a tensor or module")
        keyword = default is not NO_DEFAULT or p.kind == p.KEYWORD_ONLY
        args.append(Arg(p.name, keyword, value, _short(value), default))
    return args


def _declared_args(cls, declared) -> list:
    """Args of an op's `module_source` declaration, labelled and given their defaults
    from the constructor's signature where it has them."""
    _, positional, keywords = declared
    try:
        parameters = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    except (TypeError, ValueError):
        parameters = []
    labels = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
    args = [Arg(labels[i] if i < len(labels) else f"arg{i}", False, v, _short(v)) for i, v in enumerate(positional)]
    args += [Arg(k, True, v, _short(v), defaults.get(k, NO_DEFAULT)) for k, v in keywords.items()]
    return args


def _short(value):
    """3 for (3, 3): torch's size arguments take either."""
    if isinstance(value, tuple) and value and all(v == value[0] and type(v) is int for v in value):
        return value[0]
    return None


def _rebuilds(cls, ctor: Ctor, module: nn.Module, shortened: bool) -> bool:
    pick = (lambda a: a.short if shortened and a.short is not None else a.value)
    positional = [pick(a) for a in ctor.args if not a.keyword]
    keywords = {a.label: pick(a) for a in ctor.args if a.keyword}
    try:
        with torch.device("meta"):  # allocates nothing, whatever the constructor takes
            again = cls(*positional, **keywords)
    except Exception:  # arguments the constructor refuses: not a way to build it again
        return False
    return _same_module(module, again)


def _same_module(a: nn.Module, b: nn.Module) -> bool:
    if type(a) is not type(b) or _settings(a) != _settings(b):
        return False
    layout = lambda m: [(k, tuple(v.shape), v.dtype) for k, v in m.state_dict().items()]
    if layout(a) != layout(b) or list(a._modules) != list(b._modules):
        return False
    return all(_same_module(x, y) for x, y in zip(a.children(), b.children()))


def _settings(module: nn.Module) -> dict:
    return {k: v for k, v in vars(module).items()
            if not k.startswith("_") and not isinstance(v, (torch.Tensor, nn.Module))}


# -- functions ----------------------------------------------------------------------

_PUBLIC: dict | None = None


def _public_names() -> dict:
    """id(callable) -> how source names it: `F.relu`, `torch.cat`."""
    global _PUBLIC
    if _PUBLIC is None:
        _PUBLIC = {}
        for prefix, namespace in (("torch", torch), ("F", F)):  # F wins: `F.relu` over `torch.relu`
            for name in dir(namespace):
                if not name.startswith("_"):
                    obj = getattr(namespace, name, None)
                    if callable(obj) and not isinstance(obj, type):
                        _PUBLIC[id(obj)] = (f"{prefix}.{name}", prefix)
    return _PUBLIC


def function_call(fn, kwargs: dict, takes_list: bool, op_name: str, node_name: str,
                  helpers: dict) -> FunctionCall:
    args = tuple(Arg(k, True, v, _short(v) if k in _SIZE_KEYWORDS else None) for k, v in kwargs.items())
    if fn in _INFIX and not kwargs and not takes_list:
        return FunctionCall(_INFIX[fn], infix=True)
    named = _public_names().get(id(fn))
    if named is not None:
        defaults = _defaults(fn)
        args = tuple(Arg(a.label, True, a.value, a.short, defaults.get(a.label, NO_DEFAULT)) for a in args)
        return FunctionCall(named[0], takes_list=takes_list, args=args, uses=frozenset({named[1]}))
    why: list = []
    if not copy_into(fn, helpers, why):
        where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        raise _cannot(op_name, node_name, f"its function {where} is not part of torch and cannot be copied "
                      f"into the file: {why[0]}")
    return FunctionCall(fn.__name__, takes_list=takes_list, args=args, helper=(fn.__name__,))


def _defaults(fn) -> dict:
    """Keyword defaults of a torch function: from its signature, or, for builtins and
    dispatchers that have none, from the signature its docstring starts with."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    if not parameters or any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        return _documented_defaults(fn)
    return {p.name: p.default for p in parameters if p.default is not p.empty}


def _documented_defaults(fn) -> dict:
    first = (getattr(fn, "__doc__", None) or "").strip().split("\n", 1)[0]
    match = re.match(r"^\w+\((.*)\)(\s*->.*)?$", first)
    if not match:
        return {}
    try:
        arguments = ast.parse(f"def f({match[1]}): pass").body[0].args
        positional = arguments.posonlyargs + arguments.args
        pairs = list(zip(positional[len(positional) - len(arguments.defaults):], arguments.defaults))
        pairs += [(a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults) if d is not None]
        return {a.arg: ast.literal_eval(d) for a, d in pairs}
    except (SyntaxError, ValueError):
        return {}


_TORCH_GLOBALS = {"torch": torch, "F": F, "nn": nn}


@dataclass(frozen=True)
class Copied:
    """A function or module class copied into the file: its source, the torch names it
    reads (`torch`, `F`, `nn`) and the copied names it calls."""

    obj: object
    source: str
    uses: frozenset
    needs: tuple


def _globals_read(function) -> dict:
    """The module globals a function reads (inspect.getclosurevars, minus `__class__`)."""
    names = set(function.__code__.co_names)
    for const in function.__code__.co_consts:  # names read by comprehensions and inner functions
        if hasattr(const, "co_names"):
            names |= set(const.co_names)
    space = function.__globals__
    return {n: space[n] for n in names if n in space}


def copy_into(obj, helpers: dict, why: list | None = None) -> bool:
    """Add `obj` (a plain function, or a module class whose bases are torch.nn's) and
    the plain functions and classes it reads to `helpers`, if all of them read no
    global but torch's modules and each other; False, adding nothing, otherwise (and
    the reason appended to `why`)."""
    found: dict = {}
    if not _copy(obj, found, helpers, why if why is not None else []):
        return False
    helpers.update(found)
    return True


def _copy(obj, found: dict, helpers: dict, why: list) -> bool:
    name = getattr(obj, "__name__", None)
    for known in (found, helpers):
        if name in known:
            if known[name].obj is not obj:
                why.append(f"two different things are named `{name}`")
            return known[name].obj is obj
    if inspect.isclass(obj):
        if not issubclass(obj, nn.Module) or not all(getattr(nn, b.__name__, None) is b for b in obj.__bases__):
            why.append(f"`{name}` derives from a class that is not torch.nn's")
            return False
        functions = [getattr(v, "__func__", v) for v in vars(obj).values()]
        functions = [f for f in functions if inspect.isfunction(f)]
    elif inspect.isfunction(obj) and name != "<lambda>":
        functions = [obj]
    else:
        why.append(f"`{name}` is not a plain Python function")
        return False
    try:
        source = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        why.append(f"the source of `{name}` cannot be read")
        return False
    if source.lstrip().startswith("@"):  # a decorator would have to be copied too
        why.append(f"`{name}` is decorated")
        return False
    uses, needs = set(), []
    for function in functions:
        if set(function.__code__.co_freevars) - {"__class__"}:  # a closure; `super()` alone is fine
            why.append(f"`{function.__qualname__}` is a closure")
            return False
        for key, value in _globals_read(function).items():
            if _TORCH_GLOBALS.get(key) is value:
                uses.add(key)
            elif (inspect.isfunction(value) or inspect.isclass(value)) and value.__name__ == key:
                needs.append(value)
            else:
                why.append(f"`{function.__qualname__}` reads the global `{key}`, which is neither torch, "
                           "nn, F nor a function or class that can be copied")
                return False
    if inspect.isclass(obj):
        uses.add("nn")
    found[name] = Copied(obj, source, frozenset(uses), tuple(n.__name__ for n in needs))
    return all(_copy(need, found, helpers, why) for need in needs)


def _cannot(op_name: str, node_name: str, why: str):
    return error("E0615", f"cannot eject node `{node_name}`: op `{op_name}` has no torch-only source form: {why}",
                 hint="eject writes files that import torch only; see docs/errors.md#e0615 for what an op "
                      "needs to provide")
