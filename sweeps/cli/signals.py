"""Ctrl-C in the ``ablate`` console script, handled from its first line on (sweeps/cli/console.py sets it).

A SIGINT that lands while Python imports the CLI, torch, Ray or MLflow, or
while ``ray.init`` runs, must end the process with exit 130 and one line, not
a traceback (or a segfault from an interpreter shutdown racing Ray's threads).
So before anything heavy is imported the handler below is installed (sweeps/cli/console.py); it exits
at once via ``os._exit``.  Inside a Tune run, Tune installs its own handler
(first Ctrl-C: stop the trials and return) and puts this one back afterwards.
"""
from __future__ import annotations

import os

RESUME_HINT: list = []      # set by `run` (set_resume_hint) once a launch has state on disk


def set_resume_hint(command: str) -> None:
    """The command that resumes the launch in progress, named by ``interrupted``."""
    RESUME_HINT[:] = [command]


def interrupted(*_args) -> None:
    """Exit 130 at once; the local Ray processes die with their parent anyway."""
    hint = f"; finished trials are kept: rerun {RESUME_HINT[0]}" if RESUME_HINT else ""
    try:
        os.write(2, f"\nablate: interrupted{hint}\n".encode())
    except OSError:
        pass
    os._exit(130)
