"""The op registry: built-in ops, ops registered in-process, and ops from plugins.

A plugin is an installed distribution with entry points in the group `archspec.ops`,
one per op, the entry point's name being the op's name:

    [project.entry-points."archspec.ops"]
    scaled_tanh = "archspec_scaled_tanh:ScaledTanh"

Plugins are looked at only when a name is not a built-in op (or when every op is
listed, for the schema and docs), and an op's module is imported only when a spec
uses it or the list is asked for: a spec never names code, and a plugin that fails
to import takes down only the specs that use its op. Nothing here imports torch.
"""
from __future__ import annotations

from collections.abc import Mapping

from .base import ARG_KINDS, Arg, Op, OpError

PLUGIN_GROUP = "archspec.ops"


class RegistrationError(Exception):
    """An op declaration that cannot be registered; says why."""


class PluginError(Exception):
    """A plugin op that could not be loaded; `distribution` names the package at fault."""

    def __init__(self, op_name: str, distribution: str, reason: str):
        super().__init__(f"op `{op_name}` comes from the plugin {distribution}, which failed to load: {reason}")
        self.op_name, self.distribution, self.reason = op_name, distribution, reason


class Registry(Mapping):
    """name -> Op. Reading a name that a plugin provides loads that plugin."""

    def __init__(self):
        self._ops: dict[str, Op] = {}
        self._origin: dict[str, str] = {}   # op name -> "archspec", "register_op" or a distribution
        self._plugins: dict | None = None   # op name -> entry point, found on first need
        self._failed: dict[str, PluginError] = {}
        self.version = 0  # bumped on every registration, so derived caches can tell

    # -- registering ---------------------------------------------------------
    def add(self, op_or_class, origin: str = "archspec", replace: bool = False) -> Op:
        op = op_or_class() if isinstance(op_or_class, type) else op_or_class
        _check_declaration(op, origin)
        if op.name in self._ops and not (replace and self._origin[op.name] == origin):
            raise RegistrationError(f"{origin}: an op named `{op.name}` is already registered "
                                    f"by {self._origin[op.name]} ({type(self._ops[op.name]).__qualname__})")
        self._ops[op.name] = op
        self._origin[op.name] = origin
        self.version += 1
        return op

    def remove(self, name: str) -> None:
        """Forget an op registered in this process (tests, notebooks)."""
        if self._origin.get(name) != "register_op":
            raise RegistrationError(f"`{name}` was not registered with register_op")
        del self._ops[name], self._origin[name]
        self.version += 1

    def builtin(self) -> dict:
        """The ops archspec itself ships, which the exported schema file describes."""
        return {name: op for name, op in sorted(self._ops.items()) if self._origin[name] == "archspec"}

    def origin(self, name: str) -> str:
        return self._origin[name]

    # -- reading -------------------------------------------------------------
    def __getitem__(self, name: str) -> Op:
        op = self._ops.get(name)
        if op is None:
            op = self._load_plugin(name)
        return op

    def get(self, name, default=None):
        """The op, or `default` for a name nobody provides; a plugin that fails to
        load raises PluginError rather than pretending the name is unknown."""
        if not isinstance(name, str):
            return default
        try:
            return self[name]
        except KeyError:
            return default

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and (name in self._ops or name in self._plugin_entry_points())

    def __iter__(self):
        return iter(sorted(set(self._ops) | set(self._plugin_entry_points())))

    def __len__(self) -> int:
        return len(set(self._ops) | set(self._plugin_entry_points()))

    def available(self) -> dict:
        """The ops loaded so far (built-ins, registered ones, plugins already used),
        without looking for plugins."""
        return dict(sorted(self._ops.items()))

    def everything(self) -> dict:
        """Every op that can be used: built-ins, registered ones and every plugin that
        loads (those that fail are kept in `failures()`)."""
        for name in list(self._plugin_entry_points()):
            if name not in self._ops and name not in self._failed:
                try:
                    self._load_plugin(name)
                except PluginError:
                    pass
        return dict(sorted(self._ops.items()))

    def failures(self) -> dict:
        return dict(self._failed)

    # -- plugins -------------------------------------------------------------
    def _plugin_entry_points(self) -> dict:
        if self._plugins is None:
            from importlib.metadata import entry_points

            self._plugins = {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}
        return self._plugins

    def _load_plugin(self, name: str) -> Op:
        if name in self._failed:
            raise self._failed[name]
        entry = self._plugin_entry_points().get(name)
        if entry is None:
            raise KeyError(name)
        dist = entry.dist
        distribution = f"`{dist.name} {dist.version}`" if dist is not None else f"`{entry.value}`"
        try:
            declared = entry.load()
            if not (isinstance(declared, type) and issubclass(declared, Op)):
                raise RegistrationError(f"entry point `{entry.value}` is not an archspec Op class")
            op = declared()
            if op.name != name:
                raise RegistrationError(f"its entry point is named `{name}` but the op calls itself "
                                        f"`{op.name}`; the two must agree")
            self.add(op, origin=distribution)
        except Exception as exc:  # any failure inside someone else's package is theirs
            reason = str(exc) if isinstance(exc, RegistrationError) else f"{type(exc).__name__}: {exc}"
            self._failed[name] = PluginError(name, distribution, reason)
            raise self._failed[name] from None
        return op


