"""The property on valid specs: `check_valid()` compiles a generated spec and compares
what archspec infers with the model, then builds the module and runs it on CPU (train
and eval mode, batch 2): every node's real shape, the parameters of every module, the
outputs of the generated forward against the same graph run without in-place ops, and
the gradients. Torch is imported only when a check runs."""
from __future__ import annotations

import traceback
from collections import Counter

from .failure import raise_failure
from .valid import Generated


def check_valid(example: Generated, stats: Counter | None = None) -> None:
    """Compile, infer, build and run a generated spec; raise PropertyFailure on a mismatch."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads only cost time
    try:
        _check_valid(example, stats if stats is not None else Counter())
    finally:
        torch.set_num_threads(threads)


def _check_valid(example: Generated, stats: Counter) -> None:
    import archspec
    from archspec.api import build as build_network
    from archspec.diagnostics import SpecError

    def fail(msg):
        raise_failure(msg, example.text, example.overrides)

    try:
        spec = archspec.loads(example.text, name="fuzz.yaml", **example.overrides)
        compiled = archspec.compile_spec(spec)
        spec, inferred = compiled.spec, compiled.inferred
    except SpecError as exc:
        for d in exc.diagnostics:
            stats[f"rejected {d.code}"] += 1
        fail(f"a valid spec was rejected:\n{exc}")
    except Exception:
        stats["crashed"] += 1
        fail(f"compiling raised:\n{traceback.format_exc()}")
    stats["compiled"] += 1
    _check_inference(example, inferred, fail)
    try:
        net = build_network(spec)
    except Exception:
        stats["crashed"] += 1
        fail(f"building raised:\n{traceback.format_exc()}")
    _check_parameters(example, inferred, net, fail)
    _check_forwards(example, inferred, net, fail, stats)
    stats["built and run"] += 1


def _check_inference(example: Generated, inferred, fail) -> None:
    """Every node's op, shape and parameter count, and the outputs, as the model says."""
    graph = inferred.graph
    if graph.warnings:
        fail("unexpected warnings: " + "; ".join(w.message for w in graph.warnings))
    if set(graph.nodes) != set(example.shapes):
        fail(f"node names differ: archspec only {sorted(set(graph.nodes) - set(example.shapes))}, "
             f"model only {sorted(set(example.shapes) - set(graph.nodes))}")
    for name, node in graph.nodes.items():
        facts = inferred.facts[name]
        if node.op != example.ops[name]:
            fail(f"`{name}`: op {node.op}, the model says {example.ops[name]}")
        if facts.shape != example.shapes[name]:
            fail(f"`{name}`: inferred shape {list(facts.shape)}, the model says {list(example.shapes[name])}")
        if facts.params != example.params[name]:
            fail(f"`{name}`: inferred {facts.params} params, the model says {example.params[name]}")
    got_outputs = [(o.name, inferred.shape(o.node), o.train_only) for o in graph.outputs]
    if got_outputs != example.outputs:
        fail(f"outputs {got_outputs}, the model says {example.outputs}")


def _check_parameters(example: Generated, inferred, net, fail) -> None:
    """The built module holds exactly the inferred parameters: per node, by qualified
    name, frozen where `frozen:` says."""
    real_total = sum(p.numel() for p in net.parameters())
    if real_total != inferred.total_params:
        fail(f"built module holds {real_total} params, inferred {inferred.total_params}")
    holders = {n for n, f in inferred.facts.items() if f.params}
    for name in holders:
        try:
            module = net.get_submodule(name)
        except AttributeError:
            fail(f"no module at `{name}`, which holds {inferred.facts[name].params} params")
        real = sum(p.numel() for p in module.parameters())
        if real != inferred.facts[name].params:
            fail(f"module `{name}` holds {real} params, inferred {inferred.facts[name].params}")
        trains = {p.requires_grad for p in module.parameters()}
        if trains != {not example.frozen[name]}:
            fail(f"module `{name}`: requires_grad {sorted(trains)}, but `frozen:` says "
                 f"{'frozen' if example.frozen[name] else 'trainable'}")
    for pname, _ in net.named_parameters():
        owner = pname.rsplit(".", 1)[0]
        if owner not in holders and owner.rsplit(".", 1)[0] not in holders:
            fail(f"parameter `{pname}` belongs to no node that holds parameters")


