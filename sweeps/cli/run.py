"""``ablate run SWEEP`` (sweeps/errors.py has the exit codes).

A suite run records one suite launch id (``<home>/<suite>.suite.json``) and
stamps it into every study's launch state, so ``--resume`` resumes the studies
that launch started, starts the ones it never reached, and never mistakes a
study's older, complete launch for part of this one.
"""
from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, Optional

from ..errors import EXIT_FAILED, EXIT_INTERRUPTED, UsageError
from . import signals
from .common import load_studies


def add(sub) -> None:
    r = sub.add_parser("run", help="run a sweep file on Ray Tune (local Ray unless --address)")
    r.add_argument("sweep", help="sweep or suite file (YAML)")
    r.add_argument("--only", action="append", metavar="STUDY", help="in a suite file, run only this study (repeatable)")
    r.add_argument("--address", help="Ray cluster: 'auto' (started on this machine) or HOST:PORT (default: local)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a task or sweep key (repeatable)")
    r.add_argument("--smoke", action="store_true", help="one seed (first look), few epochs, little data")
    r.add_argument("--resume", action="store_true", help="continue the last launch of this sweep (Tuner.restore)")
    r.add_argument("--retry-failed", action="store_true",
                   help="rerun only the FAILED trials of the last launch (or --launch ID) under its parent run")
    r.add_argument("--extend", nargs="?", const="latest", metavar="ID",
                   help="add to launch ID (default: the last) the trials the sweep file now has and it lacks")
    r.add_argument("--launch", metavar="ID", help="with --retry-failed: the launch to retry (default: the last)")
    r.add_argument("--dry-run", action="store_true", help="print the expanded trial list and counts, run nothing")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite store in ./ablate_runs)")
    r.add_argument("--no-table", action="store_true", help="do not print the table at the end")
    r.add_argument("--plot", metavar="PNG", help="also write the ablation plot here (suites: one file per study)")
    r.add_argument("-v", "--verbose", action="store_true", help="Tune's full progress and the trials' logs")
    r.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from ..runner.cluster import check_address

    check_address(args.address)
    grow = _grow_flags(args)
    studies = load_studies(args)
    if grow and len(studies) > 1:
        raise UsageError(f"--{'retry-failed' if grow == 'retry' else 'extend'} grows one study's launch; "
                         f"pick it with --only STUDY")
    checked = _preflight(studies)
    if args.dry_run:
        from .plan import print_plan

        for study in studies:
            print_plan(study, verbose=args.verbose, header=len(studies) > 1, checked=checked[study.name])
        return 0
    from ..runner.progress import interval_s

    interval_s(sys.stdout.isatty())          # a bad ABLATE_PROGRESS_S is exit 2 before Ray or a run starts
    suite = _suite_plan(studies, args.resume) if len(studies) > 1 else {s.name: (args.resume, None) for s in studies}
    rc = 0
    for study in studies:
        if len(studies) > 1:
            print(f"\n=== {study.name} ({study.task.name}) ===", flush=True)
        resume, suite_launch = suite[study.name]
        one = _run_one(study, args, resume, suite_launch, grow, plot=_plot_path(args.plot, study, len(studies)))
        if one == EXIT_INTERRUPTED:
            return one                 # Ctrl-C stops the suite too; --resume picks up each study
        rc = max(rc, one)
    return rc


def _grow_flags(args) -> Optional[str]:
    """"retry" (--retry-failed), "extend" (--extend) or None; UsageError for flags that do not go together."""
    if args.launch is not None and not args.retry_failed:
        raise UsageError("--launch ID goes with --retry-failed (--extend takes the id itself: --extend ID)")
    if args.retry_failed and args.extend is not None:
        raise UsageError("--retry-failed and --extend: run one, then the other")
    grow = "retry" if args.retry_failed else "extend" if args.extend is not None else None
    flag = "--retry-failed" if args.retry_failed else "--extend"
    if grow and args.resume:
        raise UsageError(f"{flag} and --resume: --resume alone finishes an interrupted {flag}")
    if grow and args.dry_run:
        raise UsageError(f"{flag} and --dry-run do not go together yet: {flag} prints what it reruns as it starts")
    return grow


def _preflight(studies) -> Dict[str, list]:
    """Every component configuration of every study built and run through its slot's contract, before Ray
    starts or any MLflow run exists (SweepError: exit 2); study name → what was checked."""
    from ..language.preflight import preflight, summary

    t0, out = time.perf_counter(), {}
    for study in studies:
        out[study.name] = preflight(study)
    n = sum(len(v) for v in out.values())
    if n:
        print(summary([c for v in out.values() for c in v], time.perf_counter() - t0), flush=True)
    return out


def _suite_file(studies) -> Path:
    from ..runner import tracking

    return tracking.ensure_home() / f"{studies[0].name.rsplit('.', 1)[0]}.suite.json"


def _suite_plan(studies, resume: bool) -> Dict[str, tuple]:
    """study name → (resume this study?, suite launch id)."""
    from ..runner.launch import read_state

    f = _suite_file(studies)
    if not resume:
        sid = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        f.write_text(json.dumps({"suite_launch": sid, "studies": [s.name for s in studies]}, indent=1))
        return {s.name: (False, sid) for s in studies}
    if not f.exists():
        raise UsageError(f"--resume: no earlier launch of suite {f.stem.removesuffix('.suite')!r} "
                         f"(no {f}); run without --resume")
    sid = json.loads(f.read_text())["suite_launch"]
    out = {}
    for s in studies:
        st = read_state(s)
        started = st is not None and st.suite_launch == sid
        if not started:
            print(f"{s.name}: not started by suite launch {sid}; starting it now", flush=True)
        out[s.name] = (started, sid)
    return out


def _plot_path(plot: Optional[str], study, n: int) -> Optional[str]:
    """``--plot FILE`` on a suite: FILE's stem + the study key, one file per study."""
    if not plot or n == 1:
        return plot
    p = Path(plot)
    return str(p.with_name(f"{p.stem}.{study.name.split('.')[-1]}{p.suffix or '.png'}"))


def _run_one(study, args, resume: bool, suite_launch: Optional[str], grow: Optional[str],
             plot: Optional[str]) -> int:
    from ..runner.launch import launch

    signals.set_resume_hint(f"`ablate run {args.sweep} --resume`")
    summary = launch(study, address=args.address, tracking_uri=args.tracking_uri, resume=resume,
                     verbose=2 if args.verbose else 1, suite_launch=suite_launch, grow=grow,
                     launch_id=args.launch if grow == "retry" else args.extend)
    c = summary["counts"]
    if summary.get("nothing"):
        print(f"{study.name}: {summary['nothing']}")
    elif summary.get("complete_before"):
        print(f"{study.name}: launch {summary['launch']} is already complete; nothing to resume")
    for phase, pc in summary["phases"].items():
        if phase != "final":
            print(f"{study.name}: {phase} phase: {pc['trials']} trials, {pc['finished']} finished, "
                  f"{pc['failed']} failed")
    print(f"\n{study.name}: {c.get('trials', 0)} final trials, {c.get('finished', 0)} finished, "
          f"{c.get('failed', 0)} failed (launch {summary['launch']}; MLflow {summary['uri']})", flush=True)
    if not args.no_table:
        from .common import print_launch_table

        print_launch_table(study.experiment, summary["uri"], summary["launch"], plot=plot, title=study.name)
    if summary.get("report"):
        print(f"report: {summary['report']} (also artifact report.html of MLflow run {summary['parent_run_id']})")
    return 0 if c.get("failed", 0) == 0 else EXIT_FAILED
