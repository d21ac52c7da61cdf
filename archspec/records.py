"""Record classes: what `@dataclass(frozen=True)` makes, for a fraction of the start-up cost.

`dataclasses` imports `inspect` (about 4 ms) and compiles six methods per class (about
0.4 ms a class); the twenty records a cold `archspec summary` defines before it reads a
spec cost about 14 ms that way, a sixth of the whole command. Here only `__init__` is
compiled per class (so that constructing one stays as fast: the YAML loader makes a
Position for every value); equality, hashing, repr, `replace` and `as_dict` are shared.

    @record                       # frozen: attributes cannot be set after __init__
    class Position:
        file: str
        line: int
        col: int = 1
        notes: tuple = Factory(tuple)  # a default made per instance

`@record(slots=True)` gives the class `__slots__` (for graphs of many nodes),
`@record(frozen=False)` a mutable record. Fields are the class's annotations, in order.
"""
from __future__ import annotations

_set = object.__setattr__
_MISSING = object()  # stands for a Factory default not given


class Factory:
    """A default made anew for each record (dataclasses' `field(default_factory=...)`)."""

    __slots__ = ("make",)

    def __init__(self, make):
        self.make = make


def record(cls=None, *, frozen: bool = True, slots: bool = False):
    if cls is None:
        return lambda c: _make(c, frozen, slots)
    return _make(cls, frozen, slots)


def _make(cls, frozen: bool, slots: bool):
    names = tuple(cls.__dict__.get("__annotations__", {}))
    defaults = {name: cls.__dict__[name] for name in names if name in cls.__dict__}
    if slots:  # a slot cannot have a class attribute of its name: rebuild the class without them
        body = {k: v for k, v in cls.__dict__.items() if k not in defaults and k not in ("__dict__", "__weakref__")}
        body["__slots__"] = names
        qualname, cls = cls.__qualname__, type(cls)(cls.__name__, cls.__bases__, body)
        cls.__qualname__ = qualname
    namespace = {"_set": _set if frozen else setattr, "_MISSING": _MISSING}
    params, lines = [], []
    for name in names:
        if name not in defaults:
            params.append(name)
            lines.append(f"_set(self, {name!r}, {name})")
        elif isinstance(defaults[name], Factory):
            namespace[f"_make_{name}"] = defaults[name].make
            params.append(f"{name}=_MISSING")
            lines.append(f"_set(self, {name!r}, _make_{name}() if {name} is _MISSING else {name})")
        else:
            namespace[f"_default_{name}"] = defaults[name]
            params.append(f"{name}=_default_{name}")
            lines.append(f"_set(self, {name!r}, {name})")
    source = f"def __init__(self, {', '.join(params)}):\n    " + ("\n    ".join(lines) or "pass")
    exec(source, namespace)  # the generated text holds field names only, never data
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    cls._fields = names
    cls.__eq__, cls.__repr__ = _eq, _repr
    cls.__hash__ = _hash if frozen else None
    if frozen:
        cls.__setattr__, cls.__delattr__ = _refuse, _refuse
        if slots:  # pickle and copy set slots with setattr, which a frozen record refuses
            cls.__getstate__, cls.__setstate__ = _getstate, _setstate
    return cls


def _values(self) -> tuple:
    return tuple(getattr(self, name) for name in self._fields)


def _eq(self, other):
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _values(self) == _values(other)


def _hash(self):
    return hash(_values(self))


def _repr(self):
    return f"{type(self).__qualname__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self._fields)})"


def _refuse(self, name, *value):
    raise AttributeError(f"cannot assign to field {name!r}: a {type(self).__name__} is read-only")


def _getstate(self):
    return _values(self)


def _setstate(self, state):
    for name, value in zip(self._fields, state):
        _set(self, name, value)


def replace(obj, **changes):
    """A copy of a record with some fields changed (dataclasses.replace)."""
    return type(obj)(**{**{name: getattr(obj, name) for name in obj._fields}, **changes})


def as_dict(obj) -> dict:
    """A record's fields as a dict, records inside it (in tuples and lists too) as dicts."""
    return {name: _plain(getattr(obj, name)) for name in obj._fields}


def _plain(value):
    if hasattr(type(value), "_fields") and not isinstance(value, tuple):
        return as_dict(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