def _check_forwards(example: Generated, inferred, net, fail, stats: Counter) -> None:
    """Real forwards, train and eval, batch 2, on CPU: every node's shape, then the
    generated forward (in place where archspec decided so) against the same graph with
    every in-place flag off, outputs and (in training) gradients."""
    import torch
    import torch.fx as fx

    from archspec.forward import forward_graph as _trace, node_parts
    from archspec.graph import INPUT

    graph = inferred.graph
    modules = node_parts(net, graph)
    x = torch.randn(2, *graph.input_shape)
    for training in (True, False):
        net.train(training)
        seen = {}

        class Recorder(fx.Interpreter):
            def run_node(self, n):
                result = super().run_node(n)
                if "archspec_node" in n.meta and isinstance(result, torch.Tensor):
                    seen[n.meta["archspec_node"]] = tuple(result.shape)
                return result

        gm = fx.GraphModule(net, _trace(inferred, modules, training))
        mode = "train" if training else "eval"
        try:
            with torch.no_grad():
                torch.manual_seed(1)
                Recorder(gm).run(x.clone())
        except Exception:
            stats["crashed"] += 1
            fail(f"{mode} forward raised:\n{traceback.format_exc()}")
        real: dict = {INPUT: tuple(x.shape)}
        for name in graph.needed_for(training):
            node = graph.nodes[name]
            real[name] = seen.get(name, real.get(node.inputs[0]))
            want = (2, *inferred.facts[name].shape)
            if real[name] != want:
                fail(f"{mode}: `{name}` ({node.op}) is {list(real[name] or [])} in PyTorch, "
                     f"inferred {list(want)}")
        stats[f"nodes checked ({mode})"] += len(graph.needed_for(training))

        reference_graph = _trace(inferred, modules, training)
        for n in reference_graph.nodes:
            if n.op == "call_function" and n.kwargs.get("inplace"):
                n.kwargs = {**n.kwargs, "inplace": False}
        reference = fx.GraphModule(net, reference_graph)
        with torch.no_grad():
            torch.manual_seed(2)
            want_out = reference(x.clone())
            torch.manual_seed(2)
            got_out = net(x.clone())
        want_t = want_out if isinstance(want_out, tuple) else (want_out,)
        got_t = got_out if isinstance(got_out, tuple) else (got_out,)
        active = [o for o in example.outputs if training or not o[2]]
        if len(got_t) != len(active) or net.output_names() != tuple(o[0] for o in active):
            fail(f"{mode}: the module returns {len(got_t)} outputs {net.output_names()}, "
                 f"expected {[o[0] for o in active]}")
        for (oname, oshape, _), got, want in zip(active, got_t, want_t):
            if tuple(got.shape) != (2, *oshape):
                fail(f"{mode}: output `{oname}` is {list(got.shape)}, inferred {[2, *oshape]}")
            if not torch.allclose(got, want, atol=1e-5, rtol=1e-5, equal_nan=True):
                diff = (got - want).abs().max().item()
                fail(f"{mode}: output `{oname}` of the generated forward differs from the same graph "
                     f"run without in-place ops (max abs diff {diff:.3g})")
        if training:
            _check_gradients(net, reference, x, [o.shape for o in got_t], fail)


def _check_gradients(net, reference, x, shapes, fail) -> None:
    """Gradients through the generated forward and through the reference agree."""
    import torch

    weights = [torch.randn(s, generator=torch.Generator().manual_seed(4)) for s in shapes]
    grads = []
    for forward in (net, reference):
        net.zero_grad(set_to_none=True)
        torch.manual_seed(3)
        outs = forward(x.clone())
        outs = outs if isinstance(outs, tuple) else (outs,)
        loss = sum((o * w).sum() for o, w in zip(outs, weights))
        if loss.requires_grad:
            try:
                loss.backward()
            except RuntimeError:
                which = "the generated forward" if forward is net else "the reference forward"
                fail(f"train: backward through {which} raised:\n{traceback.format_exc()}")
        grads.append({n: p.grad for n, p in net.named_parameters()})
    for pname, g1 in grads[0].items():
        g2 = grads[1][pname]
        if (g1 is None) != (g2 is None) or (g1 is not None and not torch.allclose(
                g1, g2, atol=1e-4, rtol=1e-4, equal_nan=True)):
            fail(f"train: the gradient of `{pname}` differs between the generated forward "
                 "and the same graph run without in-place ops")
