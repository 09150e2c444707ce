"""Errors the CLI maps to exit codes (README, "Exit status").  Import-light, so
the CLI can name them without importing Ray or MLflow.

    2  bad input          SweepError (sweeps.spec), SettingError, UsageError
    3  store or cluster   StoreError, LaunchError
    130 interrupted       LaunchInterrupted, KeyboardInterrupt
"""
from __future__ import annotations

from .tracking import SettingError, StoreError  # noqa: F401  (re-exported)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENV, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class UsageError(ValueError):
    """A flag, argument or name the user gave is wrong (a sweep, launch, metric or
    run id that does not exist, --resume without an earlier launch): exit 2."""


class LaunchError(RuntimeError):
    """The sweep cannot run on this cluster as configured (resources that never
    fit, a Ray cluster that cannot be reached or disagrees on authentication): exit 3."""


class LaunchInterrupted(RuntimeError):
    """Tune stopped before every trial of a phase ended (Ctrl-C, SIGTERM): the
    phase is not marked done, so ``--resume`` runs what is left.  Exit 130."""


class TrialsFailed(RuntimeError):
    """Trials ran but nothing usable came out (every search trial of a cell failed): exit 1."""
