"""``ablate plot SWEEP``: the ablation plot (PNG) of a sweep's launch, or of each study of a suite; with
``--experiment`` / ``--csv`` and a mapping, of runs ablate did not launch."""
from __future__ import annotations

import sys
from pathlib import Path

from ..errors import TrialsFailed, UsageError
from .common import add_source_args, load_any


def add(sub) -> None:
    s = sub.add_parser("plot", help="draw the ablation plot of a sweep (PNG)")
    add_source_args(s, "plot")
    s.add_argument("-o", "--output", help="PNG path (default: SWEEP.png; suites: one file per study)")
    s.add_argument("--kind", choices=("auto", "interaction", "pareto"), default="auto",
                   help="'interaction': an interaction plot of a two-axis grid; 'pareto': the metric against --cost")
    s.add_argument("--cost", choices=("flops", "memory", "latency", "params"), default=None,
                   help="with --kind pareto: the cost on the x axis (log scale; default flops)")
    s.set_defaults(func=cmd_plot)


def cmd_plot(args) -> int:
    if args.cost is not None and args.kind != "pareto":
        raise UsageError(f"--cost {args.cost}: only with --kind pareto (got --kind {args.kind})")
    from analysis.plots import nothing_to_plot, plot_ablation, plot_interaction

    tables, _, _ = load_any(args)
    empty = {name: why for name, runs, table in tables if (why := nothing_to_plot(runs, table))}
    if len(empty) == len(tables):      # every trial failed: one line, no file, exit 1
        raise TrialsFailed("; ".join(f"{n}: {w}" for n, w in empty.items())
                           + "; `ablate table` and `ablate report` list the runs and why they failed")
    for name, runs, table in tables:
        if name in empty:              # a suite's study without a value: say so, draw the others
            print(f"{name}: {empty[name]}", file=sys.stderr)
            continue
        out = args.output or f"{name}.png"
        if len(tables) > 1 and args.output:
            p = Path(args.output)
            out = p.with_name(f"{p.stem}.{name.split('.')[-1]}{p.suffix or '.png'}")
        if args.kind == "pareto":
            from analysis.plot_pareto import plot_pareto

            try:
                print(plot_pareto(table, out, args.cost or "flops", title=name))
            except ValueError as e:
                raise UsageError(f"{name}: --kind pareto: {e}") from None
        elif args.kind == "interaction":
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
