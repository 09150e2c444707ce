"""What several commands share: reading a sweep file's studies (``run``, ``trial``) and a sweep's runs and
tables from the store (``table``, ``plot``, ``report``, and the table ``run`` prints at the end).  None of the
readers creates a store: a missing one is reported (exit 3), as are names that are not in it (exit 2)."""
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
    import yaml

    try:
        raw = yaml.safe_load(Path(arg).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"cannot read sweep file {arg}: {getattr(e, 'strerror', None) or e}") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{arg} is not a sweep file (a YAML mapping)")
    return raw


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
        c = tracking.client(uri)
        if c.get_experiment_by_name(names[0]) is None:
            suite = sorted(e.name for e in c.search_experiments() if e.name.startswith(names[0] + "."))
            names = suite or names
    return names, uri


def load_tables(sweep: str, cli_uri: Optional[str], launch: str = "latest", metric: Optional[str] = None):
    """([(experiment, runs, table)], uri) of a sweep or suite; UsageError for unknown names."""
    from analysis.store import load_runs, launch_notes
    from analysis.tables import ablation_table

    names, uri = resolve_sweep_names(sweep, cli_uri)
    out = []
    for name in names:
        try:
            runs = load_runs(name, uri, launch=None if launch == "all" else launch)
            table = ablation_table(runs, metric=metric)
        except (LookupError, KeyError) as e:
            raise UsageError(str(e).strip('"')) from None
        for note in launch_notes(runs):
            warn(f"{name}: {note}")
        out.append((name, runs, table))
    return out, uri


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
        from analysis.plots import plot_ablation

        print(f"plot: {plot_ablation(runs, table, plot, title=title or experiment)}")
