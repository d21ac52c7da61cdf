"""Fused deployment: an inference-only copy of a compiled network with each batch norm
folded into the convolution or linear layer before it.

In eval mode a batch norm is a fixed affine map per channel, y = x * s + t with
s = gamma / sqrt(running_var + eps) and t = beta - running_mean * s. After a
convolution or a linear layer (x = W * u + b) it folds into that layer's weights:
W' = W * s per output channel and b' = b * s + t, exact up to float rounding. The
fold is planned on archspec's own graph: a batch norm is folded only where the layer
before it has no other reader in eval mode (folding across a branch point would
change what the other reader sees). What only training needs (dropout, stochastic
depth, training-only outputs such as auxiliary heads) and nodes that pass their input
through are left out of the fused graph, and its forward is generated from that
graph as the original's is, so `fused.code()` reads beside the spec.

The fused network's state dict is the original's without the folded batch norms'
keys (and without training-only parts), with a `bias` on each layer that absorbed
one: it is for inference, not for training. On the CPU its 2-D convolutions keep
their weights prepacked in oneDNN's layout between calls (archspec/prepacked.py);
that changes neither the values nor the state dict. `save_built` writes it as a fused
build, which `load_built` reads back by fusing the spec's network again (the plan
depends on the spec alone) and loading that state dict into it.
"""
from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from types import MappingProxyType

import torch
import torch.nn as nn

from . import prepacked
from .builder import CompiledNetwork, _place, generate_forward
from .diagnostics import Diagnostic, SpecError, error
from .forward import forward_plan, node_parts
from .graph import INPUT, Graph
from .infer import InferredGraph, node_facts
from .ops import REGISTRY
from .records import replace

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class Fold:
    norm: str   # the batch norm's module path (its state-dict prefix), gone from the fused network
    into: str   # the module path of the layer that absorbed it
    linear: bool = False  # that layer is a linear layer, not a convolution


@dataclass(frozen=True)
class FusionReport:
    folded: tuple   # Fold, in graph order
    kept: tuple     # (batch norm path, why it stays), in graph order
    removed: tuple  # nodes left out because they pass their input through in eval mode
    training_outputs: tuple = ()  # training-only outputs left out, with all only they need
    prepacked: int = 0  # 2-D convolutions computing with oneDNN-prepacked weights on the CPU

    def describe(self) -> str:
        """One line: how many batch norms went into how many layers, why any stayed,
        and which training-only outputs were left out."""
        parts = []
        if self.folded or self.kept:
            convs = len({f.into for f in self.folded if not f.linear})
            linears = len({f.into for f in self.folded if f.linear})
            layers = " and ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in
                                  ((convs, "convolution"), (linears, "linear layer")) if n) or "no layer"
            parts.append(f"folded {len(self.folded)} batch norm{'s' if len(self.folded) != 1 else ''} into {layers}")
            if self.kept:
                reasons = Counter(why for _, why in self.kept)
                parts.append("kept " + ", ".join(f"{n} ({why})" for why, n in reasons.items()))
        else:
            parts.append("no batch norms to fold")
        if self.training_outputs:
            plural = "s" if len(self.training_outputs) != 1 else ""
            parts.append(f"left out the training-only output{plural} {', '.join(self.training_outputs)}")
        if self.prepacked:
            plural = "s" if self.prepacked != 1 else ""
            parts.append(f"{self.prepacked} convolution{plural} prepacked for oneDNN")
        return "; ".join(parts)


class NotAnArchspecNetwork(SpecError, TypeError):
    """E0630: `fuse` was given a module archspec did not build (a TypeError too, as
    Python's own functions raise for an argument of the wrong kind)."""


class FusedNetwork(CompiledNetwork):
    """An inference-only network made by `fuse`: always runs its eval forward, and
    refuses to be put in training mode (its batch norms are gone)."""

    def __init__(self, name: str, outputs: tuple, report: FusionReport):
        super().__init__(name, {True: outputs, False: outputs})
        self.fusion = report

    def forward(self, x):
        return self._forward_eval(self, x)

    def train(self, mode: bool = True):
        if mode:
            raise error("E0632", f"{self.spec_name} is fused for inference: its batch norms are folded into "
                        "the layers before them, so it cannot train",
                        hint="train the network archspec.build makes, then fuse it again")
        return super().train(False)

    def code(self, training: bool = False) -> str:
        if training:
            raise ValueError("a fused network has only an eval forward")
        return self._code[False]

    def extra_repr(self) -> str:
        return f"spec={self.spec_name!r}, fused for inference"


