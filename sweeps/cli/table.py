"""``ablate table SWEEP``: the ablation table of a sweep's launch (or a suite's studies); ``ablate table
--experiment NAME | --csv FILE --cells ... --metric ...``: the same table of runs ablate did not launch."""
from __future__ import annotations

import sys

from .common import add_source_args, load_any


def add(sub) -> None:
    s = sub.add_parser("table", help="print the ablation table of a sweep")
    add_source_args(s, "table")
    s.add_argument("--format", choices=("md", "latex", "csv"), default="md")
    s.add_argument("--paper", action="store_true", help="also print the paper's published numbers beside ours")
    s.add_argument("--cost", action="store_true",
                   help="md / latex: also print the cost table (FLOPs, peak memory, latency, s/epoch, trial-seconds, "
                        "ratios to the baseline); the CSV always has those columns")
    s.set_defaults(func=cmd_table)


def cmd_table(args) -> int:
    from analysis.tables import render

    tables, _, _ = load_any(args)
    if args.format == "csv" and len(tables) > 1:
        from analysis.tables import render_suite_csv

        sys.stdout.write(render_suite_csv([(n, t) for n, _, t in tables]))
        return 0
    for name, runs, table in tables:
        if len(tables) > 1 or args.paper:
            print(f"\n{name}" if args.format == "md" else f"% {name}")
        print(render(table, args.format, cost=args.cost))
        if args.paper:
            from analysis.paper import compare

            print(compare(name, table, args.format, runs=runs))
    if len(tables) > 1 and args.format != "csv":
        from analysis.tables import render_suite_summary

        print("\n" + render_suite_summary([(n, t) for n, _, t in tables], args.format))
    return 0
