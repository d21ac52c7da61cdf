"""Comparing two specs node by node, keyed by qualified names, without building weights.

What changed is told at the level a person thinks in: a block or a run of repeat
copies added or removed (`layer3.6 .. layer3.22 added (17 bottleneck)`), node
arguments changed, and shape, parameter and MAC deltas per block. Whether a
checkpoint of the first spec loads into the second is read from both networks
built on the meta device, which allocates nothing: their state-dict keys and shapes
are exactly those a real build has.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from .diagnostics import display_path, error
from .summary import summarize_graph

_NUMBER = re.compile(r"^\d+$")


@dataclass(frozen=True)
class Side:
    """One of the two specs as compiled: where it came from and its totals."""

    path: str
    name: str
    args: dict
    input_shape: tuple
    scale: str | None
    nodes: int
    params: int
    macs: int         # eval mode, per sample
    state_dict: int   # tensors in its state dict


@dataclass(frozen=True)
class Run:
    """Consecutive sibling namespaces (or nodes) added or removed together:
    `layer3.6 .. layer3.22` (17 copies of block `bottleneck`)."""

    first: str
    last: str
    count: int
    kind: str         # block name, `seq`, `repeat xN`, or the op of a single node
    nodes: int        # graph nodes inside them, together
    keys: int         # state-dict tensors inside them, together

    def render(self) -> str:
        names = self.first if self.count == 1 else f"{self.first} .. {self.last}"
        what = self.kind if self.count == 1 else f"{self.count} {self.kind}"
        return f"{names} ({what})"


@dataclass(frozen=True)
class Replaced:
    """Consecutive sibling namespaces that another block (or a seq) makes in B:
    `layer1.0 .. layer1.1: bottleneck -> basic`. Their nodes are not itemised."""

    first: str
    last: str
    count: int
    kind_a: str
    kind_b: str
    nodes_a: int
    nodes_b: int
    names: tuple = ()   # the namespaces, first to last

    def render(self) -> str:
        names = self.first if self.count == 1 else f"{self.first} .. {self.last}"
        nodes = f"{self.nodes_a} -> {self.nodes_b} nodes" + (" in all" if self.count > 1 else "")
        return f"{names}: {self.kind_a} -> {self.kind_b} ({nodes})"


@dataclass(frozen=True)
class NodeChange:
    name: str
    op: tuple | None = None        # (a, b) when the op differs
    args: dict = field(default_factory=dict)   # arg -> (a, b); absent on one side: None
    inputs: tuple | None = None    # (a, b) when the node reads other nodes
    frozen: tuple | None = None    # (a, b) when it trains on one side only
    shape: tuple | None = None     # (a, b) per-sample output shapes when they differ

    def describe(self) -> str:
        parts = []
        if self.op:
            parts.append(f"op {self.op[0]} -> {self.op[1]}")
        parts += [f"{key} {_value(a)} -> {_value(b)}" for key, (a, b) in self.args.items()]
        if self.inputs:
            parts.append(f"reads {', '.join(self.inputs[0])} -> {', '.join(self.inputs[1])}")
        if self.frozen:
            parts.append("frozen" if self.frozen[1] else "no longer frozen")
        return ", ".join(parts)


@dataclass(frozen=True)
class BlockRow:
    """One row of the per-block table: a block, repeat, seq or top-level node."""

    name: str
    kind: tuple     # (a, b); None where the row is absent on that side
    shape: tuple    # (a, b) per-sample output shapes
    params: tuple   # (a, b)
    macs: tuple     # (a, b), eval mode per sample


@dataclass(frozen=True)
class Checkpoint:
    """What `b.load_state_dict(state_dict_of_a)` finds, from both state-dict layouts."""

    missing: tuple      # keys B expects that A's checkpoint lacks
    unexpected: tuple   # keys A's checkpoint holds that B has no place for
    reshaped: tuple     # (key, shape in A, shape in B)
    matching: int       # keys present in both with the same shape

    @property
    def strict(self) -> bool:
        return not (self.missing or self.unexpected or self.reshaped)


@dataclass(frozen=True)
class SpecDiff:
    a: Side
    b: Side
    depth: int
    args: dict              # file-level arg -> (a, b), where they differ (None: not declared)
    added: tuple            # Run, in B's order
    removed: tuple          # Run, in A's order
    relabelled: tuple       # (namespace, kind in A, kind in B): `layer3` repeat x6 -> repeat x23
    replaced: tuple         # Replaced: namespaces made by another block in B; their insides are not itemised
    changed: tuple          # NodeChange
    blocks: tuple           # BlockRow, only those that differ
    unchanged_blocks: int
    checkpoint: Checkpoint
    # The unit (Run or Replaced) each key under one belongs to, and the node names
    # owning keys, for grouping the key lists.
    _key_units: dict = field(default_factory=dict, repr=False, compare=False)
    _key_owners: frozenset = field(default_factory=frozenset, repr=False, compare=False)

    @property
    def differ(self) -> bool:
        """Anything differs that a network or its checkpoint would show."""
        return bool(self.added or self.removed or self.relabelled or self.replaced or self.changed or self.blocks
                    or not self.checkpoint.strict or self.a.input_shape != self.b.input_shape)

    def to_dict(self) -> dict:
        data = {
            "a": _side_dict(self.a), "b": _side_dict(self.b), "depth": self.depth, "differ": self.differ,
            "args": {k: {"a": a, "b": b} for k, (a, b) in self.args.items()},
            "added": [asdict(r) for r in self.added],
            "removed": [asdict(r) for r in self.removed],
            "relabelled": [{"name": n, "a": a, "b": b} for n, a, b in self.relabelled],
            "replaced": [asdict(r) for r in self.replaced],
            "changed": [_change_dict(c) for c in self.changed],
            "blocks": [{"name": r.name, "kind": _pair(r.kind), "shape": _pair(r.shape, list),
                        "params": _pair(r.params), "params_delta": _delta(r.params),
                        "macs": _pair(r.macs), "macs_delta": _delta(r.macs)} for r in self.blocks],
            "unchanged_blocks": self.unchanged_blocks,
            "total": {"params": {"a": self.a.params, "b": self.b.params, "delta": self.b.params - self.a.params},
                      "macs": {"a": self.a.macs, "b": self.b.macs, "delta": self.b.macs - self.a.macs}},
            "checkpoint": {
                "loads_strictly": self.checkpoint.strict,
                "missing": list(self.checkpoint.missing),
                "unexpected": list(self.checkpoint.unexpected),
                "reshaped": [{"key": k, "a": list(sa), "b": list(sb)} for k, sa, sb in self.checkpoint.reshaped],
                "loaded_without_strict": self.checkpoint.matching,
                "b_tensors": self.b.state_dict,
            },
        }
        return data

    def render(self, list_keys: bool = False, limit: int = 40) -> str:
        a, b = self.a, self.b
        out = [f"--- a: {a.path} ({_side_label(a)})", f"+++ b: {b.path} ({_side_label(b)})"]
        if self.args:
            out.append("")
            out.append("args:")
            out += [f"  {k}: {_value(va)} -> {_value(vb)}" for k, (va, vb) in self.args.items()]
        if a.input_shape != b.input_shape:
            out.append(f"input: {list(a.input_shape)} -> {list(b.input_shape)}")

        out.append("")
        out.append("structure:")
        lines = [f"  {ns}: {ka} -> {kb}" for ns, ka, kb in self.relabelled]
        lines += [f"  ~ {r.render()}" for r in self.replaced]
        lines += [f"  + {r.render()} added" for r in self.added]
        lines += [f"  - {r.render()} removed" for r in self.removed]
        out += _capped(lines or ["  same nodes and blocks"], limit)

        out.append("")
        out.append("changed nodes:")
        changes = [c for c in self.changed if c.describe()]
        lines = [f"  {name}: {text}" for name, text in _grouped((c.name, c.describe()) for c in changes)]
        reshaped_only = len(self.changed) - len(changes)
        if reshaped_only:
            lines.append(f"  ({_count(reshaped_only, 'node')} with the same arguments "
                         f"change{'s' if reshaped_only == 1 else ''} output shape only: see the table below)")
        out += _capped(lines or ["  none"], limit)

        out.append("")
        out.append(f"per block (depth {self.depth}; {self.unchanged_blocks} unchanged):")
        out += _table(self.blocks) if self.blocks else ["  no block differs in shape, params or MACs"]
        out.append("")
        out.append(f"total params: {a.params:,} -> {b.params:,} ({_signed(b.params - a.params)})")
        out.append(f"total MACs:   {a.macs:,} -> {b.macs:,} ({_signed(b.macs - a.macs)}; eval mode, per sample)")

        out.append("")
        out += self._render_checkpoint(list_keys, limit)
        return "\n".join(out)

    def _render_checkpoint(self, list_keys: bool, limit: int) -> list:
        cp, a, b = self.checkpoint, self.a.name, self.b.name
        if cp.strict:
            return [f"checkpoint: a state dict of {a} loads into {b} strictly "
                    f"(all {cp.matching:,} tensors, same keys and shapes)"]
        out = [f"checkpoint: a state dict of {a} does NOT load into {b} strictly"]
        for title, keys in (("missing (b has them, a's checkpoint lacks them)", cp.missing),
                            ("unexpected (a's checkpoint has them, b has no place for them)", cp.unexpected)):
            out.append(f"  {title}: {_count(len(keys), 'key')}")
            if list_keys:
                out += [f"    {k}" for k in keys]
            else:
                out += _capped([f"    {line}" for line in self._key_groups(keys)], limit)
        out.append(f"  reshaped: {_count(len(cp.reshaped), 'key')}")
        lines = [f"    {name}: {text}" for name, text in _grouped(
            (key, f"{list(sa)} -> {list(sb)}") for key, sa, sb in cp.reshaped)]
        out += ([f"    {k}: {list(sa)} -> {list(sb)}" for k, sa, sb in cp.reshaped] if list_keys
                else _capped(lines, limit))
        if cp.reshaped:  # PyTorch refuses a size mismatch even when not strict
            out.append(f"  load_state_dict(strict=False) still fails on the reshaped keys; without them "
                       f"it would fill {cp.matching:,} of {b}'s {self.b.state_dict:,} tensors")
        else:
            out.append(f"  load_state_dict(strict=False) would fill {cp.matching:,} of {b}'s "
                       f"{self.b.state_dict:,} tensors")
        return out

    def _key_groups(self, keys) -> list:
        """Keys under a whole added or removed unit as one line, keys under a replaced
        namespace counted per run, the others gathered per node: `fc.{weight, bias}`."""
        lines, units, owners = [], {}, {}
        nodes = set(self._key_owners)
        for key in keys:
            unit = self._key_units.get(key)
            if unit is not None:
                units[unit] = units.get(unit, 0) + 1
                if units[unit] == 1:
                    lines.append(unit)
                continue
            owner = _owner(key, nodes) or key.rpartition(".")[0]
            if owner not in owners:
                owners[owner] = []
                lines.append(("node", owner))
            owners[owner].append(key[len(owner) + 1:] if key != owner else "")
        out = []
        for line in lines:
            if isinstance(line, Run):
                out.append(f"{line.render()}: every key below {'it' if line.count == 1 else 'them'} "
                           f"({_count(units[line], 'key')})")
            elif isinstance(line, Replaced):
                out.append(f"{line.render()}: {_count(units[line], 'key')}")
            else:
                suffixes = owners[line[1]]
                out.append(line[1] if suffixes == [""] else
                           f"{line[1]}.{suffixes[0]}" if len(suffixes) == 1 else
                           f"{line[1]}.{{{', '.join(suffixes)}}}")
        return out


# -- computing a diff ---------------------------------------------------------------

def compare(a, b, *, overrides_a: dict | None = None, overrides_b: dict | None = None,
            scale_a: str | None = None, scale_b: str | None = None, input_a=None, input_b=None,
            depth: int = 1) -> SpecDiff:
    """Compare spec `a` with spec `b` (paths or loaded Specs), each with its own
    overrides, scale and input shape. Nothing with real weights is built."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise error("E0604", f"depth must be a whole number of at least 1, got {depth!r}")
    from .api import build_compiled, compile_spec

    compiled = [compile_spec(path, input_shape, check=False, scale=scale, **(overrides or {}))
                for path, input_shape, scale, overrides in ((a, input_a, scale_a, overrides_a),
                                                             (b, input_b, scale_b, overrides_b))]
    layouts = [{key: tuple(t.shape) for key, t in build_compiled(c, device="meta").state_dict().items()}
               for c in compiled]
    return diff_compiled(*compiled, *layouts, depth=depth)


