"""Activation memory of one training step (forward + backward) of a
HyperbolicNet: the quantity of the paper's Table 1 ("the memory that is
required for the network states Y_i in order to compute a gradient", Sec.
6.1.1), reported by the task as ``peak_mem_mb``.

Same method as benchmarks/bench_hyperbolic.py (re-implemented here because
tasks must not import benchmarks, and components hold no such helper):

* CUDA: torch.cuda.max_memory_allocated during forward + backward minus the
  memory allocated just before the forward (parameters, existing gradients,
  optimiser state, data): the true peak of what the step adds.
* CPU (no allocator statistics): bytes of the tensors autograd keeps for
  backward, counted through torch.autograd.graph.saved_tensors_hooks as
  unique storages, parameters excluded.  That includes what the reversible
  autograd Function saves (its final state pair).  For a reversible network
  the backward working set is added: the most any single op's re-run graph
  saves, since the Function rebuilds one op at a time (Algorithm 5.1).
  Transient forward temporaries are not counted for either kind of network,
  so CPU numbers are lower than CUDA ones but compare like with like.

The memory depends on shapes only, not on parameter values, so the task
measures it once on a probe step (no optimiser update).
"""
from __future__ import annotations

from typing import Callable, Set

import torch

from components.hyperbolic import propagate

from ..cost import saved_bytes

MB = 2.0 ** 20


def reversible_working_set(net, x: torch.Tensor, exclude: Set[int]) -> int:
    """Largest graph any one op of ``net`` rebuilds in the reversible backward."""
    with torch.no_grad():
        y0 = net.opening(x)
        _, pairs = propagate(net.ops, (y0, y0), keep=True)
    return max(saved_bytes(lambda: op.recompute(out), exclude)[0] for op, out in zip(net.ops, pairs[1:]))


def step_activation_mb(net, x: torch.Tensor, loss_fn: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Activation MB of forward + backward of ``loss_fn(net(x))``.

    Gradients are accumulated into ``net``'s parameters; the caller clears them."""
    if x.is_cuda:
        torch.cuda.synchronize(x.device)
        base = torch.cuda.memory_allocated(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        loss_fn(net(x)).backward()
        torch.cuda.synchronize(x.device)
        return (torch.cuda.max_memory_allocated(x.device) - base) / MB
    params = {p.untyped_storage().data_ptr() for p in net.parameters()}
    nbytes, loss = saved_bytes(lambda: loss_fn(net(x)), params)
    loss.backward()
    if getattr(net, "reversible", False):
        nbytes += reversible_working_set(net, x, params)
    return nbytes / MB
