"""Property-based fuzzing of archspec with Hypothesis (a development tool).

Two families of inputs:

- `valid_specs()` generates random spec texts that are valid by construction: chains,
  nested concatenations, residual additions (identity or `op: project` shortcuts),
  convolutions of every kind, pools, heads, blocks with arguments, `repeat` with `at:`
  overrides, `when:` conditions and expressions. While it generates, an independent
  model of the language (written from the README and PyTorch's shape formulas, not from
  archspec's code) interprets the spec, so each example also carries what archspec must
  infer: every qualified node name, its shape and its parameter count, and the outputs.
  `check_valid()` compiles the text and compares that, then builds the module and runs
  it on CPU (train and eval mode, batch 2), comparing every node's real shape, the
  parameter count of every module, the outputs of the generated forward with a forward
  that never works in place, and the backward pass.
- `mutated_specs()` takes a shipped spec and breaks it (lines deleted, duplicated or
  swapped, scalars replaced, characters inserted, truncation, indentation).
  `MutationBench.check()` runs `archspec validate` on it: the result must be 0, 1 or 2,
  never an exception or 3, and errors must be reported as `file:line:col: error[CODE]:`.

    python -m tests.fuzz --examples 300 [--seed S] [--mode valid|mutate|both]

Modules: `model` (the independent model of the language), `choices` and `generate` (the
generator of graphs), `yaml_text` (writing specs as YAML), `valid` (the valid-spec
strategy), `check_valid` (its property), `mutate` (the mutation strategy), `bench` (its
property), `failure` (how a property fails), `runner` (the command line).

Hypothesis is a development dependency: it lives with the tests, not in the installed package.
"""
try:
    import hypothesis  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("tests.fuzz needs Hypothesis, a development dependency: "
                      "pip install -e '.[dev]'") from exc

from .bench import MutationBench
from .check_valid import check_valid
from .failure import PropertyFailure
from .mutate import SPECS_DIR, Mutant, mutated_specs, shipped_specs
from .runner import main
from .valid import Generated, valid_specs

__all__ = ["SPECS_DIR", "Generated", "Mutant", "MutationBench", "PropertyFailure", "check_valid",
           "main", "mutated_specs", "shipped_specs", "valid_specs"]
