"""The Python API: load, build, summarize. Other tools call these names."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from os import PathLike
from typing import TYPE_CHECKING

from .diagnostics import SpecError, error
from .check import check_expectations
from .expand import expand
from .infer import InferredGraph, infer
from .spec import Spec, load as _load
from .summary import Summary, summarize_graph

if TYPE_CHECKING:
    from .builder import CompiledNetwork


def load(path: str | PathLike, input_shape=None, **overrides) -> Spec:
    """Read, validate and settle a spec; keywords override its file-level `args`."""
    return _load(path, input_shape=input_shape, **overrides)


def _spec(path_or_spec, input_shape, overrides) -> Spec:
    if isinstance(path_or_spec, Spec):
        if overrides or input_shape is not None:
            return path_or_spec.with_overrides(input_shape=input_shape, **overrides)
        return path_or_spec
    return load(path_or_spec, input_shape=input_shape, **overrides)


def compile_spec(path_or_spec, input_shape=None, check: bool = True, max_params: int | None = None,
                 **overrides) -> tuple[Spec, InferredGraph]:
    """Expand and infer a spec, and check its `expect:` figures and the `max_params`
    budget; allocates nothing."""
    spec = _spec(path_or_spec, input_shape, overrides)
    with _collector_paused():
        try:
            graph = expand(spec)
        except SpecError as exc:
            _add_shape_errors(exc)
            raise
        inferred = infer(graph)
    if max_params is not None and inferred.total_params > max_params:
        raise error("E0703", f"{spec.name} has {inferred.total_params:,} parameters, over the budget "
                    f"of {max_params:,}", hint="nothing was allocated; raise --max-params or shrink the spec")
    if check:
        check_expectations(spec, inferred)
    return spec, inferred


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


def _add_shape_errors(exc: SpecError) -> None:
    """After expansion errors, check the shapes of the nodes they left sound, so one
    run reports every independent mistake; diagnostics end up in source order."""
    partial = getattr(exc, "partial_graph", None)
    if partial is not None:
        try:
            infer(partial)
        except SpecError as more:
            exc.diagnostics.extend(more.diagnostics)
    exc.diagnostics.sort(key=lambda d: (d.pos is None, d.pos and (d.pos.file, d.pos.line, d.pos.col)))


def build(path_or_spec, *, device=None, dtype=None, verify: bool = False, check: bool = True,
          input_shape=None, max_params: int | None = None, **overrides) -> "CompiledNetwork":
    """Compile a spec into a torch.nn.Module (on `device`/`dtype` directly, "meta" included).

    `check=False` skips the spec's `expect:` figures; `verify=True` also runs a
    meta-device forward and compares every inferred shape."""
    spec, inferred = compile_spec(path_or_spec, input_shape, check=check, max_params=max_params,
                                  **overrides)
    if verify:
        from .verify import verify as verify_shapes

        verify_shapes(inferred, spec.name)
    from .builder import build_module  # torch is imported here, not for validate or summary

    return build_module(inferred, spec.name, device=device, dtype=dtype)


def summarize(path_or_spec, *, batch: int = 1, dtype: str = "float32", depth: int | None = None,
              input_shape=None, **overrides) -> Summary:
    """Shapes, parameters, MACs and memory of every node (rows folded to `depth` name
    parts if given), worked out without building anything."""
    spec, inferred = compile_spec(path_or_spec, input_shape, check=False, **overrides)
    summary = summarize_graph(inferred, spec.name, batch, dtype)
    return summary.folded(depth, inferred.graph.aliases) if depth else summary
