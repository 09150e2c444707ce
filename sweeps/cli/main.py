"""``ablate``: the root of the command line (parser, dispatch, exit codes); each
command lives in its own module of sweeps/cli/ and registers its parser (``add``).

Heavy libraries (torch, Ray, MLflow, seaborn) are imported inside the command
that needs them so that ``ablate --help`` and sweep validation stay well under
2 s.  Every error a user can cause ends in one line naming what is wrong and
what is allowed, and the exit status of the README's table
(sweeps/errors.py): 0 ok, 1 trials failed or a rerun differs, 2 bad input,
3 tracking store or cluster unusable, 4 internal error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import difflib
import os
import sys
from typing import List, Optional

from ..errors import (EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, LaunchError,
                      LaunchInterrupted, SettingError, StoreError, SweepError, TrialsFailed, UsageError)
from .signals import interrupted


def _err(msg: str) -> None:
    print(f"ablate: error: {msg}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line, and suggests the flag meant."""

    def error(self, message: str):  # noqa: D102
        self.print_usage(sys.stderr)
        _err(f"{self.prog}: {message}")
        raise SystemExit(EXIT_BAD_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ablate", description="Ray-distributed ablation sweeps for layer research")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from . import compare, plot, report, run, table, tasks, trial, ui

    for command in (run, trial, table, plot, report, ui, tasks, compare):
        command.add(sub)
    return p


def _parse(parser: argparse.ArgumentParser, argv: Optional[List[str]]):
    """Unknown flags are reported by the subcommand they were given to (with
    its usage and the flag it resembles), not by the top-level parser."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[args.command]
        known = [o for a in sub._actions for o in a.option_strings]
        hints = [f"{x} (did you mean {m[0]}?)" if (m := difflib.get_close_matches(x.split("=")[0], known, 1, 0.6))
                 else x for x in extra]
        sub.error(f"unrecognized arguments: {' '.join(hints)}")
    return args


def _dispatch(args) -> int:
    try:
        return int(args.func(args) or 0)
    except SweepError as e:
        print(str(e), file=sys.stderr)
        return EXIT_BAD_INPUT
    except (UsageError, SettingError) as e:
        _err(str(e))
        return EXIT_BAD_INPUT
    except (StoreError, LaunchError) as e:
        _err(str(e))
        return EXIT_ENV
    except LaunchInterrupted as e:
        _err(str(e))
        return EXIT_INTERRUPTED
    except TrialsFailed as e:
        _err(str(e))
        return EXIT_FAILED


def main(argv: Optional[List[str]] = None) -> int:
    """The ``ablate`` console script (also ``python -m sweeps.cli``)."""
    import signal

    signal.signal(signal.SIGINT, interrupted)      # first: a Ctrl-C while heavy libraries import exits 130
    try:
        if argv is None and hasattr(signal, "SIGPIPE"):
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # `ablate table X | head` exits quietly
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")   # MLflow 3 refuses plain file stores otherwise
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        args = _parse(build_parser(), argv)
        return _dispatch(args)
    except KeyboardInterrupt:            # a second Ctrl-C inside a Tune run (see sweeps/runner/phase.py)
        interrupted()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - a bug: one line, the traceback on request
        if os.environ.get("ABLATE_DEBUG"):
            raise
        _err(f"internal error ({type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}); "
             f"rerun with ABLATE_DEBUG=1 for the traceback and report it")
        return EXIT_INTERNAL
    return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
