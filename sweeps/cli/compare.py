"""``ablate compare SWEEP A B``: two launches of one sweep, cell by cell (B − A), and what differs between them
(analysis/compare.py)."""
from __future__ import annotations

from ..errors import UsageError


def add(sub) -> None:
    s = sub.add_parser("compare", help="compare two launches of a sweep: per-cell B − A and what differs")
    s.add_argument("sweep", help="sweep name (its experiment) or sweep file")
    s.add_argument("a", metavar="A", help="launch id of the reference launch")
    s.add_argument("b", metavar="B", help="launch id of the launch compared with it ('latest': the newest)")
    s.add_argument("--tracking-uri", help="MLflow tracking URI (default: sqlite store in ./ablate_runs)")
    s.add_argument("--format", choices=("md", "csv"), default="md",
                   help="md: the cell table and what differs; csv: the cell table (what differs on stderr)")
    s.add_argument("--alpha", type=float, default=0.05, help="level of the intervals and of 'changed' (default 0.05)")
    s.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    import sys

    from .common import resolve_sweep_names

    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha} is not allowed: a level in (0, 1), e.g. 0.05")
    names, uri = resolve_sweep_names(args.sweep, args.tracking_uri)
    if len(names) != 1:
        raise UsageError(f"{args.sweep} is a suite of {len(names)} studies; compare one of them: {', '.join(names)}")
    from analysis.compare import compare_launches, render
    from analysis.store import load_runs

    b = args.b
    try:
        if b == "latest":
            b = load_runs(names[0], uri, launch="latest", epoch_times=False).attrs["launch"]
        cmp = compare_launches(uri, names[0], args.a, b, alpha=args.alpha)
    except LookupError as e:
        raise UsageError(str(e).strip('"')) from None
    print(render(cmp, args.format))
    if args.format == "csv":
        for what, detail in cmp.differences:
            print(f"differs: {what}: {detail}", file=sys.stderr)
    return 0
