"""Fully Hyperbolic CNNs (paper 001): activation memory of the reversible
HyperbolicNet vs depth and vs the non-reversible pooling network (Table 1:
798 vs 5057 MB, 528 vs 3693 MB), and the compute price of reversibility
(Sec. 3.1: "the computational cost for computing derivatives is doubled").

Setup: one input (1, 3, 32, 32) (16x16 with quick=True), width 8,
n_levels 2 (8 -> 32 -> 128 channels), 2 classes, cross-entropy loss; depth
= leapfrog layers per unit, 5 units, so depth 4 / 16 / 64 = 20 / 80 / 320
layers.

Activation memory, method:
* CUDA: torch.cuda.max_memory_allocated during forward + backward minus the
  memory allocated before the forward (parameters, input): the true peak.
* CPU (no peak allocator statistics): bytes of the tensors autograd keeps
  for backward, counted with torch.autograd.graph.saved_tensors_hooks as
  unique storages, excluding parameter storages. This includes what the
  reversible Function stores (ctx.save_for_backward goes through the same
  hooks). For the reversible net we add its backward working set: the most
  any single op's re-run graph saves (the Function rebuilds one op at a
  time), measured with the same hooks on every op. Transient forward
  temporaries are not counted for either network.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from tasks.hyperbolic.memory import step_activation_mb

from benchmarks.common import Result, gc_collect, interleaved_ms, ratio_result
from components import build



def _net(depth, coarsen, reversible, device):
    # The network these rows were first measured with (a learned 3x3 opening to width 8, biases):
    # the memory of reversible vs stored states does not depend on the opening or the head.
    torch.manual_seed(0)
    return build("hyperbolic_net", "leapfrog", in_channels=3, out_channels=2, width=8, depth=depth, n_levels=2,
                 coarsen=coarsen, reversible=reversible, layout="learned_opening", bias=True).to(device)


def activation_mb(net, x, target) -> float:
    """One training step's activation memory; the same measurement the hyperbolic
    task reports as peak_mem_mb (tasks/hyperbolic/memory.py)."""
    gc_collect()
    return step_activation_mb(net, x, lambda logits: F.cross_entropy(logits, target))


def run(quick: bool = False) -> list[Result]:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    size = 16 if quick else 32
    x = torch.randn(1, 3, size, size, device=dev)
    target = torch.randint(0, 2, (1, size, size), device=dev)
    method = "cuda max_memory_allocated" if dev.type == "cuda" else "saved-tensor bytes (see docstring)"
    rev = {d: activation_mb(_net(d, "dwt", True, dev), x, target) for d in (4, 16, 64)}
    pool64 = activation_mb(_net(64, "avgpool", False, dev), x, target)
    pool4 = activation_mb(_net(4, "avgpool", False, dev), x, target)
    plain64 = activation_mb(_net(64, "dwt", False, dev), x, target)
    results = [
        ratio_result(f"HyperbolicNet dwt reversible activation memory, depth 64 vs 4 (x {size}x{size})",
                     rev[64], rev[4], "MB", max_ratio=1.3,
                     note=f"{method}; depth 4/16/64 = {rev[4]:.3f}/{rev[16]:.3f}/{rev[64]:.3f} MB"),
        ratio_result(f"HyperbolicNet depth 64: reversible dwt vs non-reversible avgpool (x {size}x{size})",
                     rev[64], pool64, "MB", max_ratio=0.2,
                     note=f"{method}; avgpool depth 4 = {pool4:.3f} MB, non-reversible dwt depth 64 = "
                          f"{plain64:.3f} MB; paper Table 1: 798 vs 5057 MB (ratio 0.16)"),
    ]
    nets = {"rev": _net(4, "dwt", True, dev), "plain": _net(4, "dwt", False, dev)}
    nets["plain"].load_state_dict(nets["rev"].state_dict())
    fns = {k: (lambda n=n: F.cross_entropy(n(x), target).backward()) for k, n in nets.items()}
    ms = interleaved_ms(fns, repeat=3 if quick else 10, warmup=1)
    results.append(ratio_result(f"HyperbolicNet dwt depth 4 fwd+bwd time: reversible vs autograd (x {size}x{size})",
                                ms["rev"], ms["plain"], "ms", max_ratio=2.5,
                                note="Sec. 3.1: reversibility roughly doubles the derivative cost; in f-costs "
                                     "4 (fwd, f once in backward, its VJP ~2) vs 3, plus per-op Python overhead"))
    return results


if __name__ == "__main__":
    for r in run():
        print(r)