def fuse(net: CompiledNetwork, channels_last: bool = True, prepack: bool = True) -> FusedNetwork:
    """An eval-only copy of `net` (built by archspec, weights loaded, in eval mode)
    with each batch norm folded into the convolution or linear layer before it; `net`
    is untouched. A module archspec did not build is E0630 (a TypeError too); a
    network in training mode is E0631.
    The copy's parameters do not require gradients; `fused.fusion` says what was folded.

    `channels_last` stores the weights of 2-D convolutions channels-last, the layout
    oneDNN and cuDNN compute fastest in: a convolution given such a weight returns its
    output in that layout too, so the whole network runs in it, whatever the layout of
    the input. Values are the same up to float rounding; only the strides of a
    4-D output differ.

    `prepack` (where PyTorch's oneDNN operators are present) makes each 2-D
    convolution keep a copy of its weight in oneDNN's blocked layout, made on the first
    CPU call and kept for the last input shape, instead of oneDNN reordering the weight
    on every call: the same values, one extra copy of the convolution weights in memory
    (archspec/prepacked.py says when it falls back to the plain convolution)."""
    inferred = getattr(net, "_inferred", None)
    if not isinstance(net, CompiledNetwork) or inferred is None:
        raise NotAnArchspecNetwork(Diagnostic(
            "E0630", f"archspec.fuse takes a network made by archspec.build or archspec.load_built, "
            f"got {type(net).__module__}.{type(net).__qualname__}",
            hint="it plans the folds on the spec's graph, which only archspec's networks carry; for a module "
                 "of your own, torch.fx.experimental.optimization.fuse folds conv + batch norm pairs"))
    if net.training:
        raise error("E0631", f"{net.spec_name} is in training mode: fusing folds the running statistics "
                    "that only eval mode uses, so the fused network would not compute what this one does",
                    hint="call net.eval() first: archspec.fuse(net.eval())")
    parts = node_parts(net, inferred.graph)
    graph, removed = _without_passes(inferred, parts)
    folds, kept = _plan(graph, inferred, parts)
    gone = {norm for norms in folds.values() for norm in norms}

    projections = [name for name in graph.nodes if _projection_norm(parts.get(name)) is not None]
    # One memo for all copies: weights shared between modules stay shared. Weights about
    # to be replaced by folded ones are not copied first.
    memo: dict = {}
    for layer in [parts[name] for name in folds] + [parts[name][0] for name in projections]:
        memo.update((id(tensor), tensor) for tensor in (layer.weight, layer.bias) if tensor is not None)
    # Placed in the spec's written order, as the builder places them: the state dict keeps its key order.
    modules = {name: copy.deepcopy(parts[name], memo) for name in inferred.graph.written or graph.nodes
               if name in graph.nodes and name in parts and name not in gone}
    for layer, norms in folds.items():
        _fold_into(modules[layer], [parts[norm] for norm in norms], channels_last)
    for name in projections:  # conv `0` and batch norm `1` become conv `0` alone
        _fold_into(modules[name][0], [parts[name][1]], channels_last)
        del modules[name][1]
    fused_inferred = _fused_graph(graph, inferred, folds, modules)

    order = {name: i for i, name in enumerate(graph.nodes)}
    folded = sorted([(order[norm], Fold(norm, layer, type(parts[layer]) is nn.Linear))
                     for layer, norms in folds.items() for norm in norms]
                    + [(order[name], Fold(f"{name}.1", f"{name}.0")) for name in projections],
                    key=lambda item: item[0])
    if prepack and prepacked.available():
        modules = {path: prepacked.prepack(module) for path, module in modules.items()}
    packed = {id(m) for module in modules.values() if isinstance(module, nn.Module)
              for m in module.modules() if isinstance(m, prepacked.PrepackedConv2d)}
    report = FusionReport(tuple(fold for _, fold in folded), tuple(kept), tuple(removed),
                          tuple(o.name for o in inferred.graph.outputs if o.train_only), len(packed))
    fused = FusedNetwork(net.spec_name, tuple(o.name for o in fused_inferred.graph.outputs), report)
    for path, module in modules.items():
        _place(fused, path, module)
    fused.eval()
    fused.requires_grad_(False)
    if channels_last:
        for module in fused.modules():
            if isinstance(module, nn.Conv2d) and not module.weight.is_contiguous(memory_format=torch.channels_last):
                module.weight.data = module.weight.data.contiguous(memory_format=torch.channels_last)
    function, source = generate_forward(forward_plan(fused_inferred, modules, False), f"{net.spec_name} fused", False)
    object.__setattr__(fused, "_forward_eval", function)
    object.__setattr__(fused, "_inferred", fused_inferred)
    fused._code = {False: source}
    return fused


