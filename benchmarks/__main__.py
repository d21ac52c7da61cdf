"""archspec benchmarks: `python -m benchmarks [--quick] [--inductor]`.

Every figure is a ratio against the tool a user would otherwise reach for, both run
side by side in this process, medians of interleaved runs (see timing.py). Pass
`--quick` for fewer repeats. Targets (docs/benchmarks.md) are printed beside each
ratio; the exit status is 1 if one is missed.
"""
from __future__ import annotations

import argparse
import compileall
import gc
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
sys.path.insert(0, str(ROOT))

import archspec  # noqa: E402
from archspec.api import compile_spec  # noqa: E402
from benchmarks.synthetic import chain_spec  # noqa: E402
from benchmarks.timing import interleaved, once  # noqa: E402

results: list[tuple[str, str, bool]] = []


def report(name: str, text: str, ok: bool) -> None:
    results.append((name, text, ok))
    print(f"{'ok  ' if ok else 'MISS'} {name}: {text}", flush=True)


def torchvision_model(name):
    import torchvision

    if name == "inception_v3":
        return lambda: torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=True)
    return getattr(torchvision.models, name)


def bench_summary(repeats):
    import torchinfo

    for name, size in (("inception_v3", 299), ("resnet50", 224)):
        path = SPECS / f"{name}.yaml"
        make = torchvision_model(name)
        cold = once(lambda: archspec.summarize(path))

        def theirs():
            model = make().eval()
            torchinfo.summary(model, input_size=(1, 3, size, size), verbose=0)

        ours_t, theirs_t = interleaved(lambda: archspec.summarize(path), theirs, repeats)
        ratio = theirs_t / ours_t
        report(f"summary {name}", f"archspec.summarize {ours_t * 1e3:.1f} ms (first call {cold * 1e3:.0f} ms) vs "
               f"torchvision + torchinfo.summary {theirs_t * 1e3:.0f} ms: {ratio:.0f}x faster "
               f"(target >= 50x)", ratio >= 50)


def bench_build(repeats):
    for name in ("inception_v3", "resnet50"):
        path = SPECS / f"{name}.yaml"
        make = torchvision_model(name)
        ours_t, theirs_t = interleaved(lambda: archspec.build(path), make, repeats)
        ratio = ours_t / theirs_t
        report(f"build {name}", f"archspec.build {ours_t * 1e3:.0f} ms vs torchvision {theirs_t * 1e3:.0f} ms: "
               f"{ratio:.3f}x its time (target <= 1.10)", ratio <= 1.10)


