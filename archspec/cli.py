"""The `archspec` command: validate, build, summary, schema.

Exit status: 0 ok, 1 a check failed (an `expect:` figure), 2 the spec or the
command line is invalid, 3 an internal error (a bug in archspec).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .diagnostics import EXIT_INTERNAL, EXIT_INVALID, SpecError, display_path, error

_EPILOG = """\
examples:
  archspec build specs/inception_v3.yaml
  archspec build specs/resnet50.yaml --set num_classes=10 -o resnet50-10.pt
  archspec summary specs/resnet50.yaml --input 3x160x160
  archspec summary specs/googlenet.yaml --set aux_logits=false --json

exit status: 0 ok, 1 an `expect:` figure failed, 2 invalid spec or command line,
3 internal error (please report it)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="archspec", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG,
        description="Compile neural-network architectures written as YAML into torch.nn.Module, "
                    "with every shape, parameter and MAC worked out first.")
    p.add_argument("--version", action="version", version=f"archspec {_version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def spec_options(cmd, many=False):
        if many:
            cmd.add_argument("specs", nargs="+", metavar="SPEC", help="spec files (YAML)")
        else:
            cmd.add_argument("spec", metavar="SPEC", help="spec file (YAML)")
        cmd.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a file-level arg; VALUE is read as YAML (10, false, [2, 2, 2, 2]); "
                              "repeatable")
        cmd.add_argument("--input", metavar="CxHxW", help="input shape per sample, e.g. 3x224x224 "
                         "(the spec's `expect:` shapes and MACs are then not checked)")
        cmd.add_argument("--max-params", type=int, metavar="N",
                         help="fail (exit 1) if the network has more than N parameters; "
                              "checked before any weight is allocated")
        if cmd.prog.split()[-1] in ("validate", "build"):
            cmd.add_argument("--no-expect", action="store_true",
                             help="do not check the spec's `expect:` figures (for variants made with --set)")

    v = sub.add_parser("validate", help="check specs without building them",
                       description="Validate each spec: schema, expansion, shapes, `expect:` figures. "
                                   "Nothing is allocated.")
    spec_options(v, many=True)

    b = sub.add_parser("build", help="compile a spec into a torch.nn.Module",
                       description="Compile a spec, check its figures, and build the module. "
                                   "With -o, write the resolved spec and the weights to FILE.")
    spec_options(b)
    b.add_argument("-o", "--output", metavar="FILE",
                   help="write the resolved spec and state dict (load with archspec.load_built)")
    b.add_argument("--verify", action="store_true",
                   help="also run a forward on the meta device and compare every inferred shape")
    b.add_argument("--print-code", action="store_true", help="print the generated eval-mode forward")

    s = sub.add_parser("summary", help="print shapes, params and MACs of every node",
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

    sub.add_parser("schema", help="print the JSON Schema of the spec language",
                   description="Print the JSON Schema (Draft 2020-12) that every spec must satisfy.")
    return p


def _version() -> str:
    from . import __version__

    return __version__


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return EXIT_INVALID
    try:
        return _COMMANDS[args.command](args)
    except SpecError as exc:
        _report(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so plainly, keep the traceback for ARCHSPEC_DEBUG=1
        if os.environ.get("ARCHSPEC_DEBUG"):
            raise
        print(f"archspec: internal error: {type(exc).__name__}: {exc}\n"
              "  = hint: this is a bug in archspec; rerun with ARCHSPEC_DEBUG=1 for the traceback "
              "and report it with the spec", file=sys.stderr)
        return EXIT_INTERNAL


def _report(exc: SpecError) -> None:
    for d in exc.diagnostics:
        print(d.render(), file=sys.stderr)


def _overrides(args) -> dict:
    from .spec import parse_override

    values = {}
    for assignment in args.overrides:
        key, value = parse_override(assignment)
        values[key] = value
    return values


def _compile(args, path):
    from .api import compile_spec

    if args.max_params is not None and args.max_params < 0:
        raise error("E0604", f"--max-params must not be negative, got {args.max_params}")
    check = not getattr(args, "no_expect", False) and args.command != "summary"
    return compile_spec(path, input_shape=args.input, check=check, max_params=args.max_params,
                        **_overrides(args))


def _warn(inferred) -> None:
    for w in inferred.graph.warnings:
        print(w.render(), file=sys.stderr)


def cmd_validate(args) -> int:
    status = 0
    for path in args.specs:
        try:
            spec, inferred = _compile(args, path)
        except SpecError as exc:
            _report(exc)
            status = max(status, exc.exit_code)
            continue
        _warn(inferred)
        print(f"{display_path(path)}: ok ({len(inferred.graph.nodes)} nodes, "
              f"{inferred.total_params:,} params)")
    return status


def cmd_build(args) -> int:
    from .artifact import save_built
    from .builder import build_module
    from .verify import verify

    spec, inferred = _compile(args, args.spec)
    _warn(inferred)
    if args.verify:
        verify(inferred, spec.name)
    net = build_module(inferred, spec.name)
    outputs = ", ".join(f"{o.name} {list(inferred.shape(o.node))}" + (" (training)" if o.train_only else "")
                        for o in inferred.graph.outputs)
    print(f"built {spec.name}: {inferred.total_params:,} params, {inferred.macs():,} MACs per sample, "
          f"input {list(spec.input_shape)}, outputs {outputs}")
    if spec.document.get("expect") and not args.no_expect:
        print("expect: all figures hold" + (" (shapes and MACs not checked: --input)" if args.input else ""))
    if args.verify:
        print("verify: a meta-device forward agrees with every inferred shape")
    if args.print_code:
        print(net.code(training=False))
    if args.output:
        try:
            save_built(spec, net, args.output)
        except OSError as exc:
            raise error("E0605", f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"wrote {args.output}")
    return 0


def cmd_summary(args) -> int:
    from .summary import summarize_graph

    if args.batch < 1:
        raise error("E0604", f"--batch must be at least 1, got {args.batch}")
    if args.depth is not None and args.depth < 1:
        raise error("E0604", f"--depth must be at least 1, got {args.depth}")
    spec, inferred = _compile(args, args.spec)
    _warn(inferred)
    summary = summarize_graph(inferred, spec.name, args.batch, args.dtype)
    if args.depth:
        summary = summary.folded(args.depth, inferred.graph.aliases)
    print(json.dumps(summary.to_dict(), indent=1) if args.json else summary.render())
    return 0


def cmd_schema(args) -> int:
    from .schema import shipped_schema

    print(json.dumps(shipped_schema(), indent=1))
    return 0


_COMMANDS = {"validate": cmd_validate, "build": cmd_build, "summary": cmd_summary, "schema": cmd_schema}


if __name__ == "__main__":
    sys.exit(main())