def max_difference(net: CompiledNetwork, fused: FusedNetwork, x) -> float:
    """The largest difference between the eval outputs of `net` and `fused` on `x`,
    relative to the largest output magnitude (the scale float rounding works at)."""
    was_training = net.training
    try:
        with torch.no_grad():
            ours, theirs = net.eval()(x), fused(x)
    finally:
        net.train(was_training)
    ours, theirs = (ours, theirs) if isinstance(ours, tuple) else ((ours,), (theirs,))
    worst = 0.0
    for a, b in zip(ours, theirs):
        scale = a.abs().max().item() or 1.0
        worst = max(worst, (a - b).abs().max().item() / scale)
    return worst


# -- planning, on archspec's graph ------------------------------------------------

def _without_passes(inferred: InferredGraph, parts: dict) -> tuple:
    """The eval-mode graph without the nodes that pass their input through (identity,
    dropout and stochastic depth in eval, a shortcut that needs no projection): their
    readers read their input instead. Training-only outputs are left out."""
    graph = inferred.graph
    source, nodes, removed = {}, {}, []
    for name in graph.needed_for(False):
        node = graph.nodes[name]
        inputs = tuple(source.get(src, src) for src in node.inputs)
        if name not in parts and _passes_through(node, [inferred.shape(src) for src in node.inputs]):
            source[name] = inputs[0]
            removed.append(name)
            continue
        nodes[name] = replace(node, inputs=inputs) if inputs != node.inputs else node
    outputs = tuple(replace(o, node=source.get(o.node, o.node)) for o in graph.active_outputs(False))
    aliases = {k: source.get(v, v) for k, v in graph.aliases.items() if source.get(v, v) in nodes}
    written = tuple(name for name in graph.written if name in nodes)
    return Graph(graph.input_shape, MappingProxyType(nodes), outputs, (), MappingProxyType(aliases), written), removed


def _passes_through(node, shapes) -> bool:
    """The op, holding no weights, computes nothing in eval mode: the generated
    forward hands its first input on (as forward.py does)."""
    try:
        return REGISTRY[node.op].function(node.args, shapes, False, False) is None
    except NotImplementedError:  # an op that always holds weights
        return False


def _plan(graph: Graph, inferred: InferredGraph, parts: dict) -> tuple:
    """{layer: (batch norm, ...)} for every fold, in graph order, and (batch norm,
    why it stays) for the rest. A fold makes the layer compute the norm's value, so a
    batch norm right after a folded one folds into the same layer."""
    readers: dict = {name: [] for name in (INPUT, *graph.nodes)}
    for name, node in graph.nodes.items():
        for src in dict.fromkeys(_fed(node)):
            readers[src].append(name)
    for out in graph.outputs:
        readers[out.node].append(None)  # an output is read by the caller
    folds: dict = {}
    layer_of: dict = {}  # a folded batch norm -> the layer that now computes its value
    kept = []
    for name, node in graph.nodes.items():
        if node.op != "bn":
            continue
        src = node.inputs[0]
        layer = layer_of.get(src, src)
        why = _why_not(inferred, parts.get(name), parts.get(layer), layer, readers[src])
        if why:
            kept.append((name, why))
            continue
        folds[layer] = folds.get(layer, ()) + (name,)
        layer_of[name] = layer
    return folds, kept


def _fed(node) -> tuple:
    """The inputs whose values a node reads (a projection's second input lends only its shape)."""
    op = REGISTRY[node.op]
    return node.inputs[:op.fed_inputs] if op.fed_inputs else node.inputs


