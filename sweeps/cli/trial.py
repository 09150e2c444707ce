"""``ablate trial``: one trial in-process, without Ray, through the same ``run_trial`` a sweep uses; or
``--from-run RUN_ID``: rerun a recorded run and compare (sweeps/runner/rerun.py)."""
from __future__ import annotations

import json
import sys
from typing import Optional

from ..errors import UsageError


def add(sub) -> None:
    t = sub.add_parser("trial", help="run one trial in-process, without Ray")
    t.add_argument("sweep", nargs="?", help="sweep file (or use --from-run)")
    t.add_argument("--only", action="append", metavar="STUDY", help="in a suite file, the study to take the trial from")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="pick the cell / override keys")
    t.add_argument("--seed", type=int, help="replicate seed (default: the sweep's first)")
    t.add_argument("--smoke", action="store_true", help="the sweep's --smoke settings")
    t.add_argument("--from-run", metavar="RUN_ID", help="rerun a recorded MLflow run and compare its metric")
    t.add_argument("--tracking-uri", help="store of --from-run (default as for run)")
    t.set_defaults(func=cmd_trial)


def cmd_trial(args) -> int:
    if args.from_run:
        if args.sweep or args.set or args.seed is not None or args.smoke or args.only:
            raise UsageError("--from-run reruns a recorded run as it was: give no sweep file, --set, --seed, "
                             "--smoke or --only with it")
        from ..runner.rerun import rerun_recorded

        return rerun_recorded(args.from_run, args.tracking_uri)
    if not args.sweep:
        raise UsageError("give a sweep file or --from-run RUN_ID")
    studies = _load_studies(args)
    if len(studies) != 1:
        raise UsageError(f"{args.sweep} is a suite of {len(studies)} studies; pick one with --only "
                         + "|".join(s.name.split(".")[-1] for s in studies))
    return _trial_of(studies[0], args.seed)


def _load_studies(args) -> list:
    """The sweep file's studies after --set / --smoke / --only, as ``ablate run`` reads them, without the
    language's warnings: those say what a --set does to the sweep's grid (the baseline cell narrowed away, so
    its table has no Δ; a nuisance key fixed, so no longer tuned).  A trial runs the one cell its --set picks
    and has neither a table nor a search, so there is nothing for its user to act on."""
    from ..language.load import load_all, parse_assignments

    try:
        overrides = parse_assignments(args.set or [])
    except ValueError as e:
        raise UsageError(str(e)) from None
    return load_all(args.sweep, overrides=overrides, smoke=args.smoke, only=args.only)


def _trial_of(study, seed: Optional[int]) -> int:
    from ..language.expand import baseline_cell, cells
    from ..runner.trial import LocalReporter, run_trial

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
