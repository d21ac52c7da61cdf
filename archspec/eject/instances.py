"""Each namespace of a compilation described as a class would write it, with the
values that differ between instances kept apart from the text that does not.

A description is structural: what a class's `__init__` registers (in state-dict
order) and what its `forward` computes, with every literal value replaced by a slot
id. Two instances with equal descriptions are one class whose constructor takes the
slots that differ. Nodes that hold a module in some instances and pass their input
through in others (a residual's projection, present only where the shape changes)
are described as optional, so such instances still share one class.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from ..diagnostics import SpecError, error
from ..graph import INPUT
from ..ops import REGISTRY
from .scopes import Compilation, Scope, doc_at, fed_inputs
from .source import Arg, BareParameter, Ctor, Renderer

IN_NAMES = ("in_channels", "in_features")


@dataclass(eq=False)
class Instance:
    """One namespace of one compilation, described."""

    scope: Scope
    comp: Compilation
    inputs: list                 # qualified names of what it is fed, in order
    outputs: list                # qualified names of its values read outside it
    context: dict                # name -> value: what constructor values may be named after
    declared: tuple              # the block's own argument names, in order
    sequential: bool = False     # written as nn.Sequential(...) in its parent, not a class
    init: tuple = ()             # structure of __init__ (see `_describe`)
    forward: tuple = ()          # structure of forward
    values: dict = field(default_factory=dict)    # slot id -> Arg
    optional: dict = field(default_factory=dict)  # rel name -> (structure, values) or None (passes through)
    element: tuple = ()          # for a sequential one: its construction structure
    key: tuple = ()              # what instances of one class share
    cls: object = None           # the ClassDef it became
    params: dict = field(default_factory=dict)    # constructor argument -> value, once resolved


def interfaces(comp: Compilation, root: Scope, cache: dict, exposed: tuple,
               instances_of: dict, order: list) -> "_Facts":
    """An Instance per namespace of `comp` (what it reads and what it gives), innermost
    first, appended to `order`; its facts (kept in `cache`) returned for `describe`."""
    if "renderer" not in cache:
        cache["renderer"] = Renderer()
    facts = cache.get(comp)
    if facts is None:
        facts = cache[comp] = _Facts(comp, cache["renderer"])
    _visit(root, facts, exposed, instances_of, order)
    return facts


def _visit(scope, facts, exposed, instances_of, order):
    for child in scope.children:
        if isinstance(child, Scope):
            _visit(child, facts, exposed, instances_of, order)
    instance = _interface(scope, facts, exposed)
    instances_of[scope] = instance
    order.append(instance)


class _Facts:
    """What every description of one compilation needs: who reads what, what each
    node is in source, which nodes eval mode computes."""

    def __init__(self, comp: Compilation, renderer: Renderer):
        self.comp, self.renderer = comp, renderer
        graph = comp.graph
        self.index = {name: i for i, name in enumerate(graph.written or graph.nodes)}  # as the builder registers
        self.in_eval = set(graph.needed_for(False))
        self.readers = {INPUT: []}
        self.fed = {}
        for name, node in graph.nodes.items():
            self.readers.setdefault(name, [])
            self.fed[name] = fed_inputs(node, REGISTRY[node.op])
        for name in graph.nodes:
            for src in self.fed[name]:
                self.readers[src].append(name)
        for out in graph.outputs:
            self.readers[out.node].append(f"output:{out.name}")
        self.made = {name: self._made(name) for name in graph.nodes}

    def _made(self, name):
        """('module', Ctor) | ('param', nn.Parameter) | ('function', eval call, train call) | ('pass',)"""
        node = self.comp.graph.nodes[name]
        op = REGISTRY[node.op]
        shapes = [self.comp.shape(src) for src in node.inputs]
        try:
            made = self.renderer.module(op, node.args, shapes, name)
            if isinstance(made, Ctor):
                return ("module", made)
            plans = [op.function(node.args, shapes, training, False) for training in (False, True)]
            calls = [None if plan is None else self.renderer.function(plan[0], plan[1], op.takes_list, op.name, name)
                     for plan in plans]
        except SpecError as exc:  # say where the node was written
            d = exc.diagnostics[0]
            raise error(d.code, d.message, node.pos, d.hint) from None
        if isinstance(made, BareParameter):
            return ("param", made, calls[0], calls[1])
        if calls == [None, None]:
            return ("pass",)
        return ("function", calls[0], calls[1])

    def holds_weights(self, name) -> bool:
        return self.made[name][0] in ("module", "param")


def _interface(scope: Scope, facts: _Facts, exposed: tuple) -> Instance:
    comp = facts.comp
    inside = set(scope.nodes)
    if scope.kind == "root":
        inputs = [INPUT]
        outputs = []
        for out in comp.graph.outputs:
            if out.node not in outputs:
                outputs.append(out.node)
    else:
        inputs, outputs = [], []
        for name in scope.nodes:
            for src in facts.fed[name]:
                if src not in inside and src not in inputs:
                    inputs.append(src)
            if any(r not in inside for r in facts.readers[name]):
                outputs.append(name)
    context, declared = _context(scope, comp, inputs, exposed)
    instance = Instance(scope, comp, inputs, outputs, context, declared)
    return instance


def _context(scope, comp, inputs, exposed) -> tuple:
    """The names a constructor value may be written as, with this instance's values:
    the block's arguments first, then the input's channels, then other names in scope."""
    if scope.kind == "root":
        return {k: comp.spec.args[k] for k in exposed}, tuple(exposed)
    declared = ()
    if scope.kind == "block":
        definition = (comp.spec.document.get("blocks") or {}).get(scope.label) or {}
        declared = tuple(definition.get("args") or ())
    context = {k: scope.env[k] for k in declared if k in scope.env}
    if inputs:
        shape = comp.shape(inputs[0])
        if shape:
            context[IN_NAMES[0] if len(shape) > 1 else IN_NAMES[1]] = shape[0]
    for k, v in scope.env.items():
        context.setdefault(k, v)
    return context, declared


# -- describing one instance --------------------------------------------------------

def describe(instance: Instance, facts_of: dict, instances_of: dict) -> None:
    """Fill in the structure and slot values of `instance`; its children are done."""
    scope, comp = instance.scope, instance.comp
    facts = facts_of[comp]
    units = _units(scope)
    unit_of = {}
    for rel, unit in units.items():
        for name in (unit.nodes if isinstance(unit, Scope) else [unit]):
            unit_of[name] = rel
    inputs = {name: f"@{i}" for i, name in enumerate(instance.inputs)}

    def ref(name):
        """How this namespace refers to a value: an input, or a name relative to it."""
        return inputs[name] if name in inputs else scope.rel(name)

    order = _unit_order(scope, units, unit_of, facts, inputs)
    init, forward, values, optional = [], [], {}, {}
    registered = []  # (index of the first node holding weights, entry)
    for rel in order:
        unit = units[rel]
        train_only = scope.kind == "root" and not _in_eval(unit, facts)
        if isinstance(unit, Scope):
            child = instances_of[unit]
            doc = doc_at(comp, unit.pos)
            if doc:
                forward.append(("comment", doc, train_only))
            ins = tuple(ref(n) for n in child.inputs)
            outs = tuple(scope.rel(n) for n in child.outputs)
            forward.append(("call", rel, train_only, _hint(unit.label), ins, outs))
            structure, slot_values = _construction(child, rel)
            values.update(slot_values)
            registered.append((_first_weight(unit.nodes, facts), ("set", rel, structure)))
            continue
        name = unit
        node = comp.graph.nodes[name]
        doc = doc_at(comp, node.pos)
        if doc:
            forward.append(("comment", doc, train_only))
        made = facts.made[name]
        fed = tuple(ref(n) for n in facts.fed[name])
        if made[0] in ("module", "pass"):
            forward.append(("opt", rel, train_only, node.op, fed))
            registered.append((facts.index[name], ("opt", rel)))
            if made[0] == "module":
                optional[rel] = _module_structure(made[1], node.frozen, f"{rel}/")
            else:
                optional[rel] = None
        elif made[0] == "param":
            bare = made[1]
            values[f"{rel}/shape"] = Arg("shape", False, bare.shape)
            if bare.fill is not None:
                values[f"{rel}/fill"] = Arg("fill", False, bare.fill)
            start = "fill" if bare.fill is not None else bare.draw or "zeros"
            registered.append((facts.index[name], ("param", rel, bare.requires_grad and not node.frozen, start)))
            forward.append(("fn", rel, train_only, node.op, fed, _call_structure(made[2], made[3], rel, values), rel))
        else:
            forward.append(("fn", rel, train_only, node.op, fed, _call_structure(made[1], made[2], rel, values), None))
    registered.sort(key=lambda item: item[0])
    init = [entry for _, entry in registered]
    if scope.kind == "root":
        graph = comp.graph
        forward.append(("return_root", tuple(ref(o.node) for o in graph.active_outputs(False)),
                        tuple(ref(o.node) for o in graph.active_outputs(True))))
    else:
        forward.append(("return", tuple(ref(n) for n in instance.outputs)))
    instance.init, instance.forward = tuple(init), tuple(forward)
    instance.values, instance.optional = values, optional
    instance.sequential = _sequential(instance, units, order, facts)
    if instance.sequential:
        elements, element_values = [], {}
        for i, rel in enumerate(order):
            unit = units[rel]
            if isinstance(unit, Scope):
                structure, slot_values = _construction(instances_of[unit], str(i))
            else:
                made = facts.made[unit]
                structure, slot_values = _module_structure(made[1], comp.graph.nodes[unit].frozen, f"{i}/")
            elements.append(structure)
            element_values.update(slot_values)
        instance.element = ("sequential", tuple(elements))
        instance.values = element_values
    instance.key = (instance.scope.definition, instance.init, instance.forward, len(instance.inputs))


def _hint(label: str) -> str:
    """A word for a namespace's variable when its name is a number: `bottleneck_0`."""
    return "repeat" if label.startswith("repeat x") else label