def diff_compiled(ca, cb, layout_a: dict, layout_b: dict, depth: int = 1) -> SpecDiff:
    """The diff of two compiled specs whose state-dict layouts (key -> shape) are given."""
    ga, gb = ca.inferred.graph, cb.inferred.graph
    sides = [_side(c, layout) for c, layout in ((ca, layout_a), (cb, layout_b))]

    args = {}
    for key in list(ca.spec.args) + [k for k in cb.spec.args if k not in ca.spec.args]:
        va, vb = ca.spec.args.get(key), cb.spec.args.get(key)
        if _plain(va) != _plain(vb) or (key in ca.spec.args) != (key in cb.spec.args):
            args[key] = (_plain(va), _plain(vb))

    labels_a, labels_b = _labels(ga), _labels(gb)
    replaced_ns = [ns for ns in labels_b if ns in labels_a and labels_a[ns] != labels_b[ns]
                   and not (_is_repeat(labels_a[ns]) and _is_repeat(labels_b[ns]))
                   and not any(ns.startswith(outer + ".") for outer in labels_b
                               if outer in labels_a and labels_a[outer] != labels_b[outer]
                               and not (_is_repeat(labels_a[outer]) and _is_repeat(labels_b[outer])))]
    inside = _within(replaced_ns)
    relabelled = tuple((ns, labels_a[ns], labels_b[ns]) for ns in labels_b
                       if ns in labels_a and labels_a[ns] != labels_b[ns] and ns not in replaced_ns
                       and not inside(ns))
    replaced = _replaced_runs(replaced_ns, labels_a, labels_b, ga, gb)
    added, units_b = _runs(gb, ga, layout_b, inside)
    removed, units_a = _runs(ga, gb, layout_a, inside)

    outer_a, outer_b = _outermost_alias(ga), _outermost_alias(gb)
    changed = []
    for name, nb in gb.nodes.items():
        na = ga.nodes.get(name)
        if na is None or inside(name):
            continue
        arg_changes = {k: (_plain(na.args.get(k)), _plain(nb.args.get(k)))
                       for k in list(na.args) + [k for k in nb.args if k not in na.args]
                       if _plain(na.args.get(k)) != _plain(nb.args.get(k))}
        # An input renamed only because copies were added before it (the output of
        # `layer3` is `layer3.5.relu` in one, `layer3.22.relu` in the other) is the same input.
        reads_a = tuple(outer_a.get(src, src) for src in na.inputs)
        reads_b = tuple(outer_b.get(src, src) for src in nb.inputs)
        shape = (ca.inferred.shape(name), cb.inferred.shape(name))
        change = NodeChange(
            name, (na.op, nb.op) if na.op != nb.op else None, arg_changes,
            (na.inputs, nb.inputs) if reads_a != reads_b else None,
            (na.frozen, nb.frozen) if na.frozen != nb.frozen else None,
            shape if shape[0] != shape[1] else None)
        if change.describe() or change.shape:
            changed.append(change)

    rows_a = _block_rows(ca, depth)
    rows_b = _block_rows(cb, depth)
    blocks, unchanged = [], 0
    for name in list(rows_b) + [n for n in rows_a if n not in rows_b]:
        ra, rb = rows_a.get(name), rows_b.get(name)
        row = BlockRow(name, (ra and ra.op, rb and rb.op), (ra and ra.shape[1:], rb and rb.shape[1:]),
                       (ra.params if ra else 0, rb.params if rb else 0), (ra.macs if ra else 0, rb.macs if rb else 0))
        if ra and rb and row.shape[0] == row.shape[1] and row.params[0] == row.params[1] \
                and row.macs[0] == row.macs[1] and row.kind[0] == row.kind[1]:
            unchanged += 1
        else:
            blocks.append(row)

    checkpoint = Checkpoint(
        missing=tuple(k for k in layout_b if k not in layout_a),
        unexpected=tuple(k for k in layout_a if k not in layout_b),
        reshaped=tuple((k, layout_a[k], s) for k, s in layout_b.items() if k in layout_a and layout_a[k] != s),
        matching=sum(1 for k, s in layout_b.items() if layout_a.get(k) == s))
    key_units = {**_keys_of_units(layout_a, units_a), **_keys_of_units(layout_b, units_b)}
    for unit in replaced:
        for key in list(layout_a) + list(layout_b):
            if _under(key, unit.names):
                key_units[key] = unit
    return SpecDiff(sides[0], sides[1], depth, args, added, removed, relabelled, replaced, tuple(changed),
                    tuple(blocks), unchanged, checkpoint, key_units, frozenset(ga.nodes) | frozenset(gb.nodes))


