"""Shared check of the paired design (analysis.test: paired): for one seed, two
cells that differ only in the model see the same data split, the same batches
in the same order and the same augmentation draws, and the runs really drew
them (their checkpointed data-generator states equal ``data_order``'s).

Real runs through run_trial with a LocalReporter; nothing is mocked.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import numpy as np
import torch

from sweeps.runner.trial import LocalReporter, run_trial


def run_states(state: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """Data-generator states in a checkpoint, by stream name (see tasks.datasets.DataOrder)."""
    out = {"batches": state["rng"]["generator"]}
    if "augment_rng" in state.get("extra", {}):
        out["augment"] = state["extra"]["augment_rng"]
    return out


def same_order(a, b) -> bool:
    """Two DataOrders with equal splits and equal batches, epoch by epoch."""
    if a.split.keys() != b.split.keys() or len(a.batches) != len(b.batches):
        return False
    if not all(np.array_equal(a.split[k], b.split[k]) for k in a.split):
        return False
    return all(len(x) == len(y) and all(np.array_equal(i, j) for i, j in zip(x, y))
               for x, y in zip(a.batches, b.batches))


def same_states(a: Dict[str, torch.Tensor], b: Dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def assert_paired(task: str, cfg_a: Dict[str, Any], cfg_b: Dict[str, Any],
                  data_order: Callable[..., Any]) -> Dict[str, LocalReporter]:
    """Runs cells a and b (same seed, different model) and checks the pairing.

    Returns the two reporters (keys "a", "b") for task-specific checks.
    """
    assert cfg_a["seed"] == cfg_b["seed"] and cfg_a != cfg_b
    epochs = cfg_a["train.epochs"]
    order_a, order_b = data_order(cfg_a, epochs), data_order(cfg_b, epochs)
    assert same_order(order_a, order_b), "same seed, different model: the data order must not change"
    assert sum(len(e) for e in order_a.batches) > 1 and all(len(b) for e in order_a.batches for b in e)
    reps = {}
    for name, cfg, order in (("a", cfg_a, order_a), ("b", cfg_b, order_b)):
        reps[name] = LocalReporter(echo=lambda s: None)
        run_trial(task, cfg, reps[name])
        # the run drew exactly these batches (and augmentations): same generator states
        assert same_states(run_states(reps[name].last_state), order.states), name
    # another seed: other batches (the split is fixed by design in every task: same split)
    other = data_order({**cfg_a, "seed": cfg_a["seed"] + 1}, epochs)
    assert not same_order(other, order_a)
    assert all(np.array_equal(other.split[k], order_a.split[k]) for k in order_a.split)
    assert not any(torch.equal(other.states[k], order_a.states[k]) for k in order_a.states)
    return reps
