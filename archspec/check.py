"""The `expect:` block: figures a spec promises about itself, checked after inference."""
from __future__ import annotations

from .diagnostics import Diagnostic, SpecError, error
from .infer import InferredGraph
from .spec import Spec, resolve_written
from .yaml_source import position_of


def check_expectations(spec: Spec, inferred: InferredGraph) -> None:
    expect = spec.document.get("expect")
    if not expect:
        return
    env = dict(spec.args)
    problems = []

    def value(container, key):
        return resolve_written(container[key], env, position_of(container, key), f"expect {key}")

    def shape(container, key):
        got = value(container, key)
        if not (isinstance(got, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in got)):
            raise error("E0201", f"expect {key}: a shape is a list of whole numbers, got {got!r}",
                        position_of(container, key))
        return got

    changed = list(spec.overrides) + (["--input"] if spec.input_overridden else [])
    hint = (f"`expect:` describes the spec as written; with {', '.join(changed)} changed, build the "
            "variant with --no-expect or write the figure as an expression of the args") if changed else None

    def compare(what, wanted, actual, pos, fmt=str):
        if wanted != actual:
            problems.append(Diagnostic("E0701" if what in ("params", "macs") else "E0702",
                                       f"expected {what} {fmt(wanted)}, the spec gives {fmt(actual)}",
                                       pos, None if problems else hint))

    if "params" in expect:
        compare("params", value(expect, "params"), inferred.total_params, position_of(expect, "params"),
                lambda v: f"{v:,}" if isinstance(v, int) else repr(v))
    # A different input size changes MACs and spatial sizes (and the parameters of a
    # linear layer fed by a flatten, which `params` then reports).
    if "macs" in expect and not spec.input_overridden:
        compare("macs", value(expect, "macs"), inferred.macs(), position_of(expect, "macs"),
                lambda v: f"{v:,}" if isinstance(v, int) else repr(v))
    outputs = {o.name: o for o in inferred.graph.outputs}
    declared = spec.document.get("outputs") or {}
    checks = []  # (output name, container, key)
    if "output" in expect:
        checks.append((inferred.graph.outputs[0].name, expect, "output"))
    for name in expect.get("outputs") or {}:
        checks.append((name, expect["outputs"], name))
    for name, container, key in checks:
        if name not in outputs:
            if name not in declared:
                problems.append(Diagnostic("E0314", f"expect outputs: no output `{name}`",
                                           position_of(container, key)))
            continue  # switched off by its `when:` for these arguments
        compare(f"output `{name}` shape", shape(container, key),
                list(inferred.shape(outputs[name].node)), position_of(container, key))
    shapes = expect.get("shapes") or {}
    if shapes and not spec.input_overridden:
        for name in shapes:
            node = _find(inferred, name)
            if node is None:
                problems.append(Diagnostic("E0305", f"expect shapes: no node `{name}`", position_of(shapes, name)))
                continue
            compare(f"shape of `{name}`", shape(shapes, name), list(inferred.shape(node)),
                    position_of(shapes, name))
    if problems:
        raise SpecError(problems)


def _find(inferred: InferredGraph, name: str):
    """A node by qualified name, or the last node of a block/seq by its prefix."""
    nodes = inferred.graph.nodes
    name = str(name)
    if name in nodes:
        return name
    if name in inferred.graph.aliases:
        return inferred.graph.aliases[name]
    prefix = name + "."
    inside = [n for n in nodes if n.startswith(prefix)]
    return inside[-1] if inside else None
