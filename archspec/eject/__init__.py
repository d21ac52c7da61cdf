"""`archspec eject`: a spec as readable PyTorch source that imports torch only.

One class per block (per structure of a block, when its instances differ in more
than values), with constructor arguments named after the block's own, named
children exactly as archspec names them (so state-dict keys are archspec's), an
explicit `forward` carrying the spec's `doc:` strings as comments, and a module-level
`build()` taking the file-level args that only change sizes.

Which args those are is found out, not guessed: the spec is compiled again with
each numeric or boolean file-level arg changed (two other values each), and an arg
is exposed only if the network keeps its structure and every value it moves is
written, in every class, as an expression that gives each variant's value exactly.
"""
from __future__ import annotations

import keyword
from dataclasses import dataclass
from os import PathLike

from ..diagnostics import SpecError, display_path, error
from ..spec import Spec
from .classes import RESERVED_NAMES, ClassDef, Unexpressible, form_classes, resolve
from .init_source import init_rows, init_text, uses_math
from .instances import describe, interfaces
from .scopes import compile_recording, scope_tree, walk
from .writer import Writer, _docstring, wrap

__all__ = ["Ejected", "eject", "write_ejected"]


@dataclass(frozen=True)
class Ejected:
    """The source of an ejected spec and what it exposes."""

    source: str
    name: str                # the spec's name
    network: str             # the class `build()` returns
    exposed: dict            # file-level arg -> default, taken by build()
    baked: dict              # file-level arg -> value written into the classes
    classes: tuple           # class names, children before parents


def eject(path_or_spec: str | PathLike | Spec, *, input_shape=None, scale: str | None = None,
          **overrides) -> Ejected:
    """Readable PyTorch source for a spec (after `scale` and `overrides`)."""
    from ..api import _collector_paused, compile_spec, load

    spec = path_or_spec if isinstance(path_or_spec, Spec) else load(path_or_spec, input_shape=input_shape,
                                                                     scale=scale, **overrides)
    if isinstance(path_or_spec, Spec) and (overrides or input_shape is not None or scale is not None):
        spec = spec.with_overrides(input_shape=input_shape, scale=scale, **overrides)
    compile_spec(spec, check=False)  # the spec's own mistakes, reported as always
    # Expansion makes many objects that live as long as the compilation and form no
    # cycles; the cyclic collector's passes over them would cost more than the work.
    with _collector_paused():
        base = compile_recording(spec)
        init = init_rows(base)
        variants = {}
        for arg, values in _other_values(spec).items():
            try:
                compiled = [compile_recording(spec.with_overrides(**{arg: v})) for v in values]
                # Else it changes the structure, or how init: starts some tensor.
                if all(_same_graph(base, c) and init_rows(c) == init for c in compiled):
                    variants[arg] = compiled
            except SpecError:  # the spec does not take these values: the arg stays as it is
                continue
        exposed = list(variants)
        facts: dict = {}
        while True:
            comps = [base] + [c for arg in exposed for c in variants[arg]]
            owner = [None] + [arg for arg in exposed for _ in variants[arg]]
            try:
                classes = _classes(comps, tuple(exposed), facts)
                break
            except Unexpressible as exc:
                exposed = [arg for arg in exposed if arg not in {owner[k] for k in exc.compilations}]
        return _written(spec, classes, exposed, facts["renderer"].helpers, init)


def _same_graph(a, b) -> bool:
    """The same nodes, ops and wiring: what a variant must keep to share the classes."""
    na, nb = a.graph.nodes, b.graph.nodes
    return list(na) == list(nb) and all(na[n].op == nb[n].op and na[n].inputs == nb[n].inputs for n in na) \
        and a.graph.outputs == b.graph.outputs


def write_ejected(ejected: Ejected, path: str | PathLike) -> None:
    """Write the source through a temporary file, so a failure leaves `path` as it was."""
    from ..atomic import atomic_output

    try:
        with atomic_output(path, "w") as f:
            f.write(ejected.source)
    except OSError as exc:
        raise error("E0605", f"cannot write {path}: {exc.strerror or exc}") from None


def _other_values(spec: Spec) -> dict:
    """Two other values for each numeric or boolean file-level arg."""
    out = {}
    for arg, value in spec.args.items():
        if keyword.iskeyword(arg) or arg in RESERVED_NAMES:  # could not be an argument of build()
            continue
        if isinstance(value, bool):
            out[arg] = [not value]
        elif isinstance(value, int):
            out[arg] = [value + 1, 2 * value + 3] if value >= 0 else [value - 1, 2 * value - 3]
        elif isinstance(value, float):
            out[arg] = [value / 2, (value + 1) / 2]
    return out


