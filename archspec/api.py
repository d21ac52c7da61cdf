"""The Python API: load, compile, build, summarize. The command line is a shell over
these functions, so both check the same things and report the same errors.

Problems a caller can cause raise `SpecError`; warnings (nodes that feed no output)
go through `warnings.warn` as `SpecWarning`.
"""
from __future__ import annotations

import gc
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, replace
from os import PathLike

from .check import ExpectReport, check_expectations
from .diagnostics import Diagnostic, SpecError, error
from .expand import expand
from .infer import InferredGraph, infer
from .init import EMPTY as EMPTY_PLAN, Plan, plan as plan_init
from .spec import Spec, load as _load
from .summary import DTYPE_BYTES, Summary, summarize_graph

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (PEP 781)
if TYPE_CHECKING:
    from .builder import CompiledNetwork


class SpecWarning(UserWarning):
    """A diagnostic that does not stop a build; `diagnostic` holds its code and position."""

    def __init__(self, diagnostic: Diagnostic):
        super().__init__(diagnostic.render(with_source=False))
        self.diagnostic = diagnostic


@dataclass(frozen=True)
class Compiled:
    """A spec worked out without allocating anything: its graph with every shape,
    parameter count and MAC, and what its `expect:` check found."""

    spec: Spec
    inferred: InferredGraph
    expect: ExpectReport | None  # None when the figures were not checked
    init: Plan = EMPTY_PLAN      # what the spec's `init:` sets (archspec/init.py)


def load(path: str | PathLike, input_shape=None, scale: str | None = None, **overrides) -> Spec:
    """Read, validate and settle a spec; `scale` picks a named scale, keywords override
    its file-level `args`."""
    return _load(path, input_shape=input_shape, scale=scale, **overrides)


def _spec(path_or_spec, input_shape, scale, overrides) -> Spec:
    if isinstance(path_or_spec, Spec):
        if overrides or input_shape is not None or scale is not None:
            return path_or_spec.with_overrides(input_shape=input_shape, scale=scale, **overrides)
        return path_or_spec
    return load(path_or_spec, input_shape=input_shape, scale=scale, **overrides)


def compile_spec(path_or_spec, input_shape=None, check: bool = True, max_params: int | None = None,
                 scale: str | None = None, **overrides) -> Compiled:
    """Expand and infer a spec, and check its `expect:` figures and the `max_params`
    budget; allocates nothing."""
    if max_params is not None:
        _need_count("max_params", max_params, least=0)
    spec = _spec(path_or_spec, input_shape, scale, overrides)
    with _collector_paused():
        expansion = expand(spec)
        if expansion.errors:
            raise SpecError(_with_shape_errors(expansion))
        inferred = infer(expansion.graph, known=expansion.facts)
    for diagnostic in inferred.graph.warnings:
        warnings.warn(SpecWarning(diagnostic), stacklevel=2)
    init = plan_init(spec, inferred.graph)
    if max_params is not None and inferred.total_params > max_params:
        raise error("E0703", f"{spec.name} has {inferred.total_params:,} parameters, over the budget "
                    f"of {max_params:,}", hint="nothing was allocated; raise --max-params or shrink the spec")
    report = check_expectations(spec, inferred) if check else None
    return Compiled(spec, inferred, report, init)


@contextmanager
def _collector_paused():
    """Expansion allocates many small objects and frees none of them as cycles; the
    cyclic garbage collector's passes over them cost more than half its time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _with_shape_errors(expansion) -> list:
    """Expansion's errors and those of the shapes of the nodes they left sound, so one
    run reports every independent mistake; in source order."""
    diagnostics = list(expansion.errors)
    if expansion.sound_part is not None:
        try:
            infer(expansion.sound_part)
        except SpecError as more:
            diagnostics.extend(more.diagnostics)
    return sorted(diagnostics, key=lambda d: (d.pos is None, d.pos and (d.pos.file, d.pos.line, d.pos.col)))


def build(path_or_spec, *, device=None, dtype=None, verify: bool = False, check: bool = True,
          input_shape=None, max_params: int | None = None, scale: str | None = None, init: bool = True,
          weights=None, weights_map=None, **overrides) -> "CompiledNetwork":
    """Compile a spec into a torch.nn.Module (on `device`/`dtype` directly, "meta" included).

    `check=False` skips the spec's `expect:` figures; `verify=True` also runs a
    meta-device forward and compares every inferred shape. The weights start as the
    spec's `init:` says (docs/init.md), drawn from torch's generator (seed it with
    torch.manual_seed); `init=False` keeps what PyTorch's module constructors drew, and
    a meta-device build draws nothing. `weights` (a checkpoint file, or a state dict)
    is loaded strictly, after `weights_map` ({old: new} key prefixes, or ["old=new",
    ...]) renames its keys; it sets every tensor, so `init:` is then checked but not
    drawn."""
    compiled = compile_spec(path_or_spec, input_shape, check=check, max_params=max_params, scale=scale,
                            **overrides)
    return build_compiled(compiled, device=device, dtype=dtype, verify=verify, init=init, weights=weights,
                          weights_map=weights_map)


def build_compiled(compiled: Compiled, *, device=None, dtype=None, verify: bool = False, init: bool = True,
                   weights=None, weights_map=None) -> "CompiledNetwork":
    """The module of a spec already compiled (see `compile_spec`); the rest as for `build`."""
    from .builder import build_module, check_memory  # torch is imported here, not for validate or summary

    check_memory(compiled.inferred, compiled.spec.name, device, dtype)
    if verify:
        from .verify import verify as verify_shapes

        verify_shapes(compiled.inferred, compiled.spec.name)
    if weights is not None:  # a strict load sets every tensor: drawing them first would be wasted
        from .weights import build_with_weights

        return build_with_weights(compiled, weights, weights_map, device=device, dtype=dtype)
    net = build_module(compiled.inferred, compiled.spec.name, device=device, dtype=dtype)
    if init:
        from .init import apply

        apply(compiled.init, net)
    return net


def summarize(path_or_spec, *, batch: int = 1, dtype: str = "float32", depth: int | None = None,
              input_shape=None, max_params: int | None = None, scale: str | None = None,
              **overrides) -> Summary:
    """Shapes, parameters, MACs and memory of every node (rows folded to `depth` name
    parts if given), worked out without building anything."""
    _need_count("batch", batch)
    if depth is not None:
        _need_count("depth", depth)
    if dtype not in DTYPE_BYTES:
        raise error("E0604", f"dtype must be one of {', '.join(DTYPE_BYTES)}, got {dtype!r}")
    compiled = compile_spec(path_or_spec, input_shape, check=False, max_params=max_params, scale=scale,
                            **overrides)
    summary = replace(summarize_graph(compiled.inferred, compiled.spec.name, batch, dtype),
                      scale=compiled.spec.scale)
    return summary.folded(depth, compiled.inferred.graph.aliases) if depth else summary


def _need_count(name: str, value, least: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise error("E0604", f"{name} must be a whole number of at least {least}, got {value!r}")


def summarize_scales(path_or_spec, **overrides) -> list:
    """One summary per named scale of the spec, in the order they are declared."""
    spec = _spec(path_or_spec, None, None, {})
    if not spec.scales:
        raise error("E0607", f"{spec.path} declares no `scales:`", hint="see the README's section on scales")
    return [summarize(spec, scale=name, **overrides) for name in spec.scales]
