"""``ablate report SWEEP``: the self-contained HTML report of a launch (or a suite)."""
from __future__ import annotations

from pathlib import Path

from ..errors import UsageError
from .common import load_tables


def add(sub) -> None:
    r = sub.add_parser("report", help="write the self-contained HTML report of a launch (or a suite)")
    r.add_argument("sweep", help="sweep name (MLflow experiment), suite name, or sweep file")
    r.add_argument("-o", "--output", help="HTML path (default: SWEEP.html)")
    r.add_argument("--launch", default="latest", help="launch id, 'latest' (default) or 'all'")
    r.add_argument("--metric", help="metric of the table (default: the sweep's)")
    r.add_argument("--ui-url", default="http://127.0.0.1:5000", help="MLflow UI base URL for the run links")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite store in ./ablate_runs)")
    r.set_defaults(func=cmd_report)


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