def _classes(comps: list, exposed: tuple, facts: dict) -> list:
    """The classes of all compilations together; `facts` caches per-compilation work."""
    instances_of, facts_of, roots = {}, {}, []
    for comp in comps:
        root = scope_tree(comp)
        roots.append(root)
        facts_of[comp] = interfaces(comp, root, facts, exposed, instances_of, [])
    by_definition: dict = {}
    children: dict = {}
    for root in roots:
        for scope in walk(root):
            by_definition.setdefault(scope.definition, []).append(instances_of[scope])
            children.setdefault(scope.definition, [])
            for child in scope.children:
                if not isinstance(child, str) and child.definition not in children[scope.definition]:
                    children[scope.definition].append(child.definition)

    classes, taken = [], set(facts["renderer"].helpers)
    for definition in _children_first(children, ("root",)):
        instances = by_definition[definition]
        for instance in instances:
            describe(instance, facts_of, instances_of)
        groups = form_classes([i for i in instances if not i.sequential])
        is_root = definition == ("root",)
        if is_root and len(groups) > 1:  # a variant changed the structure
            raise Unexpressible({k for k, inst in enumerate(instances) if inst not in groups[0].instances})
        for i, group in enumerate(groups):
            group.name = _class_name(group, i, taken, comps[0].spec.name)
            resolve(group, root=is_root)
            classes.append(group)
    return classes


def _children_first(children: dict, start) -> list:
    order, seen = [], set()

    def visit(definition):
        if definition in seen:
            return
        seen.add(definition)
        for child in children.get(definition, ()):
            visit(child)
        order.append(definition)

    visit(start)
    return order


def _camel(text: str) -> str:
    parts = [p for p in "".join(c if c.isalnum() else " " for c in text).split() if p]
    name = "".join(p[0].upper() + p[1:] for p in parts) or "Block"
    return "Block" + name if name[0].isdigit() else name


def _class_name(group: ClassDef, index: int, taken: set, spec_name: str) -> str:
    kind = group.definition[0]
    if kind == "root":
        base = _camel(spec_name)
    elif kind == "block":
        base = _camel(group.definition[1])
    else:  # a seq or repeat is named after the block it is written in: BasicConvLayer
        base = _camel(group.definition[3] or "") * bool(group.definition[3]) + _camel(group.definition[2])
    name = base if index == 0 else f"{base}_{index + 1}"
    if kind == "root" and name in taken:
        name = base + "Net"
    i = 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


# -- the text ---------------------------------------------------------------------

def _written(spec: Spec, classes: list, exposed: list, helpers: dict, init: tuple) -> Ejected:
    writer = Writer(helpers)
    root = classes[-1]
    bodies = [writer.class_text(cls, _class_doc(cls, spec)) for cls in classes]
    exposed_defaults = {p.name: p.default for p in root.params}
    # Args that survived every check but that no value follows change nothing here.
    unused = [k for k in exposed if k not in exposed_defaults]
    baked = {k: v for k, v in spec.args.items() if k not in exposed_defaults and k not in unused}
    from .classes import literal

    params = ", ".join(f"{k}={literal(_default(v))}" for k, v in exposed_defaults.items())
    call = ", ".join(f"{k}={k}" for k in exposed_defaults)
    build = [f"def build({params}):",
             _docstring(f"The {spec.name} network" + (", with the spec's args as defaults." if exposed_defaults
                                                      else "."), "    "),
             f"    return {root.name}({call})"]
    if init:
        build[1] = _docstring(f"The {spec.name} network" + (", with the spec's args as defaults" if exposed_defaults
                                                            else "") + "; init_weights starts it.", "    ")
        build[2:] = [f"    net = {root.name}({call})", "    init_weights(net)", "    return net"]
    imports = ["import math"] if uses_math(init) else []
    imports += ["import torch"] if "torch" in writer.uses or init else []
    if "F" in writer.uses:
        imports.append("import torch.nn.functional as F")
    imports.append("from torch import nn")
    parts = [source.rstrip() for source in writer.helpers.values()]
    parts += bodies + ([init_text(init, spec.name)] if init else []) + ["\n".join(build)]
    source = (_module_doc(spec, classes, exposed_defaults, baked, unused, init) + "\n\n" + "\n".join(imports) + "\n\n\n"
              + "\n\n\n".join(parts) + "\n")
    return Ejected(source, spec.name, root.name, exposed_defaults,
                   {k: _plain(v) for k, v in baked.items()}, tuple(c.name for c in classes))


def _default(value):
    """A default argument value: lists as tuples (a list default is shared between calls)."""
    return tuple(_default(v) for v in value) if isinstance(value, (list, tuple)) else value


