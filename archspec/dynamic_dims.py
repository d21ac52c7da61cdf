"""Which input sizes an exported network may leave open, decided from the spec.

The batch size always may. A spatial size (height, width, time, length) may when the
same weights serve other sizes: the spec is compiled again, by arithmetic, with that
size doubled, and every node the eval forward computes must keep its parameters and
buffers. A flatten into a linear layer fails that (the linear's inputs grow with the
map), as does a fixed-size parameter added to the map; adaptive pools, global pools
and upsampling to another node's size pass it. (The least size a free dimension
takes is found by the exporter, which runs the network on the meta device.)

Nothing is built and torch is not imported.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from .diagnostics import SpecError

# Names of the per-sample dimensions after the channels, by the input's rank.
SPATIAL_NAMES = {2: ("length",), 3: ("height", "width"), 4: ("time", "height", "width")}


@dataclass(frozen=True)
class Fixed:
    """Why a size cannot vary: `message` says what happens at another size."""

    message: str
    pos: object = None  # where the node at fault was written


@dataclass(frozen=True)
class DimPlan:
    """The per-sample input dims after the channels: which may vary, and which are
    fixed (index -> why)."""

    input_shape: tuple
    names: dict                     # per-sample index -> name, for the dims after the channels
    free: tuple = ()                # per-sample indices
    fixed: dict = field(default_factory=dict)


def plan_dims(compiled) -> DimPlan:
    spec, inferred = compiled.spec, compiled.inferred
    shape = tuple(spec.input_shape)
    names = dict(zip(range(1, len(shape)), SPATIAL_NAMES.get(len(shape), ())))
    base = _signature(inferred)
    free, fixed = [], {}
    for index in names:
        probe = _with(shape, index, shape[index] * 2)
        reason = _difference(spec, base, shape, probe, names[index])
        if reason is not None:
            fixed[index] = reason
        else:
            free.append(index)
    return DimPlan(shape, names, tuple(free), fixed)


def _with(shape: tuple, index: int, size: int) -> tuple:
    return shape[:index] + (size,) + shape[index + 1:]


def _signature(inferred) -> dict:
    """What must stay the same at another input size: each eval node's op, weights
    and buffers."""
    graph = inferred.graph
    return {name: (graph.nodes[name].op, inferred.facts[name].params, inferred.facts[name].buffers,
                   graph.nodes[name].pos)
            for name in graph.needed_for(False)}


def _compiled_at(spec, shape):
    from .api import compile_spec

    with warnings.catch_warnings():  # the spec's warnings were shown once already
        warnings.simplefilter("ignore")
        return compile_spec(spec.with_overrides(input_shape=shape), check=False)


def _difference(spec, base: dict, base_shape: tuple, shape: tuple, dim_name: str) -> Fixed | None:
    """Why the spec at `shape` is not the same network with the same weights, if it is not."""
    shown = "x".join(map(str, shape))
    try:
        other = _signature(_compiled_at(spec, shape).inferred)
    except SpecError as exc:
        d = exc.diagnostics[0]
        return Fixed(f"at input {shown} the spec does not compile: {d.message}", d.pos)
    for name, (op, params, buffers, pos) in base.items():
        if name not in other or other[name][0] != op:
            return Fixed(f"at input {shown} the spec makes another graph (its `{name}` differs)", pos)
        if other[name][1] != params or other[name][2] != buffers:
            return Fixed(f"`{name}` ({op}) has {params:,} parameters at input {'x'.join(map(str, base_shape))} "
                         f"and {other[name][1]:,} at {shown}: its weights fix the {dim_name}", pos)
    if other.keys() != base.keys():
        extra = next(iter(other.keys() - base.keys()))
        return Fixed(f"at input {shown} the spec makes another graph (it adds `{extra}`)", other[extra][3])
    return None
