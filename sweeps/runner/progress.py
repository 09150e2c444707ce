"""One progress line for long sweeps, beside Tune's status table.

At the start and end of a phase, and in between at most every ``every_s``
seconds, it prints trials finished / running / pending / failed, the elapsed
time and an ETA from the finished trials' durations (and, for adaptive seeds,
the current look).  ``every_s`` is ``$ABLATE_PROGRESS_S`` when set, else 10 s on
a terminal and 60 s when stdout is not one (a log file of nohup, ``ray exec``, a
cluster job or CI): a long sweep's log then shows its progress and ETA once a
minute without burying the rest.  A Tune Callback: Tune pickles it into its
experiment state, so it keeps only plain attributes.
"""
from __future__ import annotations

import os
import sys
import time
from typing import List, Optional

from ray.tune import Callback

from ..errors import SettingError
from .trainable import FAILURE_KEY

TTY_EVERY_S, LOG_EVERY_S = 10.0, 60.0      # default seconds between lines: on a terminal, in a log file


def _fmt(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def eta_s(durations: List[float], running: int, pending: int, slots: int) -> Optional[float]:
    """Seconds left: the pending trials in waves of ``slots`` plus the running
    ones (half done on average), at the finished trials' mean duration."""
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    slots = max(1, slots)
    return mean * ((pending + running / 2.0) / slots)


def interval_s(tty: bool) -> float:
    """Seconds between progress lines: ``$ABLATE_PROGRESS_S`` (a number > 0), else TTY_EVERY_S on a terminal
    and LOG_EVERY_S otherwise.  SettingError (exit 2) for a value that is not a positive number."""
    raw = os.environ.get("ABLATE_PROGRESS_S", "").strip()
    if not raw:
        return TTY_EVERY_S if tty else LOG_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise SettingError(f"ABLATE_PROGRESS_S={raw!r} is not allowed: seconds between progress lines, a number > 0 "
                           f"(unset: {TTY_EVERY_S:g} on a terminal, {LOG_EVERY_S:g} in a log file)")
    return value


class Progress(Callback):
    """Args: label (phase, e.g. "final" or "look 2 of 4"), every_s (None: ``interval_s``), tty (None: ask
    stdout)."""

    def __init__(self, label: str, every_s: Optional[float] = None, tty: Optional[bool] = None):
        self.label = label
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.every_s = float(every_s) if every_s is not None else interval_s(self.tty)
        self._t0: Optional[float] = None
        self._last = 0.0
        self._started: dict = {}
        self._durations: List[float] = []
        self._slots = 1

    def __getstate__(self):
        return {"label": self.label, "every_s": self.every_s, "tty": self.tty}

    def __setstate__(self, st):
        self.__init__(st["label"], st["every_s"], st["tty"])

    def _line(self, trials, final: bool = False) -> str:
        status = [t.status for t in trials]
        failed = sum(s == "ERROR" or FAILURE_KEY in (t.last_result or {}) for s, t in zip(status, trials))
        done = sum(s == "TERMINATED" for s in status) - sum(
            FAILURE_KEY in (t.last_result or {}) for t in trials if t.status == "TERMINATED")
        running, pending = status.count("RUNNING"), status.count("PENDING")
        self._slots = max(self._slots, running)
        elapsed = time.time() - (self._t0 or time.time())
        eta = None if final else eta_s(self._durations, running, pending, self._slots)
        tail = "" if eta is None else f", ETA {_fmt(eta)}"
        return (f"[{self.label}] {done} finished, {running} running, {pending} pending, {failed} failed of "
                f"{len(trials)}; {_fmt(elapsed)} elapsed{tail}")

    def on_step_begin(self, iteration, trials, **info):
        now = time.time()
        if self._t0 is None:
            self._t0 = now
        if not trials:
            return
        if not self._last:
            self._last = now
            print(self._line(trials), flush=True)
        elif now - self._last >= self.every_s:
            self._last = now
            print(self._line(trials), flush=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        self._started.setdefault(trial.trial_id, time.time())

    def on_trial_complete(self, iteration, trials, trial, **info):
        t0 = self._started.pop(trial.trial_id, None)
        if t0 is not None:
            self._durations.append(time.time() - t0)

    def on_experiment_end(self, trials, **info):
        print(self._line(trials, final=True), flush=True)