def _side(compiled, layout) -> Side:
    spec, inferred = compiled.spec, compiled.inferred
    return Side(display_path(spec.path), spec.name, {k: _plain(v) for k, v in spec.args.items()},
                tuple(spec.input_shape), spec.scale, len(inferred.graph.nodes), inferred.total_params,
                inferred.macs(False), len(layout))


def _labels(graph) -> dict:
    """Namespace -> what made it (block name, `seq`, `repeat xN`), in graph order."""
    labels = {}
    for node in graph.nodes.values():
        for ns, label in node.scopes:
            labels.setdefault(ns, label)
    return labels


def _names_in(graph) -> set:
    """Every node name and every namespace that holds nodes."""
    names = set(graph.nodes)
    for node in graph.nodes.values():
        names.update(ns for ns, _ in node.scopes)
    return names


def _is_repeat(label: str) -> bool:
    return label.startswith("repeat x")


def _within(namespaces):
    """A test: is a name inside one of `namespaces`?"""
    prefixes = tuple(ns + "." for ns in namespaces)
    return lambda name: name.startswith(prefixes) if prefixes else False


def _under(key: str, names) -> bool:
    return any(key.startswith(n + ".") or key == n for n in names)


def _outermost_alias(graph) -> dict:
    """Node -> the outermost block, seq or repeat whose output it is."""
    out = {}
    for alias, node in graph.aliases.items():
        if node not in out or alias.count(".") < out[node].count("."):
            out[node] = alias
    return out


