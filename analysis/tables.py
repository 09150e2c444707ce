"""Paper-style ablation tables: one row per scientific cell, mean ± std over
seeds, n, parameter count, Δ vs the baseline cell, Welch's t-test p-value
(scipy.stats.ttest_ind, equal_var=False), best cell in bold.

Rendering is a few lines by hand: pandas' to_markdown needs ``tabulate`` (not
a dependency) and Styler.to_latex cannot bold one cell of a formatted
"mean ± std" string without the same amount of code.
"""
from __future__ import annotations

import math
from typing import List, Optional

import numpy as np
import pandas as pd
from scipy import stats


def ablation_table(df: pd.DataFrame, metric: Optional[str] = None, mode: Optional[str] = None,
                   baseline_cell: Optional[str] = None) -> pd.DataFrame:
    """Aggregate a runs frame (analysis.store.load_runs) into the table frame.

    Only FINISHED runs enter the statistics; FAILED runs are counted in
    ``failed`` so a diverging cell is visible, never silently averaged, and
    runs still RUNNING (or left so by an interrupted launch) in ``running``:
    their partial metrics are not counted, and the rendered table says so.
    """
    if mode is None and metric and metric != df.attrs.get("metric"):
        mode = df.attrs.get("metric_modes", {}).get(metric)      # e.g. hessian_kappa: lower is better
    metric = metric or df.attrs.get("metric")
    mode = mode or df.attrs.get("mode", "max")
    baseline_cell = baseline_cell if baseline_cell is not None else df.attrs.get("baseline_cell")
    col = f"metrics.{metric}"
    if col not in df:
        have = sorted(c[len("metrics."):] for c in df.columns if c.startswith("metrics."))
        if (df["status"] == "FINISHED").any() or metric != df.attrs.get("metric"):
            raise KeyError(f"metric {metric!r} was not recorded; recorded metrics: {', '.join(have) or '(none)'}")
        df = df.assign(**{col: np.nan})          # every run failed: a table of failures, not an error
    axes: List[str] = df.attrs.get("axes", [])
    ok = df[df["status"] == "FINISHED"]
    base_vals = ok.loc[ok["cell"] == baseline_cell, col].dropna().to_numpy(float) if baseline_cell else None
    rows = []
    for cell, g in df.groupby("cell", sort=False):
        vals = g.loc[g["status"] == "FINISHED", col].dropna().to_numpy(float)
        row = {"cell": cell, **{a: g[a].iloc[0] for a in axes}}
        row.update(n=len(vals), failed=int((g["status"] == "FAILED").sum()),
                   running=int((~g["status"].isin(["FINISHED", "FAILED"])).sum()),
                   params=g["n_params"].dropna().iloc[0] if g["n_params"].notna().any() else np.nan,
                   mean=vals.mean() if len(vals) else np.nan,
                   std=vals.std(ddof=1) if len(vals) > 1 else (0.0 if len(vals) else np.nan),
                   baseline=cell == baseline_cell)
        if base_vals is not None and len(base_vals) and cell != baseline_cell and len(vals):
            row["delta"] = row["mean"] - base_vals.mean()
            row["p_value"] = (stats.ttest_ind(vals, base_vals, equal_var=False).pvalue
                              if len(vals) > 1 and len(base_vals) > 1 else np.nan)
        else:
            row["delta"], row["p_value"] = (0.0 if cell == baseline_cell else np.nan), np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    for a in axes:   # keep ints as ints where a conditional axis is missing (no 8.0 / NaN)
        table[a] = pd.Series([r[a] for r in rows], dtype=object)
    if table["mean"].notna().any():
        best = table["mean"].idxmax() if mode == "max" else table["mean"].idxmin()
        table["best"] = table.index == best
    else:
        table["best"] = False
    table.attrs.update(metric=metric, mode=mode, axes=axes, baseline_cell=baseline_cell,
                       notes=_notes(df))
    return table


def _notes(df: pd.DataFrame) -> List[str]:
    smoke = df.attrs.get("smoke_launches", [])
    if not smoke:
        return []
    which = "this launch was" if len(df.attrs.get("launches", [])) <= 1 else f"launches {', '.join(smoke)} were"
    return [f"{which} a --smoke run (few epochs, little data): not a result to report"]


