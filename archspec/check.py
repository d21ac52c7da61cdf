"""The `expect:` block: figures a spec promises about itself, checked after inference.

What a figure claims depends on how it is written:

- a literal (`macs: 4089184256`, `shapes: {layer1: [256, 56, 56]}`) describes the
  spec as written: its own args, input and scale. It is checked when the spec is
  built as written, and not for a variant (`--set`, `--input`, `--scale`, or the
  API's keywords), to which it no longer applies;
- an expression (`params: ${23508032 + 2049 * num_classes}`, `output: [$num_classes]`)
  claims to hold for every variant, so it is always checked, with the variant's args
  and `input` (the input shape, a list) in scope.

A spec made with `extends:` is a spec of its own, not a variant: figures it inherits
are checked, and one that fails says where it was inherited from.
"""
from __future__ import annotations

from .diagnostics import Diagnostic, SpecError, error
from .expressions import is_expression
from .infer import InferredGraph
from .records import record
from .spec import Spec, resolve_written
from .yaml_source import position_of


@record
class ExpectReport:
    checked: int   # figures compared (all of them held)
    skipped: int   # literal figures not applying to this variant


def written_as_expression(raw) -> bool:
    if isinstance(raw, list):
        return any(written_as_expression(v) for v in raw)
    return is_expression(raw)


def _figures(expect) -> list:
    """(what, container, key) for each figure of the block, in the order written."""
    found = []
    for key in ("params", "macs", "output"):
        if key in expect:
            found.append((key, expect, key))
    for group in ("outputs", "shapes"):
        for name in expect.get(group) or {}:
            found.append((group, expect[group], name))
    return found


def check_expectations(spec: Spec, inferred: InferredGraph) -> ExpectReport:
    expect = spec.document.get("expect")
    if not expect:
        return ExpectReport(0, 0)
    env = {**spec.args, "input": list(spec.input_shape)}
    outputs = {o.name: o for o in inferred.graph.outputs}
    declared = spec.document.get("outputs") or {}
    problems, checked, skipped = [], 0, 0

    def compare(what, wanted, actual, pos, fmt=str):
        if wanted != actual:
            problems.append(Diagnostic("E0701" if what in ("params", "macs") else "E0702",
                                       f"expected {what} {fmt(wanted)}, the spec gives {fmt(actual)}",
                                       pos, _hint(spec, pos)))

    count = lambda v: f"{v:,}" if isinstance(v, int) else repr(v)
    for group, container, key in _figures(expect):
        raw, pos = container[key], position_of(container, key)
        if spec.is_variant and not written_as_expression(raw):
            skipped += 1
            continue
        checked += 1
        wanted = resolve_written(raw, env, pos, f"expect {key}")
        if group in ("params", "macs"):
            actual = inferred.total_params if group == "params" else inferred.macs()
            compare(group, wanted, actual, pos, count)
            continue
        _need_shape(wanted, key, pos)
        name = inferred.graph.outputs[0].name if group == "output" else str(key)
        if group == "shapes":
            node = _find(inferred, name)
            if node is None:
                problems.append(Diagnostic("E0305", f"expect shapes: no node `{name}`", pos))
                continue
            compare(f"shape of `{name}`", wanted, list(inferred.shape(node)), pos)
        elif name in outputs:
            compare(f"output `{name}` shape", wanted, list(inferred.shape(outputs[name].node)), pos)
        elif name not in declared:
            problems.append(Diagnostic("E0314", f"expect outputs: no output `{name}`", pos))
        # else: an output switched off by its `when:` for these arguments
    if problems:
        raise SpecError(problems)
    return ExpectReport(checked, skipped)


def _need_shape(value, key, pos) -> None:
    if not (isinstance(value, list) and all(isinstance(d, int) and not isinstance(d, bool) for d in value)):
        raise error("E0201", f"expect {key}: a shape is a list of whole numbers, got {value!r}", pos)


def _hint(spec: Spec, pos) -> str | None:
    if pos is not None and spec.parents and pos.file != spec.path:
        return (f"this figure is inherited from {pos.file}, where it describes that spec; give "
                f"{spec.path} an `expect:` of its own, or `expect: {{}}` to check nothing")
    if spec.is_variant:
        return ("this figure is written as an expression, so it must hold for every variant; "
                "write it as a literal if it describes only the spec as written")
    return None


def _find(inferred: InferredGraph, name: str):
    """A node by qualified name, or the output node of a block, seq or repeat."""
    nodes = inferred.graph.nodes
    if name in nodes:
        return name
    return inferred.graph.aliases.get(name)