def bench_forward(repeats):
    torch.set_grad_enabled(False)
    for name, size in (("inception_v3", 299), ("resnet50", 224)):
        theirs = torchvision_model(name)().eval()
        ours = archspec.build(SPECS / f"{name}.yaml").eval()
        ours.load_state_dict(theirs.state_dict())
        for batch in (1, 16):
            x = torch.randn(batch, 3, size, size)
            n = repeats if batch == 1 else max(3, repeats // 3)
            ours_t, theirs_t = interleaved(lambda: ours(x), lambda: theirs(x), n)
            ratio = ours_t / theirs_t
            report(f"forward {name} batch {batch}", f"archspec {ours_t * 1e3:.1f} ms vs torchvision "
                   f"{theirs_t * 1e3:.1f} ms: {ratio:.3f}x its time (target <= 1.02)", ratio <= 1.02)
    torch.set_grad_enabled(True)


def bench_fused(repeats, inductor: bool):
    """archspec.fuse's network against torchvision's eval forward with the same weights,
    both under torch.no_grad(), interleaved. For context, two more pairs against
    torchvision: archspec.fuse without prepacked weights (what the folds and the layout
    give alone) and torchvision with channels_last weights (what the layout alone gives).
    `--inductor` also times torch.compile(model) of both (minutes per model on two cores)."""
    with torch.no_grad():
        for name, size in (("inception_v3", 299), ("resnet50", 224)):
            theirs = torchvision_model(name)().eval()
            net = archspec.build(SPECS / f"{name}.yaml").eval()
            net.load_state_dict(theirs.state_dict())
            ours = archspec.fuse(net)
            print(f"     fused {name}: {ours.fusion.describe()}", flush=True)
            unpacked = archspec.fuse(net, prepack=False)
            layout = torchvision_model(name)().eval().to(memory_format=torch.channels_last)
            layout.load_state_dict(theirs.state_dict())
            for batch in (1, 16):
                x = torch.randn(batch, 3, size, size)
                n = repeats if batch == 1 else max(3, repeats // 3)
                ours_t, theirs_t = interleaved(lambda: ours(x), lambda: theirs(x), n)
                unpacked_t = _ratio(interleaved(lambda: unpacked(x), lambda: theirs(x), max(3, n // 2)))
                layout_t = _ratio(interleaved(lambda: layout(x), lambda: theirs(x), max(3, n // 2)))
                ratio = ours_t / theirs_t
                report(f"fused {name} batch {batch}", f"archspec.fuse {ours_t * 1e3:.1f} ms vs torchvision "
                       f"{theirs_t * 1e3:.1f} ms: {ratio:.3f}x its time (target <= 0.85; in their own pairs "
                       f"against torchvision, fuse without prepacking {unpacked_t:.3f}x, torchvision with "
                       f"channels_last weights {layout_t:.3f}x)", ratio <= 0.85)
            if inductor:
                bench_fused_inductor(name, ours, theirs, size, repeats)


def _ratio(times) -> float:
    ours, theirs = times
    return ours / theirs


def bench_fused_inductor(name, ours, theirs, size, repeats):
    """torch.compile (inductor, its defaults) of both networks: compile time, then the
    steady-state forward, interleaved. Reported without a target."""
    torch._dynamo.reset()
    compiled = {}
    for side, model in (("archspec.fuse", ours), ("torchvision", theirs)):
        start = time.perf_counter()
        compiled[side] = torch.compile(model)
        compiled[side](torch.randn(1, 3, size, size))
        print(f"     inductor {name}: compiling {side} took {time.perf_counter() - start:.0f} s", flush=True)
    for batch in (1, 16):
        x = torch.randn(batch, 3, size, size)
        n = repeats if batch == 1 else max(3, repeats // 3)
        ours_t, theirs_t = interleaved(lambda: compiled["archspec.fuse"](x), lambda: compiled["torchvision"](x),
                                       n, warmup=2)
        print(f"     inductor {name} batch {batch}: torch.compile(archspec.fuse) {ours_t * 1e3:.1f} ms vs "
              f"torch.compile(torchvision) {theirs_t * 1e3:.1f} ms: {ours_t / theirs_t:.3f}x its time (no target)",
              flush=True)


def bench_scaling(repeats):
    """Validate + infer of synthetic specs; the two larger sizes interleaved, so the
    machine's drift hits both alike."""
    def run(nodes):
        return lambda: compile_spec(archspec.loads(chain_spec(nodes), name=f"synthetic_{nodes}"), check=False)

    for nodes in (1_000, 10_000, 20_000):
        count = len(compile_spec(archspec.loads(chain_spec(nodes)), check=False).inferred.graph.nodes)
        print(f"     synthetic spec of {nodes:,}: {count:,} nodes after expansion", flush=True)
    small = interleaved(run(1_000), run(10_000), max(5, repeats // 2 + 1))[0]
    ten, twenty = interleaved(run(10_000), run(20_000), max(5, repeats // 2 + 1))
    print(f"     validate + infer: 1,000 nodes {small * 1e3:.0f} ms, 10,000 {ten * 1e3:.0f} ms, "
          f"20,000 {twenty * 1e3:.0f} ms", flush=True)
    report("scaling 10,000 nodes", f"{ten:.3f} s (target < 1 s)", ten < 1.0)
    report("scaling 20,000 / 10,000", f"{twenty / ten:.2f}x (target < 2.2x)", twenty / ten < 2.2)


def bench_big_summary():
    """In a fresh process, so its peak memory is this work's alone."""
    code = f"""
import resource, sys, tracemalloc
sys.path.insert(0, {str(ROOT)!r})
import archspec
from benchmarks.synthetic import wide_resnet_text
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
text = wide_resnet_text().replace("{{parent}}", {str(SPECS / 'resnet50.yaml')!r})
s = archspec.summarize(archspec.loads(text, name="wide"))
peak = tracemalloc.get_traced_memory()[1]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(s.total_params, peak, (after - before) * 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    params, traced, rss = (int(v) for v in out.split())
    peak = max(traced, rss)
    report("summary of a 10B-parameter spec", f"{params:,} params summarised; peak memory "
           f"{peak / 2**20:.1f} MiB above the imports (target < 500 MiB)", params > 10**10 and peak < 500 * 2**20)


def bench_coldstart(repeats):
    """archspec commands in a fresh process, as an editor or a pre-commit hook runs them,
    against a bare `python -c pass` in the same environment, interleaved: the ratio of
    the medians. `python -m archspec` from the repository root, so the code measured is
    this checkout's whatever an installed `archspec` script would import. The package's
    bytecode is compiled first, as `pip install` does: a run with PYTHONDONTWRITEBYTECODE
    set (or a read-only checkout) would otherwise compile every module on every start."""
    compileall.compile_dir(str(ROOT / "archspec"), quiet=1)

    def run(args):
        return lambda: subprocess.run([sys.executable, *args], check=True, cwd=ROOT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    bare = run(["-c", "pass"])
    for label, args, target in (("cold --help", ["--help"], 3), ("cold schema", ["schema"], 7),
                                ("cold validate resnet50", ["validate", "specs/resnet50.yaml"], 7)):
        ours_t, bare_t = interleaved(run(["-m", "archspec", *args]), bare, repeats)
        ratio = ours_t / bare_t
        report(label, f"`archspec {' '.join(args)}` {ours_t * 1e3:.0f} ms vs `python -c pass` {bare_t * 1e3:.0f} ms: "
               f"{ratio:.1f}x (target <= {target}x)", ratio <= target)
    ratios = {}
    for path in sorted(SPECS.glob("*.yaml")):
        ours_t, bare_t = interleaved(run(["-m", "archspec", "summary", str(path.relative_to(ROOT))]), bare, repeats)
        ratios[path.stem] = (ours_t / bare_t, ours_t, bare_t)
    worst = max(ratios, key=lambda name: ratios[name][0])
    ratio, ours_t, bare_t = ratios[worst]
    median = sorted(r for r, _, _ in ratios.values())[len(ratios) // 2]
    report("cold summary", f"worst of {len(ratios)} specs: {worst} {ours_t * 1e3:.0f} ms vs `python -c pass` "
           f"{bare_t * 1e3:.0f} ms: {ratio:.1f}x (median over specs {median:.1f}x; target <= 7x)", ratio <= 7)


def bench_compile_export(inductor: bool):
    backend = "inductor" if inductor else "eager"
    for path in sorted(SPECS.glob("*.yaml")):
        net = archspec.build(path).eval()
        x = torch.randn(2, *archspec.load(path).input_shape)
        torch._dynamo.reset()
        try:
            start = time.perf_counter()
            with torch.no_grad():
                torch.compile(net, fullgraph=True, backend=backend)(x)
            compiled = time.perf_counter() - start
            torch.export.export(net, (x,))
            ok, text = True, f"torch.compile(fullgraph=True, backend={backend}) {compiled:.1f} s, torch.export ok"
        except Exception as exc:  # report every spec, whatever breaks
            ok, text = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        report(f"compile/export {path.stem}", text, ok)


def bench_cuda(repeats):
    """Training steps on a CUDA GPU with bf16 autocast and channels_last, archspec's
    network against torchvision's with the same weights."""
    if not torch.cuda.is_available():
        print("     cuda: no CUDA device here; section skipped", flush=True)
        return
    device = torch.device("cuda")
    print(f"     cuda: {torch.cuda.get_device_name(device)}", flush=True)
    for name, size, batch in (("resnet50", 224, 64), ("inception_v3", 299, 32)):
        theirs = torchvision_model(name)().to(device, memory_format=torch.channels_last).train()
        ours = archspec.build(SPECS / f"{name}.yaml", device=device).to(memory_format=torch.channels_last).train()
        ours.load_state_dict(theirs.state_dict())
        x = torch.randn(batch, 3, size, size, device=device).to(memory_format=torch.channels_last)
        labels = torch.randint(0, 1000, (batch,), device=device)

        def step(model):
            optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

            def run():
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    out = model(x)
                    logits = out[0] if isinstance(out, tuple) else out
                    loss = torch.nn.functional.cross_entropy(logits, labels)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
            return run

        ours_t, theirs_t = interleaved(step(ours), step(theirs), repeats, warmup=3)
        ratio = ours_t / theirs_t
        report(f"cuda train step {name} batch {batch}",
               f"archspec {batch / ours_t:,.0f} img/s vs torchvision {batch / theirs_t:,.0f} img/s: "
               f"{ratio:.3f}x its time (target <= 1.02)", ratio <= 1.02)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    parser.add_argument("--inductor", action="store_true",
                        help="compile every spec with inductor (minutes per spec on a small CPU); in the "
                             "fused section, also time torch.compile of both networks")
    parser.add_argument("--only", choices=("summary", "build", "forward", "fused", "scaling", "memory",
                                           "coldstart", "compile", "cuda"),
                        action="append", help="run only these sections")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 15
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs", flush=True)
    sections = {
        "summary": lambda: bench_summary(repeats),
        "build": lambda: bench_build(repeats),
        "forward": lambda: bench_forward(repeats),
        "fused": lambda: bench_fused(repeats, args.inductor),
        "scaling": lambda: bench_scaling(repeats),
        "memory": bench_big_summary,
        "coldstart": lambda: bench_coldstart(max(5, repeats // 2)),
        "compile": lambda: bench_compile_export(args.inductor),
        "cuda": lambda: bench_cuda(repeats),
    }
    for name, run in sections.items():
        if not args.only or name in args.only:
            gc.collect()
            run()
    missed = [name for name, _, ok in results if not ok]
    print(f"\n{len(results) - len(missed)} of {len(results)} targets met" +
          (f"; missed: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
