"""The commands that only read the store: ``table``, ``plot``, ``ui``, ``tasks``
(and the table ``run`` prints at the end).  None of them creates a store: a
missing one is reported (exit 3), as are names that are not in it (exit 2)."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from .errors import UsageError


def _warn(msg: str) -> None:
    print(f"ablate: warning: {msg}", file=sys.stderr, flush=True)


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
    from . import tracking

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
            _warn(f"{name}: {note}")
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


def cmd_table(args) -> int:
    from analysis.tables import render

    tables, _ = load_tables(args.sweep, args.tracking_uri, args.launch, args.metric)
    if args.format == "csv" and len(tables) > 1:
        from analysis.tables import render_suite_csv

        sys.stdout.write(render_suite_csv([(n, t) for n, _, t in tables]))
        return 0
    for name, runs, table in tables:
        if len(tables) > 1 or args.paper:
            print(f"\n{name}" if args.format == "md" else f"% {name}")
        print(render(table, args.format))
        if args.paper:
            from analysis.paper import compare

            print(compare(name, table, args.format, runs=runs))
    if len(tables) > 1 and args.format != "csv":
        from analysis.tables import render_suite_summary

        print("\n" + render_suite_summary([(n, t) for n, _, t in tables], args.format))
    return 0


def cmd_plot(args) -> int:
    from analysis.plots import plot_ablation, plot_interaction

    tables, _ = load_tables(args.sweep, args.tracking_uri, args.launch, args.metric)
    for name, runs, table in tables:
        out = args.output or f"{name}.png"
        if len(tables) > 1 and args.output:
            p = Path(args.output)
            out = p.with_name(f"{p.stem}.{name.split('.')[-1]}{p.suffix or '.png'}")
        if args.kind == "interaction":
            try:
                print(plot_interaction(runs, table, out, title=name))
            except ValueError as e:
                raise UsageError(f"{name}: --kind interaction: {e}") from None
        else:
            print(plot_ablation(runs, table, out, title=name))
    if len(tables) > 1:
        from analysis.plots import plot_suite_ranks

        stem = Path(args.output or tables[0][0].rsplit(".", 1)[0] + ".png")
        done = plot_suite_ranks([(n, t) for n, _, t in tables],
                                stem.with_name(f"{stem.stem}.ranks{stem.suffix or '.png'}"))
        print(done if isinstance(done, Path) else f"(no critical-difference diagram: {done})")
    return 0


def cmd_report(args) -> int:
    from analysis.report import collect_study, write_report

    if not args.ui_url.startswith(("http://", "https://")):
        raise UsageError(f"--ui-url {args.ui_url!r} is not allowed: an http(s):// URL of the MLflow UI")
    tables, uri = load_tables(args.sweep, args.tracking_uri, args.launch, args.metric)
    launch = None if args.launch == "all" else args.launch
    studies = [collect_study(uri, name, launch=launch, metric=args.metric) for name, _, _ in tables]
    summary = None
    if len(tables) > 1:
        from analysis.tables import render_suite_summary

        summary = render_suite_summary([(n, t) for n, _, t in tables], "md")
    out = Path(args.output or f"{args.sweep.rsplit('/', 1)[-1].removesuffix('.yaml')}.html")
    print(write_report(studies, out, ui_url=args.ui_url.rstrip("/"), suite_summary=summary))
    return 0


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def cmd_ui(args) -> int:
    from . import tracking

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not allowed: a port in 1..65535")
    uri = tracking.resolve_uri(args.tracking_uri, create=False)
    if uri.startswith(("http://", "https://")):
        raise UsageError(f"the store {uri} is a tracking server already: open {uri} in a browser")
    tracking.open_store(uri, create=False)
    if not _port_free(args.port):
        raise UsageError(f"port {args.port} on 127.0.0.1 is already in use (another MLflow UI?); "
                         f"stop it or pass --port N")
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {uri}); Ctrl-C stops it", file=sys.stderr, flush=True)
    os.execve(sys.executable, cmd, env)
    return 0


def cmd_tasks(args) -> int:
    from tasks import available_tasks, get_task

    if args.name and args.name not in available_tasks():
        raise UsageError(f"unknown task {args.name!r}; tasks: {', '.join(available_tasks())}")
    for n in [args.name] if args.name else available_tasks():
        t = get_task(n)
        print(f"{t.name}: {t.description}  [{t.paper}]")
        if args.name:
            _print_task_keys(t)
    return 0


def _show(v) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, str):
        return v if v else '""'
    return f"{v:g}" if isinstance(v, float) else str(v)


def _print_task_keys(t) -> None:
    print(f"\nmetrics: {', '.join(f'{m} ({d})' for m, d in t.metrics.items())}\n")
    rows = [("key", "default", "allowed", "meaning")]
    for k, p in sorted(t.params.items()):
        allowed = ("one of " + ", ".join(_show(c) for c in p.choices)) if p.choices else p.allowed()
        cond = ("; only when " + ", ".join(f"{a} in {{{', '.join(map(_show, vs))}}}" for a, vs in p.when.items())
                if p.when else "")
        rows.append((k, _show(p.default), allowed, p.doc + cond))
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    for r in rows:
        print(f"  {r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:<{w[2]}}  {r[3]}".rstrip())
