"""A trial killed after some epochs and resumed from its checkpoint, beside the
same trial run straight through: every task's resume test compares the two."""
from __future__ import annotations

import io
from typing import Tuple

import torch

from sweeps.runner.trial import LocalReporter, run_trial


def quiet() -> LocalReporter:
    return LocalReporter(echo=lambda s: None)


def whole_and_resumed(task: str, cfg: dict, stop_after: int,
                      through_disk: bool = False) -> Tuple[LocalReporter, LocalReporter]:
    """Run ``cfg`` whole, then run it for ``stop_after`` epochs and resume the rest from
    that run's last checkpoint. ``through_disk`` round-trips the checkpoint through
    ``torch.save``/``torch.load``, as it travels between Tune workers."""
    whole = quiet()
    run_trial(task, cfg, whole)
    first = quiet()
    run_trial(task, {**cfg, "train.epochs": stop_after}, first)
    state = first.last_state
    if through_disk:
        buf = io.BytesIO()
        torch.save(state, buf)
        buf.seek(0)
        state = torch.load(buf, weights_only=False)
    resumed = LocalReporter(state=state, echo=lambda s: None)
    run_trial(task, cfg, resumed)
    return whole, resumed


def without_timing(history):
    return [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in history]
