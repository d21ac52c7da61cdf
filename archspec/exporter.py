"""`archspec export`: the built network (eval mode) as ONNX or as a torch.export program.

Both formats come from one `torch.export.ExportedProgram`, whose dynamic sizes are
declared from the spec (see dynamic_dims.py): the batch size, and each spatial size
whose weights do not depend on it. The least size of each is the least at which
every size that follows the input stays 2 or more, found by running the network on
the meta device (PyTorch traces a size of 1 as a constant). torch.export checks each
declaration against the traced graph, so a file is never written with a dynamic size
the network cannot take.

ONNX goes through torch.onnx's torch.export-based exporter (`dynamo=True`, the
default since PyTorch 2.9; the TorchScript-based one is deprecated and warns that it
will be removed): it converts that same program, so the .onnx and the .pt2 agree on
which sizes are dynamic. It needs the packages onnx and onnxscript, the `export`
extra. Files are written through atomic_output: a failure leaves FILE as it was.
"""
from __future__ import annotations

import io
import logging
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

from .atomic import atomic_output, check_output_path
from .diagnostics import SpecError, error

FORMATS = {".onnx": "onnx", ".pt2": "pt2"}
DYNAMIC = ("batch", "spatial", "none")
EXAMPLE_BATCH = 2  # PyTorch traces a size of 1 as a constant, so the example batch is 2
ONNX_PACKAGES = ("onnx", "onnxscript")
INPUT_NAME = "input"


@dataclass(frozen=True)
class Exported:
    """What `export_spec` wrote."""

    path: str
    format: str
    name: str
    input: tuple           # per input dim: a size, or the name of a dynamic one
    outputs: tuple         # (name, dims) per eval output, dims as `input`
    least: dict            # dynamic dim name -> the least size it takes
    fixed: dict = field(default_factory=dict)   # spatial dim name -> why it is fixed (a Fixed)
    fallback: str | None = None  # why spatial sizes were left fixed after torch.export refused them
    opset: int | None = None
    weights: str | None = None
    size: int = 0
    fused: str | None = None  # what archspec.fuse folded, when it was asked to


def format_of(fmt: str | None, output) -> str:
    if fmt is not None:
        if fmt not in FORMATS.values():
            raise error("E0604", f"--format must be onnx or pt2, got `{fmt}`")
        return fmt
    ext = os.path.splitext(os.fspath(output))[1].lower()
    if ext not in FORMATS:
        raise error("E0604", f"cannot tell the export format from `{output}`",
                    hint="give --format onnx or pt2, or name the file .onnx or .pt2")
    return FORMATS[ext]


def missing_onnx_packages() -> list:
    missing = []
    for package in ONNX_PACKAGES:
        try:
            __import__(package)
        except ImportError:
            missing.append(package)
    return missing