def _decimals(std: float, mean: float) -> int:
    if std and math.isfinite(std) and std > 0:
        return int(min(6, max(0, 1 - math.floor(math.log10(std)))))
    if mean and math.isfinite(mean):
        return int(min(6, max(0, 3 - math.floor(math.log10(abs(mean))))))
    return 2


def _fmt_rows(table: pd.DataFrame, bold) -> List[List[str]]:
    axes = table.attrs.get("axes", [])
    out = []
    for _, r in table.iterrows():
        d = _decimals(r["std"], r["mean"])
        ms = "n/a" if not math.isfinite(r["mean"]) else f"{r['mean']:.{d}f} ± {r['std']:.{d}f}"
        if r["best"]:
            ms = bold(ms)
        delta = "baseline" if r["baseline"] else ("" if not math.isfinite(r["delta"]) else f"{r['delta']:+.{d}f}")
        p = "" if not math.isfinite(r["p_value"]) else (f"{r['p_value']:.3f}" if r["p_value"] >= 1e-3 else f"{r['p_value']:.1e}")
        axes_vals = ["–" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v) for v in (r[a] for a in axes)]
        params = "" if not math.isfinite(r["params"]) else f"{int(r['params']):,}"
        failed = str(int(r["failed"])) if r["failed"] else "0"
        out.append(axes_vals + [ms, str(int(r["n"])), failed, params, delta, p])
    return out


def _header(table: pd.DataFrame) -> List[str]:
    m = table.attrs.get("metric", "metric")
    arrow = "↑" if table.attrs.get("mode", "max") == "max" else "↓"
    return list(table.attrs.get("axes", [])) or ["cell"], [f"{m} {arrow} (mean ± std)", "n", "failed", "params", "Δ vs baseline", "p (Welch)"]


def render(table: pd.DataFrame, fmt: str = "md") -> str:
    axes_h, rest = _header(table)
    if not table.attrs.get("axes"):
        table = table.assign(**{"cell": table["cell"]})
        table.attrs.update(axes=["cell"])
    head = axes_h + rest
    if fmt == "csv":
        cols = [*table.attrs["axes"], "n", "failed", "running", "params", "mean", "std", "delta", "p_value", "best",
                "baseline"]
        return table[cols].to_csv(index=False)
    running = table[table["running"] > 0] if "running" in table else table.iloc[:0]
    notes = list(table.attrs.get("notes", []))
    if not running.empty:
        notes.append(f"{int(running['running'].sum())} unfinished run(s) (RUNNING, or left so by an interrupted "
                     f"launch) are not counted: " + ", ".join(f"{c} ({int(k)})" for c, k in
                                                            zip(running["cell"], running["running"])))
    note = " ".join(notes)
    if fmt == "md":
        rows = _fmt_rows(table, lambda s: f"**{s}**")
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
        line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
        md = "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
        return md + "".join(f"\n\n_{n}_" for n in notes)
    if fmt == "latex":
        esc = lambda s: s.replace("_", r"\_").replace("%", r"\%").replace("±", r"$\pm$").replace("Δ", r"$\Delta$") \
            .replace("↑", r"$\uparrow$").replace("↓", r"$\downarrow$").replace("–", "--")
        rows = _fmt_rows(table, lambda s: r"\textbf{" + s + "}")
        body = [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
        return "\n".join([r"\begin{tabular}{" + "l" * len(axes_h) + "r" * len(rest) + "}", r"\toprule",
                          " & ".join(esc(h) for h in head) + r" \\", r"\midrule", *body, r"\bottomrule",
                          r"\end{tabular}"] + ([f"% {note}"] if note else []))
    raise ValueError(f"format must be md, latex or csv, got {fmt!r}")


def render_suite_csv(tables) -> str:
    """One CSV for a suite: the per-study tables stacked, with a ``study`` column."""
    frames = []
    for name, table in tables:
        csv = render(table, "csv")
        import io

        frames.append(pd.read_csv(io.StringIO(csv), dtype=str, keep_default_na=False).assign(study=name))
    out = pd.concat(frames, ignore_index=True, sort=False).fillna("")
    return out[["study", *[c for c in out.columns if c != "study"]]].to_csv(index=False)
