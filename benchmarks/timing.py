"""Side-by-side timing: two callables interleaved in one process, medians compared."""
from __future__ import annotations

import statistics
import time


def interleaved(ours, theirs, repeats: int, warmup: int = 1) -> tuple[float, float]:
    """Median seconds of each, runs alternating so drift and noise hit both alike."""
    for _ in range(warmup):
        ours()
        theirs()
    a, b = [], []
    for i in range(repeats):
        for fn, out in ((ours, a), (theirs, b)) if i % 2 == 0 else ((theirs, b), (ours, a)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