def _units(scope: Scope) -> dict:
    """rel name -> a node name or a child Scope."""
    units = {}
    for child in scope.children:
        if isinstance(child, Scope):
            units[scope.rel(child.name)] = child
        else:
            units[scope.rel(child)] = child
    return units


def _first_weight(names, facts) -> float:
    found = [facts.index[n] for n in names if facts.holds_weights(n)]
    return min(found) if found else facts.index[names[0]]


def _in_eval(unit, facts) -> bool:
    names = unit.nodes if isinstance(unit, Scope) else [unit]
    return any(n in facts.in_eval for n in names)


def _unit_order(scope, units, unit_of, facts, inputs) -> list:
    """Units in an order where each follows what it reads, as written where possible."""
    first = {rel: facts.index[u.nodes[0] if isinstance(u, Scope) else u] for rel, u in units.items()}
    deps = {rel: set() for rel in units}
    for rel, unit in units.items():
        for name in (unit.nodes if isinstance(unit, Scope) else [unit]):
            for src in facts.fed[name]:
                owner = unit_of.get(src)
                if owner is not None and owner != rel:
                    deps[rel].add(owner)
    waiting = {rel: len(d) for rel, d in deps.items()}
    users = {rel: [] for rel in units}
    for rel, d in deps.items():
        for dep in d:
            users[dep].append(rel)
    ready = [(first[rel], rel) for rel, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, rel = heapq.heappop(ready)
        order.append(rel)
        for user in users[rel]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (first[user], user))
    if len(order) < len(units):
        stuck = sorted((rel for rel in units if rel not in order), key=first.get)
        where = scope.name or "the network"
        raise error("E0616", f"cannot eject `{where}` as classes: its parts "
                    f"{', '.join(f'`{scope.rel(units[r].name) if isinstance(units[r], Scope) else r}`' for r in stuck)} "
                    "read each other's values in a circle across namespaces", scope.pos,
                    "a node outside a block reads a node inside it and the block reads that node back; "
                    "move the node into the block, or read the block's output instead")
    return order