def export_spec(path_or_spec, output, fmt: str | None = None, *, dynamic: str | None = None, weights=None,
                weights_map=None, input_shape=None, scale: str | None = None, max_params: int | None = None,
                check: bool = True, fuse: bool = False, **overrides) -> Exported:
    """Write the spec's network (eval mode) to `output` as ONNX or a .pt2 program.

    `dynamic`: "batch" (only the batch size varies), "spatial" (the batch and every
    spatial size; refused, E0621, where the weights fix one), "none", or None: the
    batch and each spatial size the spec allows. `fuse`: export what archspec.fuse
    makes of the network (batch norms folded into the layers before them)."""
    from .api import build_compiled, compile_spec

    fmt = format_of(fmt, output)
    if dynamic is not None and dynamic not in DYNAMIC:
        raise error("E0604", f"--dynamic must be batch, spatial or none, got `{dynamic}`")
    output = os.fspath(output)
    check_output_path(output)  # before the work, not after it
    if fmt == "onnx":
        missing = missing_onnx_packages()
        if missing:
            raise error("E0620", f"--format onnx needs the package{'s' if len(missing) > 1 else ''} "
                        f"{' and '.join(missing)}, which {'are' if len(missing) > 1 else 'is'} not installed",
                        hint="pip install 'archspec-nn[export]' (onnx, onnxscript and onnxruntime); "
                             "--format pt2 needs only torch")
    compiled = compile_spec(path_or_spec, input_shape, check=check, max_params=max_params, scale=scale,
                            **overrides)
    spec = compiled.spec
    _refuse_own_sources(spec, output)
    plan = _spatial_plan(compiled, dynamic)
    net = build_compiled(compiled, weights=weights, weights_map=weights_map).eval()
    if fuse:
        from .fusion import fuse as fused_network

        net = fused_network(net)

    import torch

    # Batched input index -> (name, least size) of each dynamic dim.
    declared = {} if dynamic == "none" else {0: ("batch", 1)}
    batch = 1 if dynamic == "none" else EXAMPLE_BATCH
    spatial = {index + 1: (plan.names[index], least)
               for index, least in _least_sizes(compiled, plan.free if plan else ()).items()}
    fallback = None
    with _quiet_torch():
        try:
            program = _export(net, (batch, *spec.input_shape), {**declared, **spatial})
        except _Refused as refused:
            if not spatial or dynamic == "spatial":
                raise _refusal(spec.name, {**declared, **spatial}, refused) from None
            fallback, spatial = _first_line(str(refused)), {}
            try:
                program = _export(net, (batch, *spec.input_shape), declared)
            except _Refused as again:
                raise _refusal(spec.name, declared, again) from None
        declared.update(spatial)
        symbols = _symbol_names(program, declared)
        data, opset = (None, None) if fmt == "pt2" else _onnx_bytes(program, net, symbols, spec.name)

        if data is None:  # torch.export.save wants a real file or a buffer, not atomic_output's wrapper
            buffer = io.BytesIO()
            torch.export.save(program, buffer)
            data = buffer.getvalue()
    with atomic_output(output) as f:
        f.write(data)
    batched = (batch, *spec.input_shape)
    return Exported(
        path=output, format=fmt, name=spec.name,
        input=tuple(declared[i][0] if i in declared else size for i, size in enumerate(batched)),
        outputs=_output_dims(program, net, symbols),
        least=dict(declared.values()),
        fixed={plan.names[i]: why for i, why in plan.fixed.items()} if plan else {},
        fallback=fallback, opset=opset,
        weights=None if weights is None else (os.fspath(weights) if isinstance(weights, (str, os.PathLike))
                                              else "the given checkpoint"),
        size=os.path.getsize(output), fused=net.fusion.describe() if fuse else None)


def _refuse_own_sources(spec, output: str) -> None:
    """`export x.yaml --format onnx -o x.yaml` would replace the spec."""
    for source in (spec.path, *spec.parents):
        try:
            same = os.path.samefile(source, output)
        except (OSError, ValueError):  # no output yet, or a spec from text
            continue
        if same:
            raise error("E0605", f"cannot write {output}: it is {source}, a spec this export was read from",
                        hint="choose another output file")


def _spatial_plan(compiled, dynamic):
    """Which spatial sizes may vary; None when the caller wants none of them."""
    if dynamic in ("batch", "none"):
        return None
    from .dynamic_dims import plan_dims

    plan = plan_dims(compiled)
    if dynamic == "spatial":
        if not plan.names:
            raise error("E0621", f"{compiled.spec.name}'s input {list(compiled.spec.input_shape)} has no spatial "
                        "sizes to make dynamic", hint="use --dynamic batch")
        if plan.fixed:
            why = next(iter(plan.fixed.values()))
            fixed = " and ".join(plan.names[i] for i in plan.fixed)
            raise error("E0621", f"{compiled.spec.name} cannot take another {fixed}: {why.message}", why.pos,
                        hint="export with --dynamic batch (or leave --dynamic out: the batch and the spatial "
                             "sizes the spec allows); an adaptive pool before the flatten frees the size")
    return plan