def _why_not(inferred, norm, layer, layer_name, readers) -> str | None:
    if not _is_norm(norm):
        return "not a batch norm with running statistics"
    if not (type(layer) in _CONVS or type(layer) is nn.Linear):
        return "not after a convolution or linear layer"
    if len(readers) != 1:
        return "its input is also read elsewhere"
    if type(layer) is nn.Linear and len(inferred.shape(layer_name)) != 1:
        return "normalises other than the linear layer's features"
    if norm.num_features != (layer.out_features if type(layer) is nn.Linear else layer.out_channels):
        return "its channels are not the layer's outputs"
    return None


def _is_norm(module) -> bool:
    """A batch norm whose eval mode uses running statistics (a fixed affine map)."""
    return isinstance(module, _NORMS) and module.running_mean is not None and module.running_var is not None


def _projection_norm(module):
    """The batch norm of a shortcut projection (`project`: conv `0`, batch norm `1`)."""
    if isinstance(module, nn.Sequential) and len(module) == 2 and type(module[0]) in _CONVS \
            and _is_norm(module[1]) and module[1].num_features == module[0].out_channels:
        return module[1]
    return None


def _fused_graph(graph: Graph, inferred: InferredGraph, folds: dict, modules: dict) -> InferredGraph:
    """The graph without the folded batch norms: their readers read the layer that
    absorbed them, which now has a bias."""
    into = {norm: layer for layer, norms in folds.items() for norm in norms}
    layers = set(folds)
    nodes, facts = {}, {}
    for name, node in graph.nodes.items():
        if name in into:
            continue
        inputs = tuple(into.get(src, src) for src in node.inputs)
        if inputs != node.inputs:
            node = replace(node, inputs=inputs)
        shapes = [inferred.shape(src) for src in node.inputs]
        if name in layers:
            node = replace(node, args=MappingProxyType({**node.args, "bias": True}))
            facts[name] = node_facts(node.op, node.args, shapes)
        elif node.op == "project" and name in modules and isinstance(modules[name], nn.Sequential):
            count = sum(p.numel() for p in modules[name].parameters())
            facts[name] = replace(inferred.facts[name], params=count, buffers=(0, 0))
        else:
            facts[name] = inferred.facts[name]
        nodes[name] = node
    outputs = tuple(replace(o, node=into.get(o.node, o.node)) for o in graph.outputs)
    aliases = {k: into.get(v, v) for k, v in graph.aliases.items()}
    written = tuple(name for name in graph.written if name in nodes)
    fused = Graph(graph.input_shape, MappingProxyType(nodes), outputs, (), MappingProxyType(aliases), written)
    return InferredGraph(fused, MappingProxyType(facts))


# -- the arithmetic -------------------------------------------------------------

def _fold_into(layer: nn.Module, norms: list, channels_last: bool) -> None:
    """Fold eval-mode batch norms (applied in order after `layer`) into the layer's
    weight and bias. The per-channel scale and shift are worked in float64 (where the
    device has it); the weight is scaled once, in at least float32, and written in the
    layout asked for."""
    weight = layer.weight.detach()
    exact = torch.float32 if weight.device.type == "mps" else torch.float64
    scale = torch.ones(weight.shape[0], dtype=exact, device=weight.device)
    shift = layer.bias.detach().to(exact) if layer.bias is not None else torch.zeros_like(scale)
    for norm in norms:  # y = x * s + t after y = x * s0 + t0: x * (s0 * s) + (t0 * s + t)
        s = torch.rsqrt(norm.running_var.detach().to(exact) + norm.eps)
        if norm.weight is not None:
            s = s * norm.weight.detach().to(exact)
        t = -norm.running_mean.detach().to(exact) * s
        if norm.bias is not None:
            t = t + norm.bias.detach().to(exact)
        scale, shift = scale * s, shift * s + t
    # Output channels are dimension 0 of a conv's weight (grouped and depthwise too)
    # and of a linear layer's.
    wide = torch.promote_types(weight.dtype, torch.float32)
    layout = torch.channels_last if channels_last and type(layer) is nn.Conv2d else torch.preserve_format
    per_channel = scale.to(wide).reshape(-1, *[1] * (weight.dim() - 1))
    scaled = weight.to(wide, memory_format=layout, copy=True).mul_(per_channel)
    layer.weight = nn.Parameter(scaled.to(weight.dtype), requires_grad=False)
    layer.bias = nn.Parameter(shift.to(weight.dtype), requires_grad=False)
