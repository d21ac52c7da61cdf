"""Property tests (Hypothesis): random valid specs compile to what an independent model
of the language says, and run; random mutations of the shipped specs end in archspec's
own errors. The generators and checks live in `tests/fuzz`; `python -m tests.fuzz`
runs the same properties for longer, and shrinks what fails.

Bounded for CI: a fixed number of examples, derandomized (the same examples every run),
no example database, no shrinking (each example builds and runs a network).
"""
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, settings

import fuzz
from conftest import SPECS

CI = settings(max_examples=50, deadline=None, derandomize=True, database=None, print_blob=False,
              phases=(Phase.explicit, Phase.generate),
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.large_base_example, HealthCheck.filter_too_much])
MUTANTS_PER_SPEC = 40

SHIPPED = fuzz.shipped_specs(SPECS)


@pytest.fixture(scope="module")
def bench():
    bench = fuzz.MutationBench(SPECS)
    yield bench
    bench.close()


@CI
@given(fuzz.valid_specs())
def test_random_valid_specs_infer_what_pytorch_computes(example):
    """Every node's inferred shape and parameter count, and the outputs, equal the
    model's; the built module holds exactly those parameters (per node, by qualified
    name, frozen where `frozen:` says) and its real forward (CPU, batch 2, train and
    eval) gives every node the inferred shape, the same outputs as the graph run without
    in-place ops, and the same gradients."""
    fuzz.check_valid(example)


# CI mutates the family bases (the specs that extend nothing: every construct of the
# zoo is written in one of them; a broken parent is validated through its children
# too), fewer times each; the slow run mutates every spec 40 times.
FAMILY_BASES = [name for name in SHIPPED if "\nextends:" not in (SPECS / name).read_text()]


def test_mutated_family_bases_end_in_archspec_errors(bench):
    _check_mutants(bench, FAMILY_BASES, 20)


@pytest.mark.slow
def test_mutated_shipped_specs_end_in_archspec_errors(bench):
    _check_mutants(bench, SHIPPED, MUTANTS_PER_SPEC)


def _check_mutants(bench, names, per_spec):
    """For each spec, `archspec validate` on broken copies exits 0, 1 or 2 (never
    raises, never 3); a failure is reported as `file:line:col: error[CODE]:` (or
    `archspec: error[CODE]:`) at a position inside the file, with exit 1 exactly when only
    `expect:` figures failed. A broken parent is validated through a child too."""
    failures = []
    for name in names:
        stats = Counter()

        @settings(CI, max_examples=per_spec)
        @given(fuzz.mutated_specs(names=[name], directory=SPECS))
        def prop(mutant):
            bench.check(mutant, stats)

        try:
            prop()
        except fuzz.PropertyFailure as exc:
            failures.append(f"== {name}\n{exc}")
        else:
            assert sum(stats[f"validate exit {rc}"] for rc in (0, 1, 2)) >= per_spec
    assert not failures, f"{len(failures)} of {len(names)} specs:\n" + "\n\n".join(failures)


def test_every_shipped_spec_is_mutated():
    assert len(SHIPPED) >= 11 and "resnet50.yaml" in SHIPPED
    assert 15 <= len(FAMILY_BASES) < len(SHIPPED) and "vgg16.yaml" in FAMILY_BASES
