"""The `archspec` command: a shell over the Python API that parses and prints.

Exit status: 0 ok, 1 a check failed (an `expect:` figure), 2 the spec or the
command line is invalid, 3 an internal error (a bug in archspec).
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings

from .diagnostics import EXIT_INTERNAL, EXIT_INVALID, Diagnostic, SpecError, display_path, error

_EPILOG = """\
examples:
  archspec build specs/inception_v3.yaml
  archspec build specs/resnet50.yaml --set num_classes=10 -o resnet50-10.pt
  archspec build specs/resnet50.yaml --fuse
  archspec summary specs/resnet50.yaml --input 3x160x160
  archspec summary specs/googlenet.yaml --set aux_logits=false --json
  archspec validate specs/*.yaml
  archspec validate specs/*.yaml --format sarif > archspec.sarif
  archspec draw specs/resnet18.yaml --format mermaid --depth 1

exit status: 0 ok, 1 an `expect:` figure failed, 2 invalid spec or command line,
3 internal error (please report it)."""

_DRAW_EPILOG = """\
examples:
  archspec draw specs/inception_v3.yaml -o inception_v3.html
  archspec draw specs/resnet50.yaml --depth 2 -o resnet50.svg
  archspec draw specs/resnet18.yaml --format mermaid --depth 1
  archspec draw specs/googlenet.yaml --set aux_logits=false --format dot | dot -Tpdf -o googlenet.pdf

svg needs Graphviz's `dot` (apt-get install graphviz, brew install graphviz, or
conda install graphviz); html, dot and mermaid need nothing installed. The html page
loads nothing from the network: its script and style are inside it."""

_EXPORT_EPILOG = """\
examples:
  archspec export specs/squeezenet1_1.yaml -o squeezenet1_1.onnx
  archspec export specs/squeezenet1_0.yaml --format pt2 --dynamic batch -o squeezenet1_0.pt2

--dynamic (default: the batch size, and each spatial size the spec allows): a spatial
size is fixed when the weights depend on it (a flatten into a linear layer); adaptive
pools keep it free. --weights FILE exports trained weights (as `build --weights`);
without it the file holds freshly initialised ones. ONNX needs the `export` extra:
pip install 'archspec-nn[export]'."""

EXIT_BROKEN_PIPE = 141  # what a shell reports for a program stopped by SIGPIPE


class _Parser(argparse.ArgumentParser):
    """Command-line mistakes are diagnostics like any other: `error[E0606]`, exit 2."""

    def error(self, message):
        raise SpecError(Diagnostic("E0606", message, hint=f"see `{self.prog} --help`"))


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="archspec", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG,
        description="Compile neural-network architectures written as YAML into torch.nn.Module, "
                    "with every shape, parameter and MAC worked out first.")
    p.add_argument("--version", action="version", version=f"archspec {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def spec_options(cmd, many=False, expect=False):
        if many:
            cmd.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (YAML)")
        else:
            cmd.add_argument("spec", metavar="SPEC", help="spec file (YAML)")
        cmd.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a file-level arg; VALUE is read as YAML (10, false, [2, 2, 2, 2]); "
                              "repeatable")
        cmd.add_argument("--input", metavar="CxHxW", help="input shape per sample, e.g. 3x224x224 or 3x16x112x112")
        cmd.add_argument("--scale", metavar="NAME", help="apply one of the spec's named scales (`scales:`), "
                         "e.g. b3 or x1_5; --set values apply after it")
        cmd.add_argument("--max-params", type=int, metavar="N",
                         help="fail (exit 1) if the network has more than N parameters; "
                              "checked before any weight is allocated")
        if expect:
            cmd.add_argument("--no-expect", action="store_true",
                             help="do not check the spec's `expect:` figures at all (by default a variant "
                                  "made with --set or --input checks only the figures written as expressions)")

    def weights_options(cmd):
        cmd.add_argument("--weights", metavar="FILE",
                         help="load this checkpoint (a state dict, or a dict holding one under `state_dict` or "
                              "`model`) strictly; read with torch.load(weights_only=True), so it never runs code")
        cmd.add_argument("--weights-map", dest="weights_map", action="append", default=[], metavar="OLD=NEW",
                         help="rename a key prefix of the checkpoint first (`module.=` drops a wrapper's "
                              "`module.`); repeatable, the first that matches a key applies")

    v = sub.add_parser("validate", help="check specs without building them", epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Validate each spec: schema, expansion, shapes, `expect:` figures. "
                                   "Nothing is allocated.")
    spec_options(v, many=True, expect=True)
    v.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                   help="text (default); json: one document of every diagnostic with its code, position and "
                        "end, for editors and scripts; sarif: SARIF 2.1.0, for GitHub code scanning")
    v.add_argument("--only-specs", action="store_true",
                   help="skip files without a top-level `archspec:` key (for hooks that pass every YAML file)")

    b = sub.add_parser("build", help="compile a spec into a torch.nn.Module", epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Compile a spec, check its figures, and build the module. "
                                   "With -o, write the resolved spec and the weights to FILE.")
    spec_options(b, expect=True)
    b.add_argument("-o", "--output", metavar="FILE",
                   help="write the resolved spec and state dict (load with archspec.load_built); "
                        "written to a temporary file and renamed, so a failure leaves FILE as it was")
    b.add_argument("--verify", action="store_true",
                   help="also run a forward on the meta device and compare every inferred shape")
    b.add_argument("--print-code", action="store_true", help="print the generated eval-mode forward")
    b.add_argument("--fuse", action="store_true",
                   help="make the inference-only network archspec.fuse makes: each batch norm folded into the "
                        "convolution or linear layer before it (its only reader), dropout and training-only "
                        "outputs left out; say what was folded and how closely its outputs follow the unfused "
                        "network's on a random input. --print-code then prints the fused forward, and -o writes "
                        "the fused network (archspec.load_built returns it, in eval mode; it cannot train)")
    b.add_argument("--seed", type=int, metavar="N",
                   help="seed torch's generator first, so the weights drawn (and written with -o) are reproducible")
    b.add_argument("--no-init", dest="init", action="store_false",
                   help="skip the spec's `init:` rules: every tensor keeps what its PyTorch module drew "
                        "(with --weights nothing is drawn for them anyway: the checkpoint sets every tensor)")
    weights_options(b)

    s = sub.add_parser("summary", help="print shapes, params and MACs of every node", epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="One row per node: qualified name, op, output shape, params, MACs; "
                                   "then totals. Worked out statically: nothing is built.")
    spec_options(s)
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.add_argument("--batch", type=int, default=1, metavar="N",
                   help="batch size for shapes, MACs and activation memory (1)")
    s.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16", "float64"),
                   help="element type for the memory estimates (float32)")
    s.add_argument("--depth", type=int, metavar="N",
                   help="fold rows to the first N parts of their names (1: one row per stage)")
    s.add_argument("--scales", action="store_true",
                   help="one row per named scale of the spec (params, MACs, input, outputs) instead of per node")

    d = sub.add_parser("draw", help="draw the network: SVG, an interactive HTML page, DOT or Mermaid",
                       epilog=_DRAW_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Draw the network from its spec alone (nothing is built): every box "
                                   "shows its output shape, params and MACs; blocks can be folded into "
                                   "one box; training-only parts are dashed.")
    spec_options(d)
    d.add_argument("--format", choices=("svg", "html", "dot", "mermaid"),
                   help="svg: for documents, laid out by Graphviz's `dot` (must be installed); "
                        "html: a self-contained page whose blocks unfold on click; dot, mermaid: text. "
                        "Default: from -o FILE's extension, else svg")
    d.add_argument("--depth", type=int, metavar="N",
                   help="fold every block named with N parts into one box with summed figures, as "
                        "summary --depth folds rows (1: one box per top-level block). Default: nothing "
                        "folded; html: the page opens folded to N (default 1) and unfolds on click")
    d.add_argument("-o", "--output", metavar="FILE",
                   help="write to FILE (through a temporary file and a rename); without it the drawing "
                        "goes to standard output, which svg and html allow only when it is not a terminal")
    _diff_options(sub.add_parser(
        "diff", help="compare two specs node by node, and whether a checkpoint of one loads into the other",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_DIFF_EPILOG,
        description="Compare spec A with spec B by qualified node names, without building either: "
                    "blocks and repeat copies added or removed, node arguments changed, shape, params "
                    "and MAC deltas per block and in total, and whether a state dict of A loads into "
                    "B strictly (and if not, which keys are missing, unexpected or reshaped). The "
                    "state-dict layouts come from both networks built on the meta device, which "
                    "allocates nothing."))

    _eject_options(sub.add_parser(
        "eject", help="write a spec as readable PyTorch source that imports torch only",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EJECT_EPILOG,
        description="Write the spec as a Python module: one nn.Module class per block (constructor "
                    "arguments named after the block's), submodules named as archspec names them (so "
                    "state-dict keys are archspec's), an explicit forward with the spec's `doc:` strings "
                    "as comments, and build() taking the file-level args that only change sizes."))

    x = sub.add_parser("export", help="write the network as ONNX or a torch.export program (.pt2)",
                       epilog=_EXPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Build the network in eval mode and export it: ONNX through torch.onnx's "
                                   "torch.export-based exporter, or the torch.export program itself (.pt2, "
                                   "load with torch.export.load). Dynamic sizes are declared from the spec.")
    spec_options(x, expect=True)
    x.add_argument("--format", choices=("onnx", "pt2"), help="default: from -o FILE's extension (.onnx, .pt2)")
    x.add_argument("-o", "--output", metavar="FILE", required=True,
                   help="the file to write (through a temporary file and a rename)")
    x.add_argument("--dynamic", choices=("batch", "spatial", "none"),
                   help="batch: only the batch size varies; spatial: the batch and every spatial size "
                        "(refused where the weights fix one); none: every size fixed. Default: the batch "
                        "and each spatial size the spec allows")
    x.add_argument("--fuse", action="store_true",
                   help="export what archspec.fuse makes of the network: each batch norm folded into the "
                        "convolution or linear layer before it (as build --fuse)")
    weights_options(x)

    sub.add_parser("schema", help="print the JSON Schema of the spec language",
                   description="Print the JSON Schema (Draft 2020-12) that every spec must satisfy, "
                               "for the ops registered now (plugins included).")
    return p


_DIFF_EPILOG = """\
Options for one side: --set, --scale and --input apply to both A and B; --set-a,
--scale-a, --input-a (and -b) apply to one side only, after them. So
`archspec diff X.yaml X.yaml --set-b num_classes=10` compares a spec with its own
variant.

examples:
  archspec diff specs/resnet50.yaml specs/resnet101.yaml
  archspec diff specs/resnet50.yaml specs/resnet50.yaml --set-b num_classes=10
  archspec diff specs/resnet18.yaml specs/resnet34.yaml --depth 2 --json
  archspec diff specs/googlenet.yaml specs/googlenet.yaml --set-b aux_logits=false --keys

exit status: 0 the comparison ran (whatever it found; with --exit-code: 0 no
difference, 1 they differ), 2 invalid spec or command line, 3 internal error."""


def _diff_options(d) -> None:
    d.add_argument("spec_a", metavar="A", help="the spec compared from (YAML)")
    d.add_argument("spec_b", metavar="B", help="the spec compared to (YAML)")
    for side, which in (("", "both specs"), ("-a", "A only"), ("-b", "B only")):
        dest = side.replace("-", "_")
        d.add_argument(f"--set{side}", dest=f"overrides{dest}", action="append", default=[], metavar="KEY=VALUE",
                       help=f"override a file-level arg of {which}; repeatable" +
                            ("; VALUE is read as YAML" if not side else ""))
        d.add_argument(f"--scale{side}", dest=f"scale{dest}", metavar="NAME", help=f"named scale for {which}")
        d.add_argument(f"--input{side}", dest=f"input{dest}", metavar="CxHxW", help=f"input shape for {which}")
    d.add_argument("--depth", type=int, default=1, metavar="N",
                   help="per-block deltas down to the first N parts of names (1: stages; 2: layer1.0)")
    d.add_argument("--json", action="store_true", help="print the comparison as JSON")
    d.add_argument("--keys", action="store_true", help="list every missing, unexpected and reshaped "
                   "state-dict key instead of grouping them by block")
    d.add_argument("--exit-code", action="store_true",
                   help="exit 1 when the specs differ, 0 when they do not (as `git diff --exit-code`)")
    d.add_argument("-o", "--output", metavar="FILE",
                   help="write the report to FILE instead of standard output (through a temporary "
                        "file, so a failure leaves FILE as it was)")


_EJECT_EPILOG = """\
The file imports torch only. File-level args that change the structure (a list of
stage depths, a block name, a switch that adds a head) are written into it as
ejected: choose them with --set before ejecting.

examples:
  archspec eject specs/resnet18.yaml
  archspec eject specs/resnet50.yaml -o resnet50.py
  archspec eject specs/googlenet.yaml --set aux_logits=false -o googlenet.py

exit status: 0 written, 2 invalid spec or command line, or a spec eject cannot write
(E0615, E0616), 3 internal error."""


def _eject_options(e) -> None:
    e.add_argument("spec", metavar="SPEC", help="spec file (YAML)")
    e.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a file-level arg before ejecting; VALUE is read as YAML; repeatable")
    e.add_argument("--scale", metavar="NAME", help="apply one of the spec's named scales first")
    e.add_argument("--input", metavar="CxHxW", help="input shape per sample")
    e.add_argument("-o", "--output", metavar="FILE",
                   help="write the module to FILE (through a temporary file, so a failure leaves FILE "
                        "as it was) instead of standard output")


def _version() -> str:
    from . import __version__

    return __version__


def main(argv=None) -> int:
    try:
        try:
            args = _parser().parse_args(argv)
            if args.command is None:
                _parser().print_help()
                return EXIT_INVALID
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                status = _COMMANDS[args.command](args)
            _report_warnings(caught)
        except SpecError as exc:
            _report(exc)
            status = exc.exit_code
        sys.stdout.flush()  # write errors on stdout surface here, not at exit
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`archspec summary x | head`): not an error
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:
        if exc.errno is not None and _stdout_failed():
            _silence_stdout()
            _report(error("E0605", f"cannot write to standard output: {exc.strerror or exc}"))
            return EXIT_INVALID
        return _internal(exc)
    except Exception as exc:  # a bug: say so plainly, keep the traceback for ARCHSPEC_DEBUG=1
        return _internal(exc)


def _internal(exc: Exception) -> int:
    if os.environ.get("ARCHSPEC_DEBUG"):
        raise exc
    print(f"archspec: internal error: {type(exc).__name__}: {exc}\n"
          "  = hint: this is a bug in archspec; rerun with ARCHSPEC_DEBUG=1 for the traceback "
          "and report it with the spec", file=sys.stderr)
    return EXIT_INTERNAL


def _stdout_failed() -> bool:
    try:
        sys.stdout.flush()
        return False
    except OSError:
        return True


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's own flush at exit stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _report(exc: SpecError) -> None:
    for d in exc.diagnostics:
        print(d.render(), file=sys.stderr)


def _report_warnings(caught) -> None:
    if not caught:
        return  # `archspec schema` need not import the compiler to say nothing
    from .api import SpecWarning

    for w in caught:
        if isinstance(w.message, SpecWarning):
            print(w.message.diagnostic.render(), file=sys.stderr)
        else:
            print(f"archspec: warning: {w.message}", file=sys.stderr)


def _overrides(args) -> dict:
    from .spec import parse_override

    return dict(parse_override(assignment) for assignment in args.overrides)


def _compile(args, path):
    from .api import compile_spec

    check = not getattr(args, "no_expect", True)
    return compile_spec(path, input_shape=args.input, check=check, max_params=args.max_params,
                        scale=args.scale, **_overrides(args))


def _expect_line(compiled) -> str | None:
    report = compiled.expect
    if report is None or report.checked + report.skipped == 0:
        return None
    if not report.skipped:
        return "expect: all figures hold"
    return (f"expect: {report.checked} figure{'s' if report.checked != 1 else ''} written as expressions "
            f"hold; {report.skipped} literal figure{'s' if report.skipped != 1 else ''} describe the spec "
            "as written and do not apply to this variant")


def cmd_validate(args) -> int:
    if args.only_specs:
        args.specs = [path for path in args.specs if _is_spec(path)]
    if args.format != "text":
        return _validate_report(args)
    status = 0
    for path in args.specs:
        try:
            compiled = _compile(args, path)
        except SpecError as exc:
            _report(exc)
            status = max(status, exc.exit_code)
            continue
        inferred = compiled.inferred
        print(f"{display_path(path)}: ok ({len(inferred.graph.nodes)} nodes, {inferred.total_params:,} params)")
    return status


def _is_spec(path) -> bool:
    """A file with a top-level `archspec:` key, or one that cannot be read (validate reports why)."""
    import re

    from .diagnostics import MAX_SOURCE_BYTES
    from .yaml_source import read_regular_file

    try:
        text = read_regular_file(path, MAX_SOURCE_BYTES).decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return True
    return re.search(r"^archspec[ \t]*:", text, re.M) is not None


def _validate_report(args) -> int:
    """validate --format json|sarif: every spec's diagnostics, warnings included, in one document."""
    from .api import SpecWarning
    from .diagnostic_formats import SpecResult, to_json, to_sarif

    results, status = [], 0
    for path in args.specs:
        result = SpecResult(display_path(path))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                inferred = _compile(args, path).inferred
                result.nodes, result.params = len(inferred.graph.nodes), inferred.total_params
            except SpecError as exc:
                result.diagnostics.extend(exc.diagnostics)
                status = max(status, exc.exit_code)
        for w in caught:
            if isinstance(w.message, SpecWarning):
                result.diagnostics.append(w.message.diagnostic)
            else:
                print(f"archspec: warning: {w.message}", file=sys.stderr)
        result.diagnostics.sort(key=lambda d: (d.pos is None, d.pos and (d.pos.file, d.pos.line, d.pos.col)))
        results.append(result)
    version = _version()
    print(to_json(results, status, version) if args.format == "json" else to_sarif(results, version))
    return status


def cmd_build(args) -> int:
    from .api import build_compiled

    if args.output:
        from .atomic import check_output_path

        check_output_path(args.output)  # before the work, not after it
    if args.weights_map and not args.weights:
        raise error("E0623", "--weights-map renames the keys of --weights FILE, which is not given")
    compiled = _compile(args, args.spec)
    spec, inferred = compiled.spec, compiled.inferred
    if args.seed is not None:
        import torch

        torch.manual_seed(args.seed)
    net = build_compiled(compiled, verify=args.verify, init=args.init, weights=args.weights,
                         weights_map=args.weights_map)
    outputs = ", ".join(f"{o.name} {list(inferred.shape(o.node))}" + (" (training)" if o.train_only else "")
                        for o in inferred.graph.outputs)
    print(f"built {spec.name}: {inferred.total_params:,} params, {inferred.macs():,} MACs per sample, "
          f"input {list(spec.input_shape)}, outputs {outputs}")
    line = _expect_line(compiled)
    if line:
        print(line)
    if args.verify:
        print("verify: a meta-device forward agrees with every inferred shape")
    if args.weights:
        print(f"weights: every key of {args.weights} loaded ({len(net.state_dict())} tensors)")
    if args.fuse:
        net = _fuse_and_report(net, spec)
    if args.print_code:
        print(net.code(training=False))
    if args.output:
        from .artifact import save_built

        save_built(spec, net, args.output)
        print(f"wrote {args.output}" + (" (fused for inference)" if args.fuse else ""))
    return 0


def _fuse_and_report(net, spec):
    """The fused network, with a line on what was folded and one on how closely its
    outputs follow the unfused network's (a random input of the spec's shape)."""
    import torch

    from .fusion import fuse, max_difference

    fused = fuse(net.eval())
    params = sum(p.numel() for p in fused.parameters())
    print(f"fused: {fused.fusion.describe()}; {params:,} params")
    x = torch.randn(1, *spec.input_shape, generator=torch.Generator().manual_seed(0))
    print(f"fused: outputs agree with the unfused network's to {max_difference(net, fused, x):.1e} "
          "of their largest value on a random input")
    return fused


def cmd_summary(args) -> int:
    from .api import summarize, summarize_scales
    from .summary import render_scales

    options = dict(batch=args.batch, dtype=args.dtype, input_shape=args.input, max_params=args.max_params,
                   **_overrides(args))
    if args.scales:
        if args.scale or args.depth:
            raise error("E0606", "--scales prints every scale: it takes no --scale or --depth")
        summaries = summarize_scales(args.spec, **options)
        print(_json([s.to_dict() for s in summaries]) if args.json else render_scales(summaries))
        return 0
    summary = summarize(args.spec, depth=args.depth, scale=args.scale, **options)
    print(_json(summary.to_dict()) if args.json else summary.render())
    return 0


def _json(data) -> str:
    import json

    return json.dumps(data, indent=1)


def cmd_draw(args) -> int:
    from .draw import EXTENSIONS, render

    fmt = args.format or _format_of(args.output, EXTENSIONS)
    if args.output is None and fmt in ("svg", "html") and sys.stdout.isatty():
        raise error("E0612", f"--format {fmt} writes a file, not terminal text",
                    hint=f"give -o FILE (`-o {_stem(args.spec)}.{fmt}`) or redirect standard output")
    text = render(args.spec, fmt, depth=args.depth, input_shape=args.input, scale=args.scale,
                  max_params=args.max_params, **_overrides(args))
    if args.output is None:
        sys.stdout.write(text)
        return 0
    from .atomic import atomic_output

    try:
        with atomic_output(args.output) as f:
            f.write(text.encode("utf-8"))
    except OSError as exc:
        raise error("E0605", f"cannot write {args.output}: {exc.strerror or exc}") from None
    print(f"wrote {args.output}")
    return 0


def _format_of(output, extensions) -> str:
    if output is None:
        return "svg"
    ext = os.path.splitext(output)[1].lower()
    if ext not in extensions:
        raise error("E0604", f"cannot tell the drawing format from `{output}`",
                    hint=f"give --format svg, html, dot or mermaid, or name the file "
                         f"{', '.join(sorted(extensions))} (for PNG or PDF: --format dot, then `dot -Tpng`)")
    return extensions[ext]


def _stem(path) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def cmd_diff(args) -> int:
    from .diff import compare
    from .spec import parse_override

    def side(name):
        both = dict(parse_override(a) for a in args.overrides)
        own = dict(parse_override(a) for a in getattr(args, f"overrides_{name}"))
        return {f"overrides_{name}": {**both, **own},
                f"scale_{name}": getattr(args, f"scale_{name}") or args.scale,
                f"input_{name}": getattr(args, f"input_{name}") or args.input}

    result = compare(args.spec_a, args.spec_b, depth=args.depth, **side("a"), **side("b"))
    text = _json(result.to_dict()) if args.json else result.render(list_keys=args.keys)
    _write_report(text, args.output)
    return 1 if args.exit_code and result.differ else 0


def _write_report(text: str, path: str | None) -> None:
    if path is None:
        print(text)
        return
    from .atomic import atomic_output

    try:
        with atomic_output(path, "w") as f:
            f.write(text + "\n")
    except OSError as exc:
        raise error("E0605", f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"wrote {path}", file=sys.stderr)


def cmd_eject(args) -> int:
    from .eject import eject, write_ejected

    ejected = eject(args.spec, input_shape=args.input, scale=args.scale, **_overrides(args))
    if args.output is None:
        sys.stdout.write(ejected.source)
        return 0
    write_ejected(ejected, args.output)
    signature = ", ".join(f"{k}={v!r}" for k, v in ejected.exposed.items())
    print(f"wrote {args.output}: {len(ejected.classes)} classes ({', '.join(ejected.classes)}); "
          f"build({signature}) returns {ejected.network}")
    return 0


def cmd_schema(args) -> int:
    from .ops import REGISTRY
    from .schema import schema_text

    sys.stdout.write(schema_text(REGISTRY.everything()))
    return 0


def cmd_export(args) -> int:
    from .exporter import export_spec

    if args.weights_map and not args.weights:
        raise error("E0623", "--weights-map renames the keys of --weights FILE, which is not given")
    check = not args.no_expect
    result = export_spec(args.spec, args.output, args.format, dynamic=args.dynamic, weights=args.weights,
                         weights_map=args.weights_map, input_shape=args.input, scale=args.scale,
                         max_params=args.max_params, check=check, fuse=args.fuse, **_overrides(args))
    print(_export_report(result))
    return 0


def _export_report(result) -> str:
    kind = f"ONNX opset {result.opset}" if result.format == "onnx" else "torch.export program"
    lines = [f"exported {result.name} to {result.path} ({kind}, {result.size / 1e6:,.1f} MB)",
             f"input  `input` {_dims(result.input)}"]
    lines += [f"output `{name}` {_dims(dims)}" for name, dims in result.outputs]
    dynamic = ", ".join(f"{name} >= {least}" for name, least in result.least.items())
    lines.append(f"dynamic: {dynamic or 'none (every size is fixed)'}")
    reasons: dict = {}  # one line for the sizes one node fixes
    for name, why in result.fixed.items():
        reasons.setdefault(why.pos or why.message, []).append((name, why))
    for names in reasons.values():
        (_, why), shown = names[0], " and ".join(name for name, _ in names)
        lines.append(f"fixed: {shown}: {why.message}" + (f" ({why.pos})" if why.pos else "")
                     + (f" (the {', '.join(n for n, _ in names[1:])} likewise)" if len(names) > 1 else ""))
    if result.fallback:
        lines.append(f"fixed: the spatial sizes, which torch.export refused as dynamic: {result.fallback}")
    if result.fused:
        lines.append(f"fused: {result.fused}")
    lines.append(f"weights: {result.weights}" if result.weights else
                 "weights: none given, so the file holds freshly initialised weights (--weights FILE loads "
                 "trained ones)")
    return "\n".join(lines)


def _dims(dims) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


_COMMANDS = {"validate": cmd_validate, "build": cmd_build, "summary": cmd_summary, "draw": cmd_draw,
             "diff": cmd_diff, "eject": cmd_eject, "export": cmd_export, "schema": cmd_schema}


if __name__ == "__main__":
    sys.exit(main())
