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
    helper: tuple | None = None   # (name, source) of a function copied into the file
    uses: frozenset = frozenset()  # module names it needs: torch, F


@dataclass(frozen=True)
class BareParameter:
    """An op's own nn.Parameter: its shape, whether it trains, and the value every
    element starts at (None when they differ: the file starts it at zeros)."""

    shape: tuple
    requires_grad: bool
    fill: float | None


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
                self.modules[key] = constructor(made, op.name, node_name, self.helpers)
        return self.modules[key]

    def function(self, fn, kwargs: dict, takes_list: bool, op_name: str, node_name: str) -> FunctionCall:
        key = (id(fn), _frozen(kwargs), takes_list)
        if key not in self.functions:
            call = function_call(fn, kwargs, takes_list, op_name, node_name)
            if call.helper is not None:
                self.helpers.setdefault(call.helper[0], (call.helper[1], call.uses))
            self.functions[key] = call
        return self.functions[key]


def _bare(op, args, shapes, made: nn.Parameter) -> BareParameter:
    fill = None
    if made.numel() <= _READ_VALUES_UP_TO:  # small: build it for real to see what it starts at
        real = op.module(args, shapes, {})
        first = real.detach().reshape(-1)[:1]
        if real.numel() and bool((real == first).all()):
            fill = first.item()
    return BareParameter(tuple(made.shape), made.requires_grad, fill)


def _frozen(value):
    if hasattr(value, "items"):
        return tuple(sorted((k, _frozen(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


# -- modules ------------------------------------------------------------------------

def constructor(module: nn.Module, op_name: str, node_name: str, helpers: dict) -> Ctor:
    """The constructor call that builds `module` again, checked on the meta device. A
    module class that is not torch.nn's is copied into the file (into `helpers`) when
    it is plain Python over torch.nn; otherwise E0615."""
    cls = type(module)
    if cls is nn.Sequential:
        if list(module._modules) != [str(i) for i in range(len(module))]:
            raise _cannot(op_name, node_name, "it builds an nn.Sequential with named children")
        return Ctor("nn.Sequential", (), tuple(constructor(m, op_name, node_name, helpers) for m in module))
    if getattr(nn, cls.__name__, None) is cls:
        name = f"nn.{cls.__name__}"
    else:
        copied = _class_source(cls)
        if copied is None:
            raise _cannot(op_name, node_name, f"it builds a {cls.__module__}.{cls.__qualname__}, which is not "
                          "part of torch.nn nor a subclass of one written in plain Python over torch")
        name = cls.__name__
        if helpers.get(name, copied)[0] != copied[0]:
            raise _cannot(op_name, node_name, f"two different classes are named {name}")
        helpers[name] = copied
    args = []
    for p in inspect.signature(cls.__init__).parameters.values():
        if p.name in _NEVER_FROM_MODULE:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise _cannot(op_name, node_name, f"{cls.__name__} takes *args or **kwargs")
        default = p.default if p.default is not p.empty else NO_DEFAULT
        if hasattr(module, p.name):
            value = getattr(module, p.name)
            if isinstance(default, bool) and (value is None or isinstance(value, torch.Tensor)):
                value = value is not None   # `bias=False` leaves no bias parameter
        elif default is not NO_DEFAULT:
            value = default
        else:
            raise _cannot(op_name, node_name, f"{cls.__name__}'s `{p.name}` is not kept on the module")
        if isinstance(value, (nn.Module, torch.Tensor)):
            raise _cannot(op_name, node_name, f"{cls.__name__}'s `{p.name}` is a tensor or module")
        keyword = default is not NO_DEFAULT or p.kind == p.KEYWORD_ONLY
        args.append(Arg(p.name, keyword, value, _short(value), default))
    full = Ctor(name, tuple(args))
    if not _rebuilds(cls, full, module, shortened=False):
        raise _cannot(op_name, node_name, f"{name} built again from the arguments read off "
                      "the module differs from it")
    if any(a.short is not None for a in args) and not _rebuilds(cls, full, module, shortened=True):
        full = Ctor(full.cls, tuple(Arg(a.label, a.keyword, a.value, None, a.default) for a in args))
    return full


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
        again = cls(*positional, **keywords, device="meta")
    except Exception:
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


def function_call(fn, kwargs: dict, takes_list: bool, op_name: str, node_name: str) -> FunctionCall:
    args = tuple(Arg(k, True, v, _short(v) if k in _SIZE_KEYWORDS else None) for k, v in kwargs.items())
    if fn in _INFIX and not kwargs and not takes_list:
        return FunctionCall(_INFIX[fn], infix=True)
    named = _public_names().get(id(fn))
    if named is not None:
        defaults = _defaults(fn)
        args = tuple(Arg(a.label, True, a.value, a.short, defaults.get(a.label, NO_DEFAULT)) for a in args)
        return FunctionCall(named[0], takes_list=takes_list, args=args, uses=frozenset({named[1]}))
    helper = _helper(fn)
    if helper is None:
        where = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
        raise _cannot(op_name, node_name, f"its function {where} is neither part of torch nor plain Python "
                      "that needs only torch")
    return FunctionCall(fn.__name__, takes_list=takes_list, args=args, helper=helper[:2], uses=helper[2])


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


def _helper(fn):
    """(name, source, modules it uses) of a plain function that reads no global but
    torch's modules, or None."""
    if not inspect.isfunction(fn) or fn.__name__ == "<lambda>" or fn.__closure__:
        return None
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        found = inspect.getclosurevars(fn)
    except (OSError, TypeError):
        return None
    if found.nonlocals or any(_TORCH_GLOBALS.get(k) is not v for k, v in found.globals.items()):
        return None
    if source.lstrip().startswith("@"):
        return None
    return fn.__name__, source, frozenset(found.globals)


def _class_source(cls):
    """(source, modules used) of a module class written in plain Python whose bases are
    torch.nn classes and whose methods read no global but torch's modules, or None."""
    if not all(getattr(nn, base.__name__, None) is base for base in cls.__bases__):
        return None
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return None
    uses = set()
    for value in vars(cls).values():
        function = getattr(value, "__func__", value)
        if inspect.isfunction(function):
            if function.__closure__:
                return None
            found = inspect.getclosurevars(function)
            if any(_TORCH_GLOBALS.get(k) is not v for k, v in found.globals.items()):
                return None
            uses |= set(found.globals)
    return source, frozenset(uses | {"nn"})


def _cannot(op_name: str, node_name: str, why: str):
    return error("E0615", f"cannot eject node `{node_name}`: op `{op_name}` has no torch-only source form: {why}",
                 hint="eject writes files that import torch only; see docs/errors.md#e0615 for what an op "
                      "needs to provide")
