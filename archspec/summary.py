"""The summary of a compiled spec: one row per node, totals, output shapes."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .infer import InferredGraph


@dataclass(frozen=True)
class Row:
    name: str
    op: str
    shape: tuple        # with the batch dimension
    params: int
    macs: int           # for the whole batch
    train_only: bool    # computed only in training mode


@dataclass(frozen=True)
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

    def to_dict(self) -> dict:
        data = asdict(self)
        data["rows"] = [asdict(r) for r in self.rows]
        data["mac_definition"] = MAC_DEFINITION
        return data

    def render(self) -> str:
        headers = ("node", "op", "output shape", "params", "MACs")
        table = [(r.name + (" *" if r.train_only else ""), r.op, _shape(r.shape),
                  f"{r.params:,}" if r.params else "-", f"{r.macs:,}" if r.macs else "-")
                 for r in self.rows]
        widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
                  for i, h in enumerate(headers)]
        align = ("<", "<", "<", ">", ">")
        line = lambda cells: "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()
        rule = "-" * len(line(headers))
        out = [f"{self.name}: input {_shape((self.batch, *self.input_shape))}", rule, line(headers), rule]
        out += [line(row) for row in table]
        out.append(rule)
        for name, shape in self.outputs.items():
            tag = " (training only)" if name in self.train_only_outputs else ""
            out.append(f"output {name}: {_shape(shape)}{tag}")
        out.append(f"total params: {self.total_params:,}")
        out.append(f"total MACs:   {self.total_macs:,} (eval mode; {self.train_macs:,} in training)")
        if any(r.train_only for r in self.rows):
            out.append("* computed in training mode only")
        return "\n".join(out)


MAC_DEFINITION = ("multiply-accumulates as torchinfo counts mult-adds: for each conv, "
                  "(weights + biases) x output positions; for linear and batch norm, their "
                  "parameter count; pools, activations and joins count 0")


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def summarize_graph(inferred: InferredGraph, name: str, batch: int = 1) -> Summary:
    graph = inferred.graph
    in_eval = set(graph.needed_for(False))
    rows = tuple(Row(n, node.op, (batch, *inferred.facts[n].shape), inferred.facts[n].params,
                     inferred.facts[n].macs * batch, n not in in_eval)
                 for n, node in graph.nodes.items())
    return Summary(
        name=name, input_shape=graph.input_shape, batch=batch, rows=rows,
        outputs={o.name: (batch, *inferred.shape(o.node)) for o in graph.outputs},
        train_only_outputs=tuple(o.name for o in graph.outputs if o.train_only),
        total_params=inferred.total_params, total_macs=inferred.macs(False) * batch,
        train_macs=inferred.macs(True) * batch)
