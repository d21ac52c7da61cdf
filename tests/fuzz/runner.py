"""The command line: runs each property for a number of examples without stopping at a
failure, groups the failures by kind (shrinking one example of each if asked), prints
the counts, and exits 1 when a property failed.

    python -m tests.fuzz --examples 300 [--seed S] [--mode valid|mutate|both]
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, settings

from .bench import MutationBench
from .check_valid import check_valid
from .mutate import SPECS_DIR, mutated_specs, shipped_specs
from .valid import valid_specs


def signature(message: str) -> str:
    """What kind of failure a message describes: its first line and the last line of a
    traceback in it, with names and numbers blanked, so repeats of one bug group."""
    lines = [l for l in message.split("\n") if l.strip()]
    head = lines[0] if lines else ""
    if "Traceback" in message:
        tail = [l for l in message.split("--- spec ---")[0].split("\n") if re.match(r"^\w+(Error|Exception)\b", l)]
        head += " " + (tail[-1] if tail else "")
    elif head.startswith(("a valid spec was rejected", "`archspec validate`", "stderr", "stray")) and len(lines) > 1:
        head += " " + re.sub(r"^.*?error\[", "error[", lines[1])
    head = re.sub(r"`[^`]*`", "`*`", head)
    head = re.sub(r"\[[-\d, ]*\]", "[..]", head)
    head = re.sub(r"\d+", "N", head)
    return head[:200]


@dataclass
class _Failure:
    message: str
    text: str
    count: int = 1


def _run_property(title, strategy, check, examples, seed, shrink_seconds, out) -> bool:
    """Runs `examples` examples without stopping at a failure, then prints the counts and
    each kind of failure with the smallest spec text that showed it (shrunk if asked)."""
    stats = Counter()
    failures: dict = {}  # signature -> _Failure

    def attempt(example, local):
        try:
            check(example, local)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the run
            return str(exc) or repr(exc)
        return None

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=[hypothesis.Phase.generate], suppress_health_check=list(HealthCheck),
              print_blob=False)
    @hypothesis.given(strategy)
    def prop(example):
        local = Counter({"examples": 1})
        message = attempt(example, local)
        if message is not None:
            local["failures"] += 1
            sig = signature(message)
            text = getattr(example, "text", "")
            known = failures.get(sig)
            if known is None:
                failures[sig] = _Failure(message, text)
            else:
                known.count += 1
                if len(text) < len(known.text):
                    known.message, known.text = message, text
        stats.update(local)

    if seed is not None:
        prop = hypothesis.seed(seed)(prop)
    prop()

    if shrink_seconds > 0:
        _shrink(failures, strategy, attempt, examples, shrink_seconds)
    _report(title, stats, failures, out)
    return not failures


def _shrink(failures: dict, strategy, attempt, examples, shrink_seconds) -> None:
    """Looks, for up to `shrink_seconds` each, for a smaller example of each kind of failure."""
    for sig, failure in failures.items():
        deadline = time.monotonic() + shrink_seconds

        def same_failure(example, sig=sig, deadline=deadline):
            if time.monotonic() > deadline:
                return False
            message = attempt(example, Counter())
            return message is not None and signature(message) == sig

        try:
            smallest = hypothesis.find(strategy, same_failure, settings=settings(
                max_examples=max(examples, 200), deadline=None, database=None,
                suppress_health_check=list(HealthCheck)))
        except Exception:  # noqa: BLE001 - not found again in time: keep what the run saw
            continue
        message = attempt(smallest, Counter())
        if message is not None and len(smallest.text) <= len(failure.text):
            failure.message, failure.text = message, smallest.text


def _report(title: str, stats: Counter, failures: dict, out) -> None:
    print(f"== {title}", file=out)
    print(f"   examples run: {stats['examples']}", file=out)
    for key in sorted(stats):
        if key not in ("examples", "failures") and not key.startswith("rejected"):
            print(f"   {key}: {stats[key]}", file=out)
    rejected = sorted((k.split(" ", 1)[1], v) for k, v in stats.items() if k.startswith("rejected"))
    print("   rejected with archspec errors, by code: "
          + (", ".join(f"{code} x{n}" for code, n in rejected) or "none"), file=out)
    print(f"   failures: {stats['failures']} ({len(failures)} kinds)", file=out)
    for n, (sig, failure) in enumerate(sorted(failures.items(), key=lambda kv: -kv[1].count), 1):
        print(f"\n-- failure {n}/{len(failures)}, seen {failure.count} time(s): {sig}", file=out)
        print(failure.message, file=out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.fuzz",
                                description="Property-based fuzzing of archspec (needs Hypothesis). "
                                            "Exit status 1 when a property fails.")
    p.add_argument("--examples", type=int, default=100, help="examples per property (100)")
    p.add_argument("--seed", type=int, help="random seed, for a reproducible run")
    p.add_argument("--mode", choices=["valid", "mutate", "both"], default="both")
    p.add_argument("--shrink-seconds", type=float, default=60, metavar="S",
                   help="time to spend minimising each kind of failure (60; 0: print as found)")
    p.add_argument("--specs", type=Path, default=SPECS_DIR, help="directory of specs to mutate")
    args = p.parse_args(argv)
    ok = True
    out = sys.stdout
    if args.mode in ("valid", "both"):
        ok &= _run_property("valid specs: compile, infer and run as the model says", valid_specs(),
                            check_valid, args.examples, args.seed, args.shrink_seconds, out)
    if args.mode in ("mutate", "both"):
        if not shipped_specs(args.specs):
            print(f"no specs to mutate in {args.specs}", file=sys.stderr)
            return 2
        bench = MutationBench(args.specs)
        try:
            ok &= _run_property("mutated shipped specs: `archspec validate` ends in archspec's own errors",
                                mutated_specs(directory=args.specs), bench.check, args.examples,
                                args.seed, args.shrink_seconds, out)
        finally:
            bench.close()
    return 0 if ok else 1