def _replaced_runs(namespaces, labels_a, labels_b, ga, gb) -> tuple:
    counts = [{ns: sum(1 for n in g.nodes if n.startswith(ns + ".")) for ns in namespaces} for g in (ga, gb)]
    runs = []
    for ns in namespaces:
        parent, _, last = ns.rpartition(".")
        prev = runs[-1] if runs else None
        if (prev and _NUMBER.match(last) and prev["parent"] == parent and prev["index"] is not None
                and int(last) == prev["index"] + 1 and (prev["a"], prev["b"]) == (labels_a[ns], labels_b[ns])):
            prev.update(last=ns, index=int(last), count=prev["count"] + 1)
            prev["na"] += counts[0][ns]
            prev["nb"] += counts[1][ns]
            prev["names"].append(ns)
            continue
        runs.append({"first": ns, "last": ns, "count": 1, "a": labels_a[ns], "b": labels_b[ns], "parent": parent,
                     "index": int(last) if _NUMBER.match(last) else None, "na": counts[0][ns],
                     "nb": counts[1][ns], "names": [ns]})
    return tuple(Replaced(r["first"], r["last"], r["count"], r["a"], r["b"], r["na"], r["nb"],
                          tuple(r["names"])) for r in runs)


def _runs(graph, other, layout, skip) -> tuple:
    """The nodes of `graph` absent from `other`, as the largest whole namespaces
    absent from it, consecutive sibling copies merged into runs; names for which
    `skip` holds are left out."""
    present = _names_in(other)
    units: dict = {}   # unit name -> [kind, nodes]
    node_unit = {}
    for name, node in graph.nodes.items():
        if name in other.nodes or skip(name):
            continue
        unit = next(((ns, label) for ns, label in node.scopes if ns not in present), (name, node.op))
        record = units.setdefault(unit[0], [unit[1], 0])
        record[1] += 1
        node_unit[name] = unit[0]
    keys = {}
    for key in layout:
        owner = _owner(key, node_unit)
        if owner is not None:
            keys[node_unit[owner]] = keys.get(node_unit[owner], 0) + 1

    runs, unit_run = [], {}
    for unit, (kind, nodes) in units.items():
        parent, _, last = unit.rpartition(".")
        previous = runs[-1] if runs else None
        if (previous and _NUMBER.match(last) and previous["kind"] == kind and previous["parent"] == parent
                and previous["last_index"] is not None and int(last) == previous["last_index"] + 1):
            previous.update(last=unit, last_index=int(last), count=previous["count"] + 1,
                            nodes=previous["nodes"] + nodes, keys=previous["keys"] + keys.get(unit, 0))
            previous["units"].append(unit)
            continue
        runs.append({"first": unit, "last": unit, "count": 1, "kind": kind, "nodes": nodes,
                     "keys": keys.get(unit, 0), "parent": parent, "units": [unit],
                     "last_index": int(last) if _NUMBER.match(last) else None})
    result = []
    for r in runs:
        run = Run(r["first"], r["last"], r["count"], r["kind"], r["nodes"], r["keys"])
        result.append(run)
        for unit in r["units"]:
            unit_run[unit] = run
    return tuple(result), {name: unit_run[unit] for name, unit in node_unit.items()}


