"""The reporter protocol tasks talk to, and the divergence error.

A task never imports Ray or MLflow; `sweeps` hands it a reporter: Ray Tune's
(report + checkpoint) inside a sweep, a local one for `ablate trial`.  This
module is import-light so that sweeps can reference it cheaply.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Protocol


class Reporter(Protocol):
    def report(self, metrics: Dict[str, float], state: Optional[Dict[str, Any]] = None) -> None:
        """One epoch's metrics; ``state`` (a torch-saveable dict) is the checkpoint."""

    def restore(self) -> Optional[Dict[str, Any]]:
        """The last checkpoint's state when the trial is being resumed, else None."""

    def annotate(self, **info: Any) -> None:
        """Static facts about the trial (model parameter count, data source, ...)."""

    # Optional: ``wants_checkpoint(epoch: int) -> bool`` (1-based epoch just trained).  When a
    # reporter has it, ``tasks.common.fit`` builds and passes a checkpoint ``state`` only for the
    # epochs it asks for, and always after the last epoch (the sweep's reporter follows
    # ``checkpoint.every_s`` and ASHA's rungs); without it, every epoch carries one.


class DivergedError(FloatingPointError):
    """The loss became NaN or infinite: the trial fails with this reason and is
    not retried (retrying a deterministic divergence only wastes the budget)."""
