"""Cold starts of archspec commands in several checkouts side by side, for before/after
figures: `python -m benchmarks.coldstart ROUNDS DIR [DIR ...]`.

Each round runs `python -c pass` and then, from each DIR (a checkout, e.g. made with
`git archive main | tar -x -C /tmp/before`), `python -m archspec ARGS` for every command
below, so drift hits all alike. Printed: the minimum over rounds of the wall time and of
the child's CPU time (user + sys, from wait4), each also as a ratio to `python -c pass`.
On a shared machine the CPU time is the steadier figure. Compile each checkout's
bytecode first (`python -m compileall -q DIR/archspec`) to measure what an installed
package does; without it, and with PYTHONDONTWRITEBYTECODE set, every start compiles.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

COMMANDS = (("--help",), ("schema",), ("validate", "specs/resnet50.yaml"),
            ("summary", "specs/efficientnet_v2_l.yaml"), ("summary", "specs/yolo11n.yaml"))


def _run(argv, cwd) -> tuple[float, float]:
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)} in {cwd}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    rounds, trees = int(args[0]), args[1:]
    best: dict = {}
    for _ in range(rounds):
        jobs = [("pass", [sys.executable, "-c", "pass"], None)]
        jobs += [((tree, c), [sys.executable, "-m", "archspec", *c], tree) for tree in trees for c in COMMANDS]
        for key, command, cwd in jobs:
            wall, cpu = _run(command, cwd)
            old = best.get(key, (float("inf"), float("inf")))
            best[key] = (min(old[0], wall), min(old[1], cpu))
    base_wall, base_cpu = best["pass"]
    print(f"python -c pass: wall {base_wall * 1e3:.0f} ms, cpu {base_cpu * 1e3:.0f} ms (min of {rounds})")
    for c in COMMANDS:
        for tree in trees:
            wall, cpu = best[(tree, c)]
            print(f"archspec {' '.join(c):36s} {tree:24s} wall {wall * 1e3:4.0f} ms {wall / base_wall:4.1f}x   "
                  f"cpu {cpu * 1e3:4.0f} ms {cpu / base_cpu:4.1f}x")


if __name__ == "__main__":
    main()
