"""What several commands share: reading a sweep file's studies (``run``, ``trial``) and a sweep's runs and
tables from the store (``table``, ``plot``, ``report``, and the table ``run`` prints at the end), or, for
``table``, ``plot`` and ``report``, the runs ablate did not launch (``--experiment`` / ``--csv`` with a mapping,
analysis.external).  None of the readers creates a store: a missing one is reported (exit 3), as are names that
are not in it and mappings that do not fit the runs (exit 2)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional, Tuple

from ..errors import UsageError


def warn(msg: str) -> None:
    print(f"ablate: warning: {msg}", file=sys.stderr, flush=True)


def load_studies(args) -> list:
    """Studies of the sweep file after --set / --smoke / --only (SweepError → exit 2)."""
    from ..language.load import load_all, parse_assignments

    try:
        overrides = parse_assignments(getattr(args, "set", None) or [])
    except ValueError as e:
        raise UsageError(str(e)) from None
    studies = load_all(args.sweep, overrides=overrides, smoke=args.smoke, only=getattr(args, "only", None))
    for w in dict.fromkeys(w for s in studies for w in s.warnings):
        warn(w)
    return studies


def _read_sweep_file(arg: str):
    from ..language.load import read

    return read(arg)


def resolve_sweep_names(arg: str, cli_uri: Optional[str]) -> Tuple[List[str], str]:
    """A sweep is named by its experiment name, a suite name, or its sweep file;
    returns ([experiment names], tracking uri) after checking the store exists."""
    from ..runner import tracking

    file_uri, names = None, [arg]
    if arg.endswith((".yaml", ".yml")):
        if not Path(arg).exists():
            raise UsageError(f"no such sweep file: {arg}")
        raw = _read_sweep_file(arg)
        file_uri = ((raw.get("defaults") or raw).get("tracking") or {}).get("uri")
        if "studies" in raw and isinstance(raw["studies"], dict):
            names = [f"{raw.get('name')}.{k}" for k in raw["studies"]]
        else:
            names = [(raw.get("tracking") or {}).get("experiment") or raw.get("name", arg)]
    uri = tracking.open_store(tracking.resolve_uri(cli_uri, file_uri, create=False), create=False)
    if len(names) == 1:
        from analysis.store import experiment_names, has_experiment     # a local store: without MLflow

        if not has_experiment(uri, names[0]):
            suite = sorted(n for n in experiment_names(uri) if n.startswith(names[0] + "."))
            names = suite or names
    return names, uri


LAUNCH_HELP = ("launch id, 'latest' (default), 'all' or ID1,ID2: several launches are pooled, one result per cell "
               "and seed, with the sweep file's baseline when SWEEP is a file")
FORCE_HELP = "pool launches that differ in code version (ablate.git_commit) or in a key (refused without it)"


def load_tables(sweep: str, cli_uri: Optional[str], launch: str = "latest", metric: Optional[str] = None,
                force: bool = False):
    """([(experiment, runs, table)], uri) of a sweep or suite; UsageError for unknown names.  ``launch``:
    an id, "latest", "all" or ``ID1,ID2``: several launches are pooled (analysis/pooling.py), with the sweep
    file's baseline and grid order when SWEEP is a file; launches that differ in code version or in a key
    are refused (UsageError, exit 2) unless ``force``, then pooled with a warning."""
    from analysis.pooling import parse_launch

    names, uri = resolve_sweep_names(sweep, cli_uri)
    which = parse_launch(launch)
    pooled = which is None or isinstance(which, list)
    grids = _sweep_grids(sweep) if pooled else {}
    out = []
    for name in names:
        runs, table = _read_table(name, uri, which, metric, force, grids.get(name))
        out.append((name, runs, table))
    return out, uri


def _read_table(name: str, uri: str, which, metric: Optional[str], force: bool, grid):
    """One study's runs and table: one launch (store.load_runs), or pooled launches (pooling.pool_runs)."""
    from analysis import pooling
    from analysis.store import launch_notes, load_runs
    from analysis.tables import ablation_table

    try:
        if which is None or isinstance(which, list):
            base, cells = grid if grid else (None, None)
            runs = pooling.pool_runs(name, uri, which, baseline_cell=base, grid=cells)
        else:
            runs = load_runs(name, uri, launch=which)
        why = pooling.refusal(name, runs) if "pool_differences" in runs.attrs else None
        if why and not force:
            raise UsageError(f"{why}; pass --force to pool them anyway, or --launch ID for one launch")
        table = ablation_table(runs, metric=metric)
    except (LookupError, KeyError) as e:
        raise UsageError(str(e).strip('"')) from None
    if "pool_differences" in runs.attrs:
        for note in pooling.notes(runs) + ([f"pooling anyway (--force): {why}"] if why else []):
            warn(f"{name}: {note}")
        table.attrs["notes"] = [*table.attrs.get("notes", []), pooling.footer(runs)]
    else:
        for note in launch_notes(runs):
            warn(f"{name}: {note}")
    return runs, table