def _least_sizes(compiled, indices) -> dict:
    """Per-sample dim index -> the least size at which the network runs and every
    size that follows that dim stays 2 or more, on the meta device."""
    if not indices:
        return {}
    import torch
    import torch.fx as fx

    from .builder import build_module
    from .forward import forward_graph, node_parts

    inferred = compiled.inferred
    net = build_module(inferred, compiled.spec.name, device="meta").eval()
    module = fx.GraphModule(net, forward_graph(inferred, node_parts(net, inferred.graph), False))

    def shapes(shape):
        seen = []

        class Recorder(fx.Interpreter):
            def run_node(self, n):
                result = super().run_node(n)
                if isinstance(result, torch.Tensor):
                    seen.append(tuple(result.shape))
                return result

        try:
            with torch.no_grad():
                Recorder(module).run(torch.empty((EXAMPLE_BATCH, *shape), device="meta"))
        except Exception:  # too small for a kernel, or sizes that no longer join
            return None
        return seen

    base_shape = tuple(inferred.graph.input_shape)
    base = shapes(base_shape)

    def fine(index, size):
        found = shapes(base_shape[:index] + (size,) + base_shape[index + 1:])
        return found is not None and len(found) == len(base) and all(
            len(a) == len(b) and all(x == y or x >= 2 for x, y in zip(a, b)) for a, b in zip(found, base))

    least = {}
    for index in indices:
        low, high = 1, base_shape[index]  # sizes only grow with the input: bisect
        while low < high:
            middle = (low + high) // 2
            if fine(index, middle):
                high = middle
            else:
                low = middle + 1
        least[index] = high
    return least


@contextmanager
def _quiet_torch():
    """torch's warnings and log lines about tracing are not the user's business: what
    matters reaches them as a diagnostic or in the report."""
    logger = logging.getLogger("torch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


class _Refused(Exception):
    """torch.export refused the declared sizes; the text is its message."""


def _export(net, batched_shape: tuple, dims: dict):
    """torch.export's program of `net`, with `dims` (batched index -> (name, least))
    dynamic."""
    import torch
    from torch.export import Dim

    x = torch.randn(batched_shape)
    # Spatial sizes are Dim.DYNAMIC, whose range torch works out from the graph: a named
    # Dim with a least size trips torch 2.14's constraint solver on ceil-mode pools
    # (GoogLeNet). The least size reported is the meta device's; the program's guards
    # check it when it runs.
    shapes = ({index: Dim(name, min=least) if index == 0 else Dim.DYNAMIC
               for index, (name, least) in dims.items()},) if dims else None
    try:
        return torch.export.export(net, (x,), dynamic_shapes=shapes, strict=False)
    except Exception as exc:  # torch raises many kinds; the message is what helps
        raise _Refused(f"{type(exc).__name__}: {exc}") from None


def _refusal(name: str, dims: dict, refused: _Refused) -> SpecError:
    dynamic = f" with {', '.join(n for n, _ in dims.values())} dynamic" if dims else ""
    return error("E0622", f"torch.export could not export {name}{dynamic}: {_first_line(str(refused))}",
                 hint="--dynamic batch or --dynamic none declares fewer dynamic sizes; if it fails with "
                      "none, please report it with the spec")


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]


def _symbol_names(program, dims: dict) -> dict:
    """torch's name of each dynamic size (`s77`) -> ours (`batch`)."""
    placeholder = next(n for n in program.graph.nodes
                       if n.op == "placeholder" and n.name in program.graph_signature.user_inputs)
    shape = placeholder.meta["val"].shape
    return {str(shape[index]): name for index, (name, _) in dims.items() if not isinstance(shape[index], int)}


def _renamed(text: str, symbols: dict) -> str:
    return re.sub(r"\bs\d+\b", lambda m: symbols.get(m.group(0), m.group(0)), text)


def _output_dims(program, net, symbols: dict) -> tuple:
    out = next(n for n in program.graph.nodes if n.op == "output")
    values = out.args[0]
    result = []
    for name, value in zip(net.output_names(False), values):
        shape = value.meta["val"].shape
        result.append((name, tuple(d if isinstance(d, int) else _renamed(str(d), symbols) for d in shape)))
    return tuple(result)


def _onnx_bytes(program, net, symbols: dict, name: str):
    import torch

    try:
        onnx_program = torch.onnx.export(program, dynamo=True, input_names=[INPUT_NAME],
                                         output_names=list(net.output_names(False)), verbose=False,
                                         optimize=True)
    except Exception as exc:
        raise error("E0622", f"torch.onnx could not convert {name}: {_first_line(f'{type(exc).__name__}: {exc}')}",
                    hint="--format pt2 writes the torch.export program itself") from None
    model = onnx_program.model_proto
    graph = model.graph
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = _renamed(dim.dim_param, symbols)
    try:
        data = model.SerializeToString()
    except ValueError as exc:  # protobuf's 2 GiB limit
        raise error("E0624", f"{name} is too large for one ONNX file ({_first_line(str(exc))})",
                    hint="--format pt2 has no such limit") from None
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    return data, opset