def _construction(child: Instance, rel: str) -> tuple:
    """What the parent writes to build `child`: its class with its constructor values,
    or the nn.Sequential it is; with the slot values, keyed under `rel/`."""
    if child.sequential:
        values = {f"{rel}/{sid}": arg for sid, arg in child.values.items()}
        return _prefixed(child.element, f"{rel}/"), values
    cls = child.cls
    args, values = [], {}
    for param in cls.params:
        sid = f"{rel}/{param.name}"
        keyword = param.name not in IN_NAMES
        args.append((param.name, keyword, param.default, sid))
        values[sid] = Arg(param.name, keyword, child.params[param.name], None, param.default)
    return ("new", cls.name, tuple(args)), values


def _prefixed(structure, prefix: str):
    """A construction structure with its slot ids moved under `prefix`."""
    kind = structure[0]
    if kind == "sequential":
        return ("sequential", tuple(_prefixed(s, prefix) for s in structure[1]))
    if kind == "new":
        return ("new", structure[1], tuple((n, k, d, prefix + sid) for n, k, d, sid in structure[2]))
    if kind == "module":
        cls, args, children, frozen = structure[1:]
        return ("module", cls, tuple((n, k, d, prefix + sid) for n, k, d, sid in args),
                tuple(_prefixed(c, prefix) for c in children), frozen)
    raise AssertionError(kind)


