"""The summary of a compiled spec: rows per node (or folded per block), totals,
trainable and frozen parameters, and memory estimates for a batch and dtype."""
from __future__ import annotations

import math

from .infer import InferredGraph
from .ops import REGISTRY
from .records import as_dict, record, replace

MAC_DEFINITION = ("multiply-accumulates as torch.utils.flop_counter.FlopCounterMode counts them "
                  "(its flops / 2): the products of convolutions, linear layers at every position "
                  "they apply to, and attention's matrix products; bias adds, norms, activations, "
                  "pools and joins count 0")
MEMORY_DEFINITION = ("params and buffers: their elements x the dtype's size (int64 counters 8 bytes); "
                     "activations: every node output that gets its own storage, x batch x dtype size, "
                     "which is what a training forward keeps for backward (an upper bound: in-place "
                     "activations share storage)")
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


@record
class Row:
    name: str
    op: str
    shape: tuple        # with the batch dimension
    params: int
    macs: int           # for the whole batch
    train_only: bool    # computed only in training mode
    frozen: bool = False
    scopes: tuple = ()  # (namespace, block name / "seq" / "repeat xN"), outermost first


@record
class Summary:
    name: str
    input_shape: tuple
    batch: int
    rows: tuple
    outputs: dict       # output name -> shape with batch
    train_only_outputs: tuple
    total_params: int
    total_macs: int     # eval-mode forward, whole batch
    train_macs: int     # training-mode forward (aux heads included), whole batch
    trainable_params: int = 0
    frozen_params: int = 0
    dtype: str = "float32"
    param_bytes: int = 0
    buffer_bytes: int = 0
    activation_bytes: int = 0
    scale: str | None = None  # the named scale applied, if any

    def to_dict(self) -> dict:
        data = as_dict(self)
        data["rows"] = [as_dict(r) for r in self.rows]
        data["mac_definition"] = MAC_DEFINITION
        data["memory_definition"] = MEMORY_DEFINITION
        return data

    def folded(self, depth: int, aliases: dict | None = None) -> "Summary":
        """Rows merged to the first `depth` parts of their names (`layer1.0` at 2)."""
        rows_by_name = {row.name: row for row in self.rows}
        groups: dict[str, list] = {}  # the shape of a group is its block's output's, else its last row's
        for row in self.rows:
            groups.setdefault(".".join(row.name.split(".")[:depth]), []).append(row)
        rows = tuple(
            members[0] if len(members) == 1 and members[0].name == key else
            Row(key, dict(members[0].scopes).get(key, f"{len(members)} ops"),
                rows_by_name[aliases[key]].shape if key in (aliases or {}) else members[-1].shape,
                sum(r.params for r in members), sum(r.macs for r in members),
                all(r.train_only for r in members), all(r.frozen for r in members), members[0].scopes)
            for key, members in groups.items())
        return replace(self, rows=rows)

    def render(self) -> str:
        headers = ("node", "op", "output shape", "params", "MACs")
        table = [(r.name + (" *" if r.train_only else ""), r.op, _shape(r.shape),
                  (f"{r.params:,}" + (" (frozen)" if r.frozen else "")) if r.params else "-",
                  f"{r.macs:,}" if r.macs else "-")
                 for r in self.rows]
        widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
                  for i, h in enumerate(headers)]
        align = ("<", "<", "<", ">", ">")
        line = lambda cells: _line(cells, align, widths)
        rule = "-" * len(line(headers))
        scale = f" (scale {self.scale})" if self.scale else ""
        out = [f"{self.name}{scale}: input {_shape((self.batch, *self.input_shape))}", rule, line(headers), rule]
        out += [line(row) for row in table]
        out.append(rule)
        for name, shape in self.outputs.items():
            tag = " (training only)" if name in self.train_only_outputs else ""
            out.append(f"output {name}: {_shape(shape)}{tag}")
        out.append(f"total params: {self.total_params:,} "
                   f"(trainable {self.trainable_params:,}, frozen {self.frozen_params:,})")
        out.append(f"total MACs:   {self.total_macs:,} (eval mode; {self.train_macs:,} in training)")
        out.append(f"memory ({self.dtype}, batch {self.batch}): params {_mb(self.param_bytes)}, "
                   f"buffers {_mb(self.buffer_bytes)}, activations {_mb(self.activation_bytes)}")
        if any(r.train_only for r in self.rows):
            out.append("* computed in training mode only")
        return "\n".join(out)


def _line(cells, align, widths) -> str:
    # ljust/rjust rather than f"{c:{a}{w}}": a large spec has thousands of rows, and
    # formatting with a nested spec parses it anew for every cell.
    return "  ".join(c.ljust(w) if a == "<" else c.rjust(w) for c, a, w in zip(cells, align, widths)).rstrip()


def _shape(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _mb(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB"


def summarize_graph(inferred: InferredGraph, name: str, batch: int = 1, dtype: str = "float32") -> Summary:
    graph, facts = inferred.graph, inferred.facts
    size = DTYPE_BYTES[dtype]
    in_eval = set(graph.needed_for(False))
    rows = tuple(Row(n, node.op, (batch, *facts[n].shape), facts[n].params, facts[n].macs * batch,
                     n not in in_eval, node.frozen, node.scopes)
                 for n, node in graph.nodes.items())
    frozen = sum(r.params for r in rows if r.frozen)
    floats, counters = (sum(f.buffers[k] for f in facts.values()) for k in (0, 1))
    activations = sum(math.prod(facts[n].shape) for n, node in graph.nodes.items()
                      if REGISTRY[node.op].allocates)
    return Summary(
        name=name, input_shape=graph.input_shape, batch=batch, rows=rows,
        outputs={o.name: (batch, *inferred.shape(o.node)) for o in graph.outputs},
        train_only_outputs=tuple(o.name for o in graph.outputs if o.train_only),
        total_params=inferred.total_params, total_macs=inferred.macs(False) * batch,
        train_macs=inferred.macs(True) * batch,
        trainable_params=inferred.total_params - frozen, frozen_params=frozen, dtype=dtype,
        param_bytes=inferred.total_params * size, buffer_bytes=floats * size + counters * 8,
        activation_bytes=activations * batch * size)


def render_scales(summaries: list) -> str:
    """One row per named scale: its parameters, MACs, input and outputs."""
    headers = ("scale", "params", "MACs", "input", "outputs")
    table = [(s.scale, f"{s.total_params:,}", f"{s.total_macs:,}", _shape(s.input_shape),
              ", ".join(f"{name} {_shape(shape[1:])}" for name, shape in s.outputs.items()
                        if name not in s.train_only_outputs))
             for s in summaries]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers)]
    align = ("<", ">", ">", "<", "<")
    line = lambda cells: "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()
    rule = "-" * len(line(headers))
    title = f"{summaries[0].name}: {len(summaries)} scales (batch {summaries[0].batch}, eval-mode MACs)"
    return "\n".join([title, rule, line(headers), rule, *map(line, table), rule])
