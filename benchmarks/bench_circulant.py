"""CDLinear vs nn.Linear, forward + backward wall time (CDLinear paper, Sec. III.1 "Compute").

Two sizes: the digits MLP's hidden layer (batch 256, 64→64, B = 4; no target,
reported only) and a large layer (batch 512, 4096→4096, B = 64; target: at most
0.3× the dense time).  Both layers compute gradients for input, weight and
bias.  CDLinear runs with its default ``path="auto"``; the torch.fft path (the
first implementation: rFFT + complex einsum) is reported alongside so that
the gain of the real-DFT path stays visible.  Times are medians of runs
interleaved in one process (benchmarks.common.interleaved_ms).
"""
from __future__ import annotations

import os

import torch
from torch import nn

from benchmarks.common import Result, gc_collect, interleaved_ms, ratio_result
from components.circulant import CDLinear

CASES = [  # (batch, n_in, n_out, B, max ratio)
    (256, 64, 64, 4, None),
    (512, 4096, 4096, 64, 0.3),
]


def _step(module: nn.Module, x: torch.Tensor):
    def fn():
        module.zero_grad(set_to_none=True)
        x.grad = None
        module(x).sum().backward()
    return fn


def run(quick: bool = False) -> list[Result]:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    threads = torch.get_num_threads()
    # All cores this process may use; restored afterwards (library code never sets this).
    torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
    results = []
    try:
        for batch, n_in, n_out, b, max_ratio in CASES:
            torch.manual_seed(0)
            dense = nn.Linear(n_in, n_out).to(device)
            cd = CDLinear(n_in, n_out, b).to(device)
            cd_fft = CDLinear(n_in, n_out, b).to(device)
            cd_fft.path = "fft"
            x = torch.randn(batch, n_in, device=device, requires_grad=True)
            fns = {"dense": _step(dense, x), "auto": _step(cd, x), "fft": _step(cd_fft, x)}
            big = n_in * n_out > 1 << 20
            repeat = (3 if big else 20) if quick else (10 if big else 200)
            ms = interleaved_ms(fns, repeat=repeat, warmup=1 if quick else 3)
            name = f"CDLinear vs nn.Linear fwd+bwd, batch {batch}, {n_in}->{n_out}, B={b}"
            note = f"path={cd._auto_path()}, {torch.get_num_threads()} threads, {device.type}"
            results.append(ratio_result(name, ms["auto"], ms["dense"], "ms", max_ratio=max_ratio, note=note))
            results.append(ratio_result(name + " (path=fft)", ms["fft"], ms["dense"], "ms",
                                        note="torch.fft + complex einsum path, for comparison"))
            del dense, cd, cd_fft, x, fns
            gc_collect()
    finally:
        torch.set_num_threads(threads)
    return results


if __name__ == "__main__":
    for r in run():
        print(r)