def _plain(value):
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def _module_doc(spec: Spec, classes: list, exposed: dict, baked: dict, unused: list, init: tuple) -> str:
    root = classes[-1]
    from .classes import literal

    text = []
    if spec.document.get("description"):
        text.append(wrap(f"{spec.name}: {spec.document['description']}"))
    else:
        text.append(f"{spec.name}.")
    variant = ", ".join(f"{k}={literal(_plain(spec.args[k]))}" for k in spec.overrides)
    if spec.scale:
        variant = f"scale {spec.scale}" + (f", {variant}" if variant else "")
    text.append(wrap(
        f"Written by `archspec eject` from {display_path(spec.path)}" + (f" ({variant})" if variant else "") +
        ". Plain PyTorch: this file imports torch only" + (" (and Python's math)" if uses_math(init) else "") +
        ". Module names are archspec's, so the state dict's "
        "keys and shapes are those of archspec.build() for the same spec, in the same order, and a "
        "checkpoint of either loads into the other."))
    signature = ", ".join(f"{k}={literal(_plain(v))}" for k, v in exposed.items())
    lines = f"build({signature}) returns the network ({root.name})."
    if exposed:
        lines += (" Its arguments are the spec's file-level args that only change sizes and settings; "
                  "the classes take them as constructor arguments.")
    if baked:
        lines += (" These args change the structure (or values in ways no constructor argument "
                  "follows, or how `init:` starts a tensor) and are written into the classes as ejected: " +
                  ", ".join(f"{k}={literal(_plain(v))}" for k, v in baked.items()) +
                  "; eject again with --set to change them.")
    if unused:
        lines += (" " + ", ".join(f"{k}={literal(_plain(spec.args[k]))}" for k in unused) +
                  f" change{'s' if len(unused) == 1 else ''} nothing in this network.")
    text.append(wrap(lines))
    zeros = any(entry[0] == "param" and entry[3] == "zeros" for cls in classes for entry in cls.first.init)
    started = ("build() starts the weights as the spec's `init:` says (init_weights, below): with the same "
               "torch.manual_seed, they are the numbers archspec.build gives. The classes alone start as "
               "torch's modules initialise them") if init else "Weights start as torch's modules initialise them"
    text.append(wrap(started +
                     (" (bare parameters whose op starts them at more than one value start at zeros)"
                      if zeros else "") +
                     "; load a state dict to use trained ones. In eval mode the network returns what "
                     "archspec's does; dropout and training-only outputs apply in training mode."))
    return _docstring("\n\n".join(text), "")


def _class_doc(cls: ClassDef, spec: Spec) -> str:
    first = cls.first
    scope = first.scope
    comp = first.comp
    names = [i.scope.name for i in cls.instances if i.comp is comp]
    if scope.kind == "root":
        graph = comp.graph
        def listed(outputs):
            return ", ".join(f"{o.name} {list(comp.shape(o.node))}" for o in outputs)

        lines = [f"The network `{spec.name}`: input {list(spec.input_shape)} per sample; in eval mode it returns "
                 f"{listed(graph.active_outputs(False))}."]
        if any(o.train_only for o in graph.outputs):
            lines.append(f"In training mode it returns {listed(graph.active_outputs(True))}.")
        return wrap(" ".join(lines), 84)
    from .scopes import doc_at

    if scope.kind == "block":
        head = f"Block `{scope.label}`"
        definition = (spec.document.get("blocks") or {}).get(scope.label) or {}
        doc = definition.get("doc") if isinstance(definition.get("doc"), str) else None
    else:
        owner = scope.definition[3]
        head = f"The {scope.kind} `{scope.local}`" + (f" of block `{owner}`" if owner else "")
        doc = doc_at(comp, scope.pos)
    lines = [f"{head}, as {_names(names)} use{'s' if len(names) == 1 else ''} it."]
    if doc:
        lines.append(doc)
    some = {rel: flag for rel, flag in cls.flags.items()}
    for rel, flag in some.items():
        lines.append(f"`{rel}` is built only where `{flag}` is true; elsewhere its input passes through.")
    return "\n\n".join(wrap(line, 84) for line in lines)


def _names(names: list) -> str:
    """`layer1.0 .. layer1.2, layer2.0`: consecutive copies as ranges."""
    runs = []
    for name in names:
        parent, _, last = name.rpartition(".")
        if runs and last.isdigit() and runs[-1][0] == parent and runs[-1][2] == int(last) - 1:
            runs[-1][2] = int(last)
            runs[-1][3] = name
            continue
        runs.append([parent, name, int(last) if last.isdigit() else None, name])
    shown = [r[1] if r[1] == r[3] else f"{r[1]} .. {r[3]}" for r in runs]
    if len(shown) > 6:
        shown = shown[:5] + [f"... ({len(names)} in all)"]
    return ", ".join(shown)