def _sweep_grids(sweep: str) -> dict:
    """{experiment: (baseline cell label, [cell labels in grid order])} of a sweep file's studies, as
    ``ablate run`` labels them (sweeps/runner/launch.py launch_tags); {} for a sweep named by its experiment
    or a file that no longer loads (the pool then takes the newest launch's baseline tag)."""
    if not sweep.endswith((".yaml", ".yml")):
        return {}
    from ..errors import SweepError
    from ..language.expand import baseline_cell, cells
    from ..language.load import load_all

    try:
        studies = load_all(sweep)
    except (SweepError, UsageError) as e:
        warn(f"{sweep}: not read for the pooled table's baseline and grid order ({e}); using the newest launch's")
        return {}
    out = {}
    for st in studies:
        cs = cells(st)
        base = baseline_cell(st, cs)
        out[st.experiment] = out[st.name] = (base.id if base else "", [c.id for c in cs])
    return out


def print_launch_table(experiment: str, uri: str, launch: str, plot: Optional[str] = None, title: str = "") -> None:
    """The table (and plot) `ablate run` prints at the end of a launch."""
    from analysis.store import load_runs
    from analysis.tables import ablation_table, render

    try:
        runs = load_runs(experiment, uri, launch=launch)
    except LookupError as e:
        print(f"(no table: {e})")
        return
    table = ablation_table(runs)
    print(render(table, "md"), flush=True)
    if plot:
        from analysis.plots import NothingToPlot, plot_ablation

        try:
            print(f"plot: {plot_ablation(runs, table, plot, title=title or experiment)}")
        except NothingToPlot as e:          # every trial failed: one line, the table above lists them
            print(f"plot: {plot} not written, {e}")


# ---------------------------------------------------------------- runs ablate did not launch (issue 28)
DUPLICATES = ("refuse", "keep-last", "best")      # analysis.external.DUPLICATES (not imported: --help stays fast)
MAPPING_FLAGS = (("cells", "--cells"), ("seed_col", "--seed-col"), ("mode", "--mode"), ("baseline", "--baseline"),
                 ("where", "--where"), ("duplicates", "--duplicates"))


def add_source_args(s, command: str) -> None:
    """SWEEP (a sweep ablate launched), or --experiment / --csv and the mapping (runs it did not launch); the
    metric, launch and store flags every reading command (table, plot, report) takes."""
    s.add_argument("sweep", nargs="?", help="sweep name (MLflow experiment), suite name, or sweep file; "
                                            "or --experiment / --csv instead")
    s.add_argument("--metric", help="metric to tabulate (default: the sweep's; required with --experiment / --csv)")
    s.add_argument("--launch", help=LAUNCH_HELP)
    s.add_argument("--force", action="store_true", help=FORCE_HELP)
    s.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite store in ./ablate_runs)")
    g = s.add_argument_group(f"runs ablate did not launch ({command} --experiment NAME | --csv FILE, with --cells "
                             f"and --metric; README: Already have runs?)")
    g.add_argument("--experiment", metavar="NAME", help="an MLflow experiment (name or id) of any script's runs, "
                                                        "in the store of --tracking-uri")
    g.add_argument("--csv", metavar="FILE", help="a CSV file with one row per run")
    g.add_argument("--cells", metavar="COL[,COL]", help="the columns (MLflow params) whose values make a run's cell")
    g.add_argument("--seed-col", metavar="COL", help="the column (param) holding the seed (default: seed)")
    g.add_argument("--mode", choices=("max", "min"), help="max (default): a higher --metric is better; min")
    g.add_argument("--baseline", metavar="COL=VALUE[,COL=VALUE]", help="the cell the others are compared with "
                                                                        "(default: none, no comparisons)")
    g.add_argument("--where", metavar="EXPR", help="keep only some runs: an MLflow filter string with "
                                                   "--experiment, a pandas query with --csv")
    g.add_argument("--duplicates", choices=DUPLICATES, help="two runs of one (cell, seed): refuse (default), "
                                                            "keep-last (the later one) or best")


