"""``ablate``: run sweeps, rerun one trial, print tables, draw plots, write the
report, open the UI.

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

from .errors import (EXIT_BAD_INPUT, EXIT_ENV, EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, LaunchError,
                     LaunchInterrupted, SettingError, StoreError, TrialsFailed, UsageError)
from .spec import SweepError

from .entry import RESUME_HINT, interrupted  # noqa: F401  (RESUME_HINT: set by `run`)


def _err(msg: str) -> None:
    print(f"ablate: error: {msg}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with one line, and suggests the flag meant."""

    def error(self, message: str):  # noqa: D102
        self.print_usage(sys.stderr)
        _err(f"{self.prog}: {message}")
        raise SystemExit(EXIT_BAD_INPUT)


def _add_run(sub) -> None:
    from .cli_run import cmd_run

    r = sub.add_parser("run", help="run a sweep file on Ray Tune (local Ray unless --address)")
    r.add_argument("sweep", help="sweep or suite file (YAML)")
    r.add_argument("--only", action="append", metavar="STUDY", help="in a suite file, run only this study (repeatable)")
    r.add_argument("--address", help="Ray cluster: 'auto' (started on this machine) or HOST:PORT (default: local)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a task or sweep key (repeatable)")
    r.add_argument("--smoke", action="store_true", help="one seed (first look), few epochs, little data")
    r.add_argument("--resume", action="store_true", help="continue the last launch of this sweep (Tuner.restore)")
    r.add_argument("--dry-run", action="store_true", help="print the expanded trial list and counts, run nothing")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite store in ./ablate_runs)")
    r.add_argument("--no-table", action="store_true", help="do not print the table at the end")
    r.add_argument("--plot", metavar="PNG", help="also write the ablation plot here (suites: one file per study)")
    r.add_argument("-v", "--verbose", action="store_true", help="Tune's full progress and the trials' logs")
    r.set_defaults(func=cmd_run)


def _add_trial(sub) -> None:
    from .cli_run import cmd_trial

    t = sub.add_parser("trial", help="run one trial in-process, without Ray")
    t.add_argument("sweep", nargs="?", help="sweep file (or use --from-run)")
    t.add_argument("--only", action="append", metavar="STUDY", help="in a suite file, the study to take the trial from")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="pick the cell / override keys")
    t.add_argument("--seed", type=int, help="replicate seed (default: the sweep's first)")
    t.add_argument("--smoke", action="store_true", help="the sweep's --smoke settings")
    t.add_argument("--from-run", metavar="RUN_ID", help="rerun a recorded MLflow run and compare its metric")
    t.add_argument("--tracking-uri", help="store of --from-run (default as for run)")
    t.set_defaults(func=cmd_trial)


def _add_readers(sub) -> None:
    from .cli_read import cmd_plot, cmd_table

    for name, fn, helptext in (("table", cmd_table, "print the ablation table of a sweep"),
                               ("plot", cmd_plot, "draw the ablation plot of a sweep (PNG)")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("sweep", help="sweep name (MLflow experiment), suite name, or sweep file")
        s.add_argument("--metric", help="metric to tabulate (default: the sweep's)")
        s.add_argument("--launch", default="latest", help="launch id, 'latest' (default) or 'all'")
        s.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite store in ./ablate_runs)")
        if name == "table":
            s.add_argument("--format", choices=("md", "latex", "csv"), default="md")
            s.add_argument("--paper", action="store_true", help="also print the paper's published numbers beside ours")
        else:
            s.add_argument("-o", "--output", help="PNG path (default: SWEEP.png; suites: one file per study)")
            s.add_argument("--kind", choices=("auto", "interaction"), default="auto",
                           help="'interaction': an interaction plot of a two-axis grid")
        s.set_defaults(func=fn)


def _add_report(sub) -> None:
    from .cli_read import cmd_report

    r = sub.add_parser("report", help="write the self-contained HTML report of a launch (or a suite)")
    r.add_argument("sweep", help="sweep name (MLflow experiment), suite name, or sweep file")
    r.add_argument("-o", "--output", help="HTML path (default: SWEEP.html)")
    r.add_argument("--launch", default="latest", help="launch id, 'latest' (default) or 'all'")
    r.add_argument("--metric", help="metric of the table (default: the sweep's)")
    r.add_argument("--ui-url", default="http://127.0.0.1:5000", help="MLflow UI base URL for the run links")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite store in ./ablate_runs)")
    r.set_defaults(func=cmd_report)


def _add_misc(sub) -> None:
    from .cli_read import cmd_tasks, cmd_ui

    u = sub.add_parser("ui", help="open the MLflow UI on the run store (127.0.0.1)")
    u.add_argument("--tracking-uri", help="store to show (default: sqlite store in ./ablate_runs)")
    u.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    u.set_defaults(func=cmd_ui)

    k = sub.add_parser("tasks", help="list tasks, or the keys of one task")
    k.add_argument("name", nargs="?")
    k.set_defaults(func=cmd_tasks)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ablate", description="Ray-distributed ablation sweeps for layer research")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_add_run, _add_trial, _add_readers, _add_report, _add_misc):
        add(sub)
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
    import signal

    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupted)      # main() called directly (python -m sweeps.cli)
    try:
        if argv is None and hasattr(signal, "SIGPIPE"):
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # `ablate table X | head` exits quietly
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")   # MLflow 3 refuses plain file stores otherwise
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        args = _parse(build_parser(), argv)
        return _dispatch(args)
    except KeyboardInterrupt:            # a second Ctrl-C inside a Tune run (see sweeps/phase.py)
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