def _module_structure(ctor: Ctor, frozen: bool, prefix: str) -> tuple:
    """(structure, slot values) of a module constructor call."""
    values = {}

    def walk(c: Ctor, path: str):
        args = []
        for a in c.args:
            sid = f"{path}{a.label}"
            values[sid] = a
            args.append((a.label, a.keyword, a.default, sid))
        children = tuple(walk(child, f"{path}{i}/") for i, child in enumerate(c.children))
        return ("module", c.cls, tuple(args), children, False)

    structure = walk(ctor, prefix)
    if frozen:
        structure = structure[:4] + (True,)
    return structure, values


def _call_structure(eval_call, train_call, rel: str, values: dict) -> tuple:
    """A stateless node's call in both modes, its keyword values into `values`."""
    def call(c, tag, drop=()):
        args = []
        for a in c.args:
            if a.label in drop:
                continue
            sid = f"{rel}/{tag}/{a.label}"
            values[sid] = a
            args.append((a.label, True, a.default, sid))
        return (c.text, c.infix, c.takes_list, tuple(args), c.helper, c.uses)

    if eval_call == train_call:
        return ("same", call(eval_call, "fn"))
    if eval_call is None and any(a.label == "training" and a.value is True for a in train_call.args):
        return ("training_flag", call(train_call, "fn", drop=("training",)))
    if eval_call is None:
        return ("train_else_pass", call(train_call, "fn"))
    if train_call is None:
        return ("eval_else_pass", call(eval_call, "fn"))
    return ("both", call(train_call, "fn"), call(eval_call, "fn_eval"))


def _sequential(instance: Instance, units: dict, order: list, facts) -> bool:
    """A seq or repeat whose parts each hold weights, are named 0 .. N-1 and feed one
    another in a chain is an nn.Sequential in its parent (as torchvision writes
    stages), not a class of its own."""
    scope = instance.scope
    if scope.kind not in ("seq", "repeat") or len(instance.inputs) != 1 or len(instance.outputs) != 1:
        return False
    if order != [str(i) for i in range(len(order))]:
        return False
    inside = set(scope.nodes)
    previous = instance.inputs[0]
    for i, rel in enumerate(order):
        unit = units[rel]
        if isinstance(unit, Scope):
            ins, outs = _scope_io(unit, facts)
        else:
            if facts.made[unit][0] != "module":
                return False
            ins, outs = list(facts.fed[unit]), [unit]
        if ins != [previous] or len(outs) != 1:
            return False
        # Only the next part reads a part's output; only what is outside reads the last one's.
        following = units[order[i + 1]] if i + 1 < len(order) else None
        allowed = None if following is None else \
            set(following.nodes) if isinstance(following, Scope) else {following}
        for reader in facts.readers[outs[0]]:
            if (reader in inside) if allowed is None else (reader not in allowed):
                return False
        previous = outs[0]
    return previous == instance.outputs[0]


def _scope_io(scope: Scope, facts) -> tuple:
    inside = set(scope.nodes)
    ins, outs = [], []
    for name in scope.nodes:
        for src in facts.fed[name]:
            if src not in inside and src not in ins:
                ins.append(src)
        if any(r not in inside for r in facts.readers[name]):
            outs.append(name)
    return ins, outs