def is_external(args) -> bool:
    """Check SWEEP against --experiment / --csv and their flags (UsageError: exit 2); True for external runs.
    Sets ``args.launch`` to "latest" where it was not given."""
    external = args.experiment is not None or args.csv is not None
    given = [flag for dest, flag in MAPPING_FLAGS if getattr(args, dest, None) is not None]
    if args.experiment is not None and args.csv is not None:
        raise UsageError("--experiment and --csv are two sources of runs; give one of them")
    if external and args.sweep:
        raise UsageError(f"give SWEEP ({args.sweep!r}: a sweep ablate launched) or --experiment / --csv (runs it did "
                         f"not launch), not both")
    if not external and not args.sweep:
        raise UsageError("give SWEEP (the name or file of a sweep ablate launched) or --experiment NAME / --csv "
                         "FILE (runs it did not launch, with --cells and --metric)")
    if not external:
        if given:
            raise UsageError(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to runs ablate did "
                             f"not launch (--experiment / --csv); SWEEP's runs carry their cells, seeds and baseline")
        args.launch = args.launch or "latest"
        return False
    sweep_only = [flag for flag, on in (("--launch", args.launch is not None),
                                        ("--paper", getattr(args, "paper", False)),
                                        ("--tracking-uri", args.csv is not None and args.tracking_uri is not None))
                  if on]
    if sweep_only:
        raise UsageError(f"{', '.join(sweep_only)} does not apply to {'--csv' if args.csv else '--experiment'}; "
                         f"it reads {'a sweep ablate launched' if sweep_only[0] != '--tracking-uri' else 'a store'}")
    for flag, v in (("--cells", args.cells), ("--metric", args.metric)):
        if not v:
            raise UsageError(f"{flag} is required with --experiment / --csv: "
                             + ("the columns whose values make a cell, e.g. --cells model.arch,lr" if flag == "--cells"
                                else "the column to tabulate, e.g. --metric acc (and --mode min if lower is better)"))
    return True


def parse_baseline(raw: Optional[str]) -> Optional[dict]:
    """``col=value[,col=value]`` → {col: value} (values stay text: analysis.external casts them like params)."""
    if raw is None:
        return None
    out = {}
    for part in raw.split(","):
        k, eq, v = part.partition("=")
        if not eq or not k.strip():
            raise UsageError(f"--baseline {raw!r}: {part!r} is not COLUMN=VALUE; "
                             f"e.g. --baseline model.arch=resnet,lr=0.1")
        out[k.strip()] = v.strip()
    return out


def load_external(args):
    """([(name, runs, table)], uri) of --experiment / --csv under the mapping flags; UsageError for a mapping
    that does not fit the runs (analysis.external.MappingError) or an experiment not in the store."""
    from analysis.external import MappingError, RunMapping, read_csv, read_mlflow, table, to_runs

    uri = ""
    try:
        mapping = RunMapping(cells=args.cells, metric=args.metric, seed=args.seed_col or "seed",
                             mode=args.mode or "max", baseline=parse_baseline(args.baseline), where=args.where,
                             duplicates=args.duplicates or "refuse")
        if args.csv is not None:
            df, source = read_csv(args.csv)
        else:
            from ..runner import tracking

            uri = tracking.open_store(tracking.resolve_uri(args.tracking_uri, None, create=False), create=False)
            tracking.client(uri)                       # quiets the store's migration logging
            df, source = read_mlflow(args.experiment, uri, args.where)
        runs = to_runs(df, mapping, source)
        return [(source.name, runs, table(runs))], uri
    except (MappingError, LookupError) as e:
        raise UsageError(str(e)) from None


def load_any(args):
    """([(name, runs, table)], uri, external) for SWEEP or for --experiment / --csv."""
    if is_external(args):
        return (*load_external(args), True)
    return (*load_tables(args.sweep, args.tracking_uri, args.launch, args.metric, getattr(args, "force", False)),
            False)
