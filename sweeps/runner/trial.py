"""The one training entry point: ``run_trial(task_name, config, reporter)``.

A sweep's Ray Tune trials and ``ablate trial`` both come through here, with
different reporters, which is why a rerun reproduces a sweep trial exactly
(same code, same seeds, same thread count, deterministic algorithms).
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, Dict, List, Optional

from tasks import get_task


def run_trial(task_name: str, config: Dict[str, Any], reporter) -> Dict[str, float]:
    """Run ``task_name`` on the flat ``config``; returns the last epoch's metrics."""
    spec = get_task(task_name)
    return spec.load_run()(dict(config), reporter)


class LocalReporter:
    """Reporter for in-process runs: keeps the history, prints progress, and
    (optionally) hands a pre-loaded checkpoint state back for resumption."""

    def __init__(self, state: Optional[Dict[str, Any]] = None, echo: Callable[[str], None] | None = None,
                 on_report: Callable[[Dict[str, float], Optional[Dict[str, Any]]], None] | None = None):
        self.history: List[Dict[str, float]] = []
        self.info: Dict[str, Any] = {}
        self.last_state = state
        self._echo = echo if echo is not None else (lambda s: print(s, file=sys.stderr, flush=True))
        self._on_report = on_report
        self._t0 = time.perf_counter()

    def report(self, metrics: Dict[str, float], state: Optional[Dict[str, Any]] = None) -> None:
        self.history.append(dict(metrics))
        if state is not None:
            self.last_state = state
        shown = "  ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
        self._echo(f"[{time.perf_counter() - self._t0:7.1f}s] {shown}")
        if self._on_report:
            self._on_report(metrics, state)

    def restore(self) -> Optional[Dict[str, Any]]:
        return self.last_state

    def annotate(self, **info: Any) -> None:
        self.info.update(info)
