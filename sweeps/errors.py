"""Every error ablate raises on purpose, and the exit code the CLI maps it to
(README, "Exit status").  Import-light (no torch, Ray or MLflow), so any room
of sweeps/ can raise and the CLI can name them.

    1  trials failed      TrialsFailed
    2  bad input          SweepError, SettingError, UsageError
    3  store or cluster   StoreError, LaunchError
    130 interrupted       LaunchInterrupted, KeyboardInterrupt
"""
from __future__ import annotations

from typing import List, Tuple

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_ENV, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


class SweepError(Exception):
    """One or more problems in a sweep file; ``str()`` lists them one per line as
    ``FILE: KEY.PATH: message``."""

    def __init__(self, file: str, problems: List[Tuple[str, str]]):
        self.file, self.problems = file, problems
        super().__init__("\n".join(f"{file}: {path}: {msg}" for path, msg in problems))


class UsageError(ValueError):
    """A flag, argument or name the user gave is wrong (a sweep, launch, metric or
    run id that does not exist, --resume without an earlier launch): exit 2."""


class SettingError(ValueError):
    """An environment setting is wrong (``ABLATE_HOME`` not a writable directory).
    The CLI exits 2, like any other bad input."""


class StoreError(ConnectionError):
    """The tracking store cannot be used: missing (for a command that only reads),
    corrupt, not an MLflow store, or unreachable.  The CLI exits 3."""


class LaunchError(RuntimeError):
    """The sweep cannot run on this cluster as configured (resources that never
    fit, a Ray cluster that cannot be reached or disagrees on authentication): exit 3."""


class LaunchInterrupted(RuntimeError):
    """Tune stopped before every trial of a phase ended (Ctrl-C, SIGTERM): the
    phase is not marked done, so ``--resume`` runs what is left.  Exit 130."""


class TrialsFailed(RuntimeError):
    """Trials ran but nothing usable came out (every search trial of a cell failed): exit 1."""
