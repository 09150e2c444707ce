"""Shared helpers for benchmarks/: timing, peak memory and the result record.

Each ``benchmarks/bench_<name>.py`` defines ``run(quick: bool = False) ->
list[Result]``; ``python -m benchmarks.run_all`` runs them all in one process
and rewrites docs/benchmarks.md with the machine description.  Targets are
ratios measured side by side, never absolute times.
"""
from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass
class Result:
    benchmark: str          # e.g. "CDLinear vs nn.Linear fwd+bwd, batch 512, 4096->4096, B=64"
    ours: float             # measured value of the thing under test
    reference: float        # measured value of the baseline, same process
    unit: str               # "ms", "MB", ...
    target: str             # e.g. "ratio <= 0.3"
    ratio: float            # ours / reference
    passed: bool
    note: str = ""


def time_ms(fn: Callable[[], object], repeat: int = 20, warmup: int = 3) -> float:
    """Median wall time of ``fn`` in milliseconds (synchronising CUDA)."""
    for _ in range(warmup):
        fn()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    times = []
    for _ in range(repeat):
        sync()
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def interleaved_ms(fns: dict[str, Callable[[], object]], repeat: int = 20, warmup: int = 3) -> dict[str, float]:
    """Median ms of several functions timed in alternation, so that machine load
    drifts hit all of them equally (fairer ratios on a shared 2-core box)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append((time.perf_counter() - t0) * 1e3)
    return {k: sorted(v)[len(v) // 2] for k, v in times.items()}


def ratio_result(benchmark: str, ours: float, reference: float, unit: str, max_ratio: float | None = None,
                 min_ratio: float | None = None, note: str = "") -> Result:
    r = ours / reference if reference else float("inf")
    ok = True
    parts = []
    if max_ratio is not None:
        ok &= r <= max_ratio
        parts.append(f"ratio <= {max_ratio}")
    if min_ratio is not None:
        ok &= r >= min_ratio
        parts.append(f"ratio >= {min_ratio}")
    return Result(benchmark, ours, reference, unit, " and ".join(parts) or "-", r, bool(ok), note)


def gc_collect() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