def _owner(key: str, nodes) -> str | None:
    """The node a state-dict key belongs to: the longest node name it starts with."""
    parts = key.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in nodes:
            return candidate
    return None


def _keys_of_units(layout: dict, node_run: dict) -> dict:
    out = {}
    for key in layout:
        owner = _owner(key, node_run)
        if owner is not None:
            out[key] = node_run[owner]
    return out


def _block_rows(compiled, depth: int) -> dict:
    summary = summarize_graph(compiled.inferred, compiled.spec.name)
    folded = summary.folded(depth, compiled.inferred.graph.aliases)
    return {row.name: row for row in folded.rows}


# -- rendering helpers ------------------------------------------------------------

def _plain(value):
    """A value as JSON would hold it (tuples and read-only lists as lists)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _value(value) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):  # as YAML writes them
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)


def _signed(n: int) -> str:
    return f"+{n:,}" if n > 0 else f"{n:,}" if n < 0 else "0"


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'s' if n != 1 else ''}" if n else "none"


def _side_label(side: Side) -> str:
    scale = f", scale {side.scale}" if side.scale else ""
    return f"{side.name}{scale}: {side.params:,} params, {side.nodes} nodes"


def _side_dict(side: Side) -> dict:
    data = asdict(side)
    data["input_shape"] = list(side.input_shape)
    return data


def _change_dict(change: NodeChange) -> dict:
    data = {"name": change.name}
    if change.op:
        data["op"] = _pair(change.op)
    if change.args:
        data["args"] = {k: {"a": a, "b": b} for k, (a, b) in change.args.items()}
    if change.inputs:
        data["inputs"] = _pair(change.inputs, list)
    if change.frozen:
        data["frozen"] = _pair(change.frozen)
    if change.shape:
        data["shape"] = _pair(change.shape, list)
    return data


def _pair(pair, convert=None) -> dict:
    a, b = pair
    if convert is not None:
        a, b = (convert(v) if v is not None else None for v in (a, b))
    return {"a": a, "b": b}


def _delta(pair) -> int:
    return pair[1] - pair[0]


def _capped(lines: list, limit: int) -> list:
    if len(lines) <= limit:
        return lines
    rest = len(lines) - limit
    return lines[:limit] + [f"  ... and {rest} more (--json or --keys lists everything)"]


def _grouped(items) -> list:
    """(name, text) pairs; names that differ only in one numeric segment and share
    their text become one line: `layer1.{0..2}.conv1`."""
    groups: dict = {}
    for name, text in items:
        parts = name.split(".")
        numeric = [i for i, p in enumerate(parts) if _NUMBER.match(p)]
        if numeric:
            i = numeric[0]
            template = (tuple(parts[:i]), tuple(parts[i + 1:]), text)
            groups.setdefault(template, []).append(int(parts[i]))
        else:
            groups.setdefault((name, text), None)
    lines = []
    for key, indices in groups.items():
        if indices is None:
            lines.append((key[0], key[1]))
            continue
        head, tail, text = key
        if len(indices) == 1:
            index = str(indices[0])
        elif indices == list(range(indices[0], indices[0] + len(indices))):
            index = f"{{{indices[0]}..{indices[-1]}}}"
        else:
            index = "{" + ",".join(map(str, indices)) + "}"
        lines.append((".".join([*head, index, *tail]), text))
    return lines


def _table(rows) -> list:
    headers = ("block", "kind", "output shape", "params a", "params b", "delta", "MACs delta")
    cells = []
    for r in rows:
        ka, kb = r.kind
        kind = ka if ka == kb else f"{ka or '(none)'} -> {kb or '(none)'}"
        sa, sb = (_value(list(s)) if s is not None else "(none)" for s in r.shape)
        shape = sa if sa == sb else f"{sa} -> {sb}"
        cells.append((r.name, kind, shape, f"{r.params[0]:,}", f"{r.params[1]:,}",
                      _signed(_delta(r.params)), _signed(_delta(r.macs))))
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    align = ("<", "<", "<", ">", ">", ">", ">")
    line = lambda row: "  " + "  ".join(f"{c:{a}{w}}" for c, a, w in zip(row, align, widths)).rstrip()
    return [line(headers)] + [line(c) for c in cells]