def _check_declaration(op, origin: str) -> None:
    """Refuse what would fail later, far from the declaration."""
    where = f"{origin}: op class {type(op).__qualname__}"
    if not isinstance(op, Op):
        raise RegistrationError(f"{origin}: {op!r} is not an archspec Op")
    if not isinstance(op.name, str) or not op.name.isidentifier() or not op.name.islower():
        raise RegistrationError(f"{where} needs a `name` of lowercase letters, digits and _, got {op.name!r}")
    cls = type(op)
    if cls.module is Op.module and cls.function is Op.function:
        raise RegistrationError(f"{where} (`{op.name}`) builds neither a module nor a function: "
                                "override `module` (weights) or `function` (stateless)")
    if not isinstance(op.args, dict):
        raise RegistrationError(f"{where} (`{op.name}`): `args` must be a dict of name -> Arg")
    for key, arg in op.args.items():
        if not isinstance(arg, Arg):
            raise RegistrationError(f"{where} (`{op.name}`): argument `{key}` is not an Arg")
        if arg.kind not in ARG_KINDS:
            raise RegistrationError(f"{where} (`{op.name}`): argument `{key}` has unknown kind "
                                    f"{arg.kind!r}; kinds: {', '.join(ARG_KINDS)}")
        if arg.kind == "choice" and not arg.choices:
            raise RegistrationError(f"{where} (`{op.name}`): choice argument `{key}` lists no choices")
    if not op.examples:
        raise RegistrationError(f"{where} (`{op.name}`) declares no `examples`: each op proves "
                                "itself with at least one (see docs/ops.md)")
    counts = op.inputs if isinstance(op.inputs, tuple) else (op.inputs,)
    if op.inputs is not None and not (
            all(isinstance(c, int) and c >= 1 for c in counts[:1]) and len(counts) <= 2
            and (len(counts) == 1 or counts[1] is None or (isinstance(counts[1], int) and counts[1] >= counts[0]))):
        raise RegistrationError(f"{where} (`{op.name}`): `inputs` must be a positive int, a (least, most) pair "
                                "or None (two or more)")
    for example in op.examples:
        try:
            op.normalise(dict(example.args))
        except OpError as exc:
            raise RegistrationError(f"{where} (`{op.name}`): an example's arguments are wrong: "
                                    f"{exc.message}") from None


REGISTRY = Registry()


def register(cls):
    """Class decorator for built-in ops."""
    REGISTRY.add(cls)
    return cls


def register_op(op_or_class, replace: bool = False):
    """Register an op in this process (notebooks, tests); returns the Op instance.

    Raises RegistrationError for an incomplete declaration, or for a name already
    taken (`replace=True` lets an op registered this way be declared again, as a
    notebook cell run twice does; built-in and plugin ops are never replaced)."""
    return REGISTRY.add(op_or_class, origin="register_op", replace=replace)
