"""``ablate run`` and ``ablate trial`` (see sweeps/cli.py for the exit codes).

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

from .errors import EXIT_FAILED, EXIT_INTERRUPTED, UsageError
from .spec import load_all, parse_assignments


def _warn(msg: str) -> None:
    print(f"ablate: warning: {msg}", file=sys.stderr, flush=True)


def load_studies(args) -> list:
    """Studies of the sweep file after --set / --smoke / --only (SweepError → exit 2)."""
    try:
        overrides = parse_assignments(getattr(args, "set", None) or [])
    except ValueError as e:
        raise UsageError(str(e)) from None
    studies = load_all(args.sweep, overrides=overrides, smoke=args.smoke, only=getattr(args, "only", None))
    for w in dict.fromkeys(w for s in studies for w in s.warnings):
        _warn(w)
    return studies


def cmd_run(args) -> int:
    from .cluster import check_address

    check_address(args.address)
    studies = load_studies(args)
    if args.dry_run:
        from .plan import print_plan

        for study in studies:
            print_plan(study, verbose=args.verbose, header=len(studies) > 1)
        return 0
    suite = _suite_plan(studies, args.resume) if len(studies) > 1 else {s.name: (args.resume, None) for s in studies}
    rc = 0
    for study in studies:
        if len(studies) > 1:
            print(f"\n=== {study.name} ({study.task.name}) ===", flush=True)
        resume, suite_launch = suite[study.name]
        one = _run_one(study, args, resume, suite_launch, plot=_plot_path(args.plot, study, len(studies)))
        if one == EXIT_INTERRUPTED:
            return one                 # Ctrl-C stops the suite too; --resume picks up each study
        rc = max(rc, one)
    return rc


def _suite_file(studies) -> Path:
    from . import tracking

    return tracking.ensure_home() / f"{studies[0].name.rsplit('.', 1)[0]}.suite.json"


def _suite_plan(studies, resume: bool) -> Dict[str, tuple]:
    """study name → (resume this study?, suite launch id)."""
    from .run import read_state

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
        started = st is not None and st.get("suite_launch") == sid
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


def _run_one(study, args, resume: bool, suite_launch: Optional[str], plot: Optional[str]) -> int:
    from . import cli
    from .run import launch

    cli.RESUME_HINT[:] = [f"`ablate run {args.sweep} --resume`"]
    summary = launch(study, address=args.address, tracking_uri=args.tracking_uri, resume=resume,
                     verbose=2 if args.verbose else 1, suite_launch=suite_launch)
    c = summary["counts"]
    if summary.get("complete_before"):
        print(f"{study.name}: launch {summary['launch']} is already complete; nothing to resume")
    for phase, pc in summary["phases"].items():
        if phase != "final":
            print(f"{study.name}: {phase} phase: {pc['trials']} trials, {pc['finished']} finished, "
                  f"{pc['failed']} failed")
    print(f"\n{study.name}: {c.get('trials', 0)} final trials, {c.get('finished', 0)} finished, "
          f"{c.get('failed', 0)} failed (launch {summary['launch']}; MLflow {summary['uri']})", flush=True)
    if not args.no_table:
        from .cli_read import print_launch_table

        print_launch_table(study.experiment, summary["uri"], summary["launch"], plot=plot, title=study.name)
    if summary.get("report"):
        print(f"report: {summary['report']} (also artifact report.html of MLflow run {summary['parent_run_id']})")
    return 0 if c.get("failed", 0) == 0 else EXIT_FAILED


def cmd_trial(args) -> int:
    if args.from_run:
        if args.sweep or args.set or args.seed is not None or args.smoke or args.only:
            raise UsageError("--from-run reruns a recorded run as it was: give no sweep file, --set, --seed, "
                             "--smoke or --only with it")
        from .rerun import rerun_recorded

        return rerun_recorded(args.from_run, args.tracking_uri)
    if not args.sweep:
        raise UsageError("give a sweep file or --from-run RUN_ID")
    studies = load_studies(args)
    if len(studies) != 1:
        raise UsageError(f"{args.sweep} is a suite of {len(studies)} studies; pick one with --only "
                         + "|".join(s.name.split(".")[-1] for s in studies))
    return _trial_of(studies[0], args.seed)


def _trial_of(study, seed: Optional[int]) -> int:
    from .expand import baseline_cell, cells
    from .trial import LocalReporter, run_trial

    cs = cells(study)
    if study.nuisance:
        raise UsageError(f"{study.file}: nuisance keys {', '.join(study.nuisance)} are tuned by the sweep; "
                         f"pick values with --set {next(iter(study.nuisance))}=VALUE")
    if len(cs) > 1:
        base = baseline_cell(study, cs)
        if base is None:
            raise UsageError(f"the sweep has {len(cs)} cells; choose one with --set, e.g. "
                             + " ".join(f"--set {k}={v}" for k, v in cs[0].values.items()))
        cs = [base]
    seed = seed if seed is not None else study.seeds[0]
    if not 0 <= seed <= 2**31 - 1:
        raise UsageError(f"--seed {seed} is not allowed: seeds are integers in [0, 2147483647]")
    config = study.task.resolve({**cs[0].config, "seed": seed})
    print(f"trial {cs[0].id} seed={seed} ({study.task.name}) in-process", file=sys.stderr)
    final = run_trial(study.task.name, config, LocalReporter())
    print(json.dumps(final, indent=1))
    return 0

