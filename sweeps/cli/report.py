"""``ablate report SWEEP``: the self-contained HTML report of a launch (or a suite); with ``--experiment`` /
``--csv`` and a mapping, of runs ablate did not launch (the page marked so, with the source and the mapping)."""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .common import add_source_args, load_any


def add(sub) -> None:
    r = sub.add_parser("report", help="write the self-contained HTML report of a launch (or a suite)")
    add_source_args(r, "report")
    r.add_argument("-o", "--output", help="HTML path (default: SWEEP.html, or the experiment's / CSV's name)")
    r.add_argument("--ui-url", default="http://127.0.0.1:5000", help="MLflow UI base URL for the run links")
    r.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from analysis.report import collect_study, write_report

    if not args.ui_url.startswith(("http://", "https://")):
        raise UsageError(f"--ui-url {args.ui_url!r} is not allowed: an http(s):// URL of the MLflow UI")
    tables, uri, external = load_any(args)
    if external:
        from analysis.api import report_study

        name, runs, table = tables[0]
        out = Path(args.output or f"{name}.html")
        print(write_report([report_study(runs, table)], out, title=f"ablate report: {name} (external runs)",
                           ui_url=args.ui_url.rstrip("/")))
        return 0
    studies = [collect_study(uri, name, launch=runs.attrs.get("launch"), metric=args.metric,
                             pooled=(runs, table) if "pool_differences" in runs.attrs else None)
               for name, runs, table in tables]
    summary = None
    if len(tables) > 1:
        from analysis.tables import render_suite_summary

        summary = render_suite_summary([(n, t) for n, _, t in tables], "md")
    out = Path(args.output or f"{args.sweep.rsplit('/', 1)[-1].removesuffix('.yaml')}.html")
    print(write_report(studies, out, ui_url=args.ui_url.rstrip("/"), suite_summary=summary))
    return 0
