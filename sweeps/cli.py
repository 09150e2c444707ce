"""``ablate``: run sweeps, rerun one trial, print tables, draw plots, open the UI.

Heavy libraries (torch, Ray, MLflow, seaborn) are imported inside the command
that needs them so that ``ablate --help`` and sweep validation stay well under
2 s.  Exit codes: 0 ok, 1 a run failed or did not reproduce, 2 bad input
(sweep file, arguments), 3 environment (tracking store unreachable, no runs).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import List, Optional

from .spec import SweepError, load_all, parse_assignments

EXIT_BAD_INPUT, EXIT_ENV, EXIT_INTERRUPTED = 2, 3, 130


def _err(msg: str) -> None:
    print(f"ablate: error: {msg}", file=sys.stderr)


def _studies_or_exit(args):
    try:
        overrides = parse_assignments(getattr(args, "set", None) or [])
    except ValueError as e:
        _err(str(e))
        raise SystemExit(EXIT_BAD_INPUT)
    try:
        return load_all(args.sweep, overrides=overrides, smoke=args.smoke, only=getattr(args, "only", None))
    except SweepError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def cmd_run(args) -> int:
    studies = _studies_or_exit(args)
    rc = 0
    for study in studies:
        if len(studies) > 1:
            print(f"\n=== {study.name} ({study.task.name}) ===")
        one = _run_one(study, args)
        if one == EXIT_INTERRUPTED:
            return one                 # Ctrl-C stops the suite too; --resume picks up each study
        rc = max(rc, one)
    return rc


def _run_one(study, args) -> int:
    from .expand import cells, final_trials

    cs = cells(study)
    finals = final_trials(study, {c.id: {k: f"<tuned:{d.describe()}>" for k, d in study.nuisance.items()}
                                  for c in cs} if study.nuisance else None)
    n_search = len(cs) * study.search["trials_per_cell"] if study.nuisance else 0
    if args.dry_run:
        print(f"sweep {study.name} ({study.file}), task {study.task.name}, metric {study.metric} ({study.mode})"
              f"{' [smoke]' if study.smoke else ''}")
        if study.nuisance:
            print(f"search phase: {len(cs)} cells × {study.search['trials_per_cell']} Optuna TPE trials "
                  f"(seed {study.search['seed']}, scheduler {study.search['scheduler']}) over "
                  + ", ".join(f"{k}~{d.describe()}" for k, d in study.nuisance.items()))
        print(f"final phase: {len(cs)} cells × {len(study.seeds)} seeds = {len(finals)} trials")
        for i, t in enumerate(finals):
            base = " (baseline)" if study.baseline and all(t.cell.values.get(k) == v for k, v in study.baseline.items()) else ""
            print(f"  [{i:3d}] {t.cell.id} seed={t.seed}{base}")
        print(f"total: {n_search + len(finals)} trials ({n_search} search + {len(finals)} final); "
              f"resources per trial: {study.resources}")
        if args.verbose:
            print(json.dumps(finals[0].config, indent=1, default=str))
        return 0
    from .run import LaunchError, LaunchInterrupted, launch

    try:
        summary = launch(study, address=args.address, tracking_uri=args.tracking_uri, resume=args.resume,
                         verbose=2 if args.verbose else 1)
    except (ConnectionError, LaunchError) as e:
        _err(str(e))
        return EXIT_ENV
    except LaunchInterrupted as e:
        _err(str(e))
        return EXIT_INTERRUPTED
    c = summary["counts"]
    print(f"\n{study.name}: {c.get('trials', 0)} final trials, {c.get('finished', 0)} finished, "
          f"{c.get('failed', 0)} failed (launch {summary['launch']}; MLflow {summary['uri']})")
    if not args.no_table:
        from analysis.store import load_runs
        from analysis.tables import ablation_table, render

        runs = load_runs(study.experiment, summary["uri"], launch=summary["launch"])
        print(render(ablation_table(runs), "md"))
        if args.plot:
            from analysis.plots import plot_ablation

            print(f"plot: {plot_ablation(runs, ablation_table(runs), args.plot, title=study.name)}")
    return 0 if c.get("failed", 0) == 0 else 1


def cmd_trial(args) -> int:
    from .trial import LocalReporter, run_trial

    if args.from_run:
        from . import tracking
        from tasks import get_task

        uri = tracking.resolve_uri(args.tracking_uri)
        try:
            run = tracking.client(uri).get_run(args.from_run)
        except Exception as e:  # noqa: BLE001
            _err(f"cannot read run {args.from_run} from {uri}: {e}")
            return EXIT_ENV
        task = get_task(run.data.tags["ablate.task"])
        config = task.resolve(dict(run.data.params))
        metric = run.data.tags.get("ablate.metric")
        recorded = run.data.metrics.get(metric) if metric else None
        print(f"rerunning run {args.from_run} ({run.data.tags.get('ablate.cell')}, seed {config['seed']}) in-process",
              file=sys.stderr)
        final = run_trial(task.name, config, LocalReporter())
        print(json.dumps(final, indent=1))
        if recorded is not None:
            got = final.get(metric)
            same = got == recorded
            print(f"{metric}: recorded {recorded!r}, rerun {got!r} -> {'reproduced exactly' if same else 'DIFFERENT'}")
            return 0 if same else 1
        return 0
    if not args.sweep:
        _err("give a sweep file or --from-run RUN_ID")
        return EXIT_BAD_INPUT
    studies = _studies_or_exit(args)
    if len(studies) != 1:
        _err(f"{args.sweep} is a suite of {len(studies)} studies; pick one with --only "
             + "|".join(s.name.split(".")[-1] for s in studies))
        return EXIT_BAD_INPUT
    study = studies[0]
    from .expand import cells

    cs = cells(study)
    if study.nuisance:
        _err(f"{study.file}: nuisance keys {', '.join(study.nuisance)} are tuned by the sweep; "
             f"pick values with --set {next(iter(study.nuisance))}=VALUE")
        return EXIT_BAD_INPUT
    if len(cs) > 1:
        base = [c for c in cs if study.baseline and all(c.values.get(k) == v for k, v in study.baseline.items())]
        if not base:
            _err(f"the sweep has {len(cs)} cells; choose one with --set, e.g. "
                 + " ".join(f"--set {k}={v}" for k, v in cs[0].values.items()))
            return EXIT_BAD_INPUT
        cs = base
    seed = args.seed if args.seed is not None else study.seeds[0]
    if seed < 0:
        _err(f"--seed {seed} is not allowed: seeds are integers >= 0")
        return EXIT_BAD_INPUT
    config = study.task.resolve({**cs[0].config, "seed": seed})
    print(f"trial {cs[0].id} seed={seed} ({study.task.name}) in-process", file=sys.stderr)
    final = run_trial(study.task.name, config, LocalReporter())
    print(json.dumps(final, indent=1))
    return 0


def _resolve_sweep_names(arg: str, cli_uri: Optional[str]):
    """A sweep is named by its experiment name, a suite name, or its sweep file;
    returns ([experiment names], tracking uri)."""
    from . import tracking

    file_uri, names = None, [arg]
    if arg.endswith((".yaml", ".yml")) and Path(arg).exists():
        import yaml

        raw = yaml.safe_load(Path(arg).read_text()) or {}
        file_uri = ((raw.get("defaults") or raw).get("tracking") or {}).get("uri")
        if "studies" in raw:
            names = [f"{raw.get('name')}.{k}" for k in raw["studies"]]
        else:
            names = [(raw.get("tracking") or {}).get("experiment") or raw.get("name", arg)]
    uri = tracking.resolve_uri(cli_uri, file_uri)
    if len(names) == 1:
        c = tracking.client(uri)
        if c.get_experiment_by_name(names[0]) is None:
            suite = sorted(e.name for e in c.search_experiments() if e.name.startswith(names[0] + "."))
            names = suite or names
    return names, uri


def _load_tables(args):
    from analysis.store import load_runs
    from analysis.tables import ablation_table

    names, uri = _resolve_sweep_names(args.sweep, args.tracking_uri)
    launch = None if args.launch == "all" else args.launch
    out = []
    for name in names:
        runs = load_runs(name, uri, launch=launch)
        out.append((name, runs, ablation_table(runs, metric=args.metric)))
    return out


def _tables_or_exit(args):
    try:
        return _load_tables(args)
    except LookupError as e:
        _err(str(e).strip('"'))
        raise SystemExit(EXIT_ENV)
    except KeyError as e:
        _err(str(e).strip('"'))
        raise SystemExit(EXIT_BAD_INPUT)


def cmd_table(args) -> int:
    from analysis.tables import render

    tables = _tables_or_exit(args)
    for name, runs, table in tables:
        if len(tables) > 1 or args.paper:
            print(f"\n{name}" if args.format == "md" else f"% {name}")
        print(render(table, args.format))
        if args.paper:
            from analysis.paper import compare

            print(compare(name, table, args.format, runs=runs))
    return 0


def cmd_plot(args) -> int:
    from analysis.plots import plot_ablation

    tables = _tables_or_exit(args)
    for name, runs, table in tables:
        out = args.output or f"{name}.png"
        if len(tables) > 1 and args.output:
            p = Path(args.output)
            out = p.with_name(f"{p.stem}.{name.split('.')[-1]}{p.suffix or '.png'}")
        print(plot_ablation(runs, table, out, title=name))
    return 0


def cmd_ui(args) -> int:
    from . import tracking

    uri = tracking.resolve_uri(args.tracking_uri)
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {uri}); Ctrl-C stops it", file=sys.stderr)
    os.execve(sys.executable, cmd, env)
    return 0


def cmd_tasks(args) -> int:
    from tasks import available_tasks, get_task

    names = [args.name] if args.name else available_tasks()
    for n in names:
        try:
            t = get_task(n)
        except KeyError as e:
            _err(str(e).strip('"'))
            return EXIT_BAD_INPUT
        print(f"{t.name}: {t.description}  [{t.paper}]")
        if args.name:
            print(f"  metrics: {', '.join(f'{m} ({d})' for m, d in t.metrics.items())}")
            for k, p in sorted(t.params.items()):
                cond = f"  (only when {p.when})" if p.when else ""
                print(f"  {k:24s} default {p.default!r:10s} {p.allowed()}  {p.doc}{cond}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ablate", description="Ray-distributed ablation sweeps for layer research")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a sweep file on Ray Tune (local Ray unless --address)")
    r.add_argument("sweep")
    r.add_argument("--only", action="append", metavar="STUDY", help="in a suite file, run only this study (repeatable)")
    r.add_argument("--address", help="Ray cluster address (default: start a local Ray instance)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a task or sweep key (repeatable)")
    r.add_argument("--smoke", action="store_true", help="one seed, few epochs, little data")
    r.add_argument("--resume", action="store_true", help="continue the last launch of this sweep (Tuner.restore)")
    r.add_argument("--dry-run", action="store_true", help="print the expanded trial list and counts, run nothing")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite store in ./ablate_runs)")
    r.add_argument("--no-table", action="store_true", help="do not print the table at the end")
    r.add_argument("--plot", metavar="PNG", help="also write the ablation plot here")
    r.add_argument("-v", "--verbose", action="store_true")
    r.set_defaults(func=cmd_run)

    t = sub.add_parser("trial", help="run one trial in-process, without Ray")
    t.add_argument("sweep", nargs="?")
    t.add_argument("--only", action="append", metavar="STUDY", help="in a suite file, the study to take the trial from")
    t.add_argument("--set", action="append", metavar="KEY=VALUE")
    t.add_argument("--seed", type=int)
    t.add_argument("--smoke", action="store_true")
    t.add_argument("--from-run", metavar="RUN_ID", help="rerun a recorded MLflow run and compare its metric")
    t.add_argument("--tracking-uri")
    t.set_defaults(func=cmd_trial)

    for name, fn, helptext in (("table", cmd_table, "print the ablation table of a sweep"),
                               ("plot", cmd_plot, "draw the ablation plot of a sweep (PNG)")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("sweep", help="sweep name (MLflow experiment) or sweep file")
        s.add_argument("--metric", help="metric to tabulate (default: the sweep's)")
        s.add_argument("--launch", default="latest", help="launch id, 'latest' (default) or 'all'")
        s.add_argument("--tracking-uri")
        if name == "table":
            s.add_argument("--format", choices=("md", "latex", "csv"), default="md")
            s.add_argument("--paper", action="store_true", help="also print the paper's published numbers beside ours")
        else:
            s.add_argument("-o", "--output", help="PNG path (default: SWEEP.png)")
        s.set_defaults(func=fn)

    u = sub.add_parser("ui", help="open the MLflow UI on the run store (127.0.0.1)")
    u.add_argument("--tracking-uri")
    u.add_argument("--port", type=int, default=5000)
    u.set_defaults(func=cmd_ui)

    k = sub.add_parser("tasks", help="list tasks, or the keys of one task")
    k.add_argument("name", nargs="?")
    k.set_defaults(func=cmd_tasks)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    import signal

    if argv is None and hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)   # `ablate table X | head` exits quietly
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
