"""Paper-style ablation tables: one row per scientific cell with mean ± std over seeds, n, parameter count,
cost (median seconds per epoch, peak memory where recorded) and the evidence against the baseline cell: Δ with
its interval, the multiplicity-adjusted p, Hedges' g, the minimum detectable effect, the seeds a decision would
need and a verdict (better / worse / equivalent / undecided).

Methods and sources: analysis/table_evidence.py (analysis.stats.compare_to_baseline for fixed seeds,
analysis.sequential_table.replay of the group-sequential design for adaptive seeds, analysis.suite_stats'
factorial ANOVA for complete grids); docs/statistics.md says how to read each column.  Rendering is a few lines
by hand (analysis/table_text.py): pandas' to_markdown needs ``tabulate`` (not a dependency) and Styler.to_latex
cannot bold one cell of a formatted "mean ± std" string without the same amount of code.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import pandas as pd

from . import table_evidence as ev
from . import table_text as text
from . import costs
from . import contract as C
from .contract import DEFAULT_ANALYSIS
from .suite_table import render_suite_summary  # noqa: F401  (the CLI's entry point lives beside render)

__all__ = ["ablation_table", "render", "render_suite_csv", "render_suite_summary", "cell_values", "csv_columns"]
CSV_HEAD = ("n", "failed", "running", "params", "mean", "std", *ev.EVIDENCE, *ev.DETAIL, "epoch_s")


@contextlib.contextmanager
def quiet():
    """scipy / numpy / statsmodels warnings on degenerate cells (one seed, no variance) never reach the
    terminal: every such case is a documented nan or "undecided" in the table instead."""
    from statsmodels.tools.sm_exceptions import ModelWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", ModelWarning)
        yield


def _resolve(df: pd.DataFrame, metric, mode, baseline_cell, analysis):
    if mode is None and metric and metric != df.attrs.get("metric"):
        mode = df.attrs.get("metric_modes", {}).get(metric)      # e.g. hessian_kappa: lower is better
    metric = metric or df.attrs.get("metric")
    mode = mode or df.attrs.get("mode", "max")
    baseline_cell = baseline_cell if baseline_cell is not None else df.attrs.get("baseline_cell")
    settings = {**DEFAULT_ANALYSIS, **(df.attrs.get("analysis") or {}), **(analysis or {})}
    unknown = sorted(set(settings) - set(DEFAULT_ANALYSIS))
    if unknown:
        raise ValueError(f"analysis has unknown keys {unknown}; allowed: {', '.join(DEFAULT_ANALYSIS)}")
    return metric, mode, baseline_cell, settings


def cell_values(ok: pd.DataFrame, col: str) -> Dict[str, Dict[Any, float]]:
    """{cell: {seed: value}} of FINISHED runs with a finite value, in grid order; seeds from ``params.seed``
    (cast to int). Pooled launches repeat seeds: their keys become "launch:seed" strings."""
    seeds = ok["params.seed"] if "params.seed" in ok else ok["seed"]
    seeds = seeds.where(seeds.notna(), ok["seed"])           # a run without the param: its ablate.seed tag
    out: Dict[str, Dict[Any, float]] = {}
    for cell, g in ok.assign(_s=seeds).groupby("cell", sort=False):
        g = g[np.isfinite(pd.to_numeric(g[col], errors="coerce").to_numpy(float))]
        s = [int(v) if v is not None and v == v else -1 - i for i, v in enumerate(g["_s"])]   # -1, -2: unknown
        keys = s if len(set(s)) == len(s) else [f"{la}:{v}" for la, v in zip(g["launch"], s)]
        out[cell] = dict(zip(keys, g[col].astype(float)))
    return out


def _no_comparison(values, baseline_cell, cells) -> Optional[str]:
    if not baseline_cell:
        return "no baseline cell (the sweep file sets none): no comparisons"
    if baseline_cell not in cells:
        return f"the baseline cell [{baseline_cell}] is not among these runs (narrowed away by --set?): no comparisons"
    if not values.get(baseline_cell):
        return f"the baseline cell [{baseline_cell}] has no FINISHED run with a value: no comparisons"
    return None


def _evidence(df, values, baseline_cell, settings, mode, metric, cells):
    """(frame of evidence columns by cell, footnote, design kind)."""
    looks = df.attrs.get("looks")
    primary = metric == df.attrs.get("metric")
    if not primary and settings["min_effect"] is not None:   # min_effect is in the sweep metric's units
        settings = {**settings, "min_effect": None}
    seeds_ok = all(ev.int_seeds(v) for v in values.values())
    if looks and primary and len(df.attrs.get("launches", [])) <= 1 and seeds_ok:
        upto = ev.look_reached(looks, list(df["look"]) if "look" in df else [],
                               [s for v in values.values() for s in v])
        # every cell of the launch, also one whose runs all failed: the design's m is the runner's
        frame, foot = ev.adaptive_evidence({c: values.get(c, {}) for c in cells}, baseline_cell, settings, mode,
                                           looks, upto)
        return frame, foot, "adaptive"
    frame, foot = ev.fixed_evidence(values, baseline_cell, settings, mode)
    if looks:
        foot += (f"; seeds were added adaptively on {df.attrs.get('metric')}, so these fixed-design numbers are "
                 f"descriptive" if not primary else "; launches pooled or seeds repeated: the adaptive design is "
                 "not replayed, these fixed-design numbers are descriptive")
    return frame, foot, "fixed"


def _row(cell, g, axes, col, vals, extra_cols) -> dict:
    ok = g[g["status"] == "FINISHED"]
    v = np.asarray(list(vals.values()), float)
    row = {"cell": cell, **{a: g[a].iloc[0] for a in axes}}
    row.update(n=len(v), failed=int((g["status"] == "FAILED").sum()),
               running=int((~g["status"].isin(["FINISHED", "FAILED"])).sum()),
               params=g["n_params"].dropna().iloc[0] if g["n_params"].notna().any() else np.nan,
               mean=v.mean() if len(v) else np.nan,
               std=v.std(ddof=1) if len(v) > 1 else (0.0 if len(v) else np.nan))
    for name, source in extra_cols.items():     # cost: median over the cell's FINISHED runs
        x = pd.to_numeric(ok[source], errors="coerce").dropna() if source in ok else pd.Series(dtype=float)
        row[name] = float(x.median()) if len(x) else np.nan
    return row


def ablation_table(runs: pd.DataFrame, metric: Optional[str] = None, mode: Optional[str] = None,
                   baseline_cell: Optional[str] = None, analysis: Optional[Mapping[str, Any]] = None) -> pd.DataFrame:
    """Aggregate a runs frame (analysis.store.load_runs) into the table frame.

    Args:
        runs: runs of one launch (or pooled launches) from load_runs.
        metric: column to tabulate (default the sweep's, ``df.attrs["metric"]``).
        mode: "max"/"min" (default the metric's recorded mode).
        baseline_cell: the baseline's cell label (default ``df.attrs["baseline_cell"]``).
        analysis: overrides of the launch's analysis settings (alpha, correction, test, min_effect, spending).

    Only FINISHED runs enter the statistics; FAILED runs are counted in ``failed`` so a diverging cell is
    visible, never silently averaged, and runs still RUNNING (or left so by an interrupted launch) in
    ``running``. Columns: cell, the axes, n, failed, running, params, mean, std, delta, ci_low, ci_high,
    p_value, p_adj, hedges_g, mde, seeds_needed, verdict, epoch_s, [peak_mem_mb], best, baseline, and for
    adaptive seeds look, p_bound. attrs: metric, mode, axes, baseline_cell, analysis, design ("fixed" /
    "adaptive"), footnote, anova (AnovaResult or None), notes, values ({cell: {seed: value}}).
    """
    df = runs
    metric, mode, baseline_cell, settings = _resolve(df, metric, mode, baseline_cell, analysis)
    col = f"metrics.{metric}"
    if col not in df:
        have = sorted(c[len("metrics."):] for c in df.columns if c.startswith("metrics."))
        if (df["status"] == "FINISHED").any() or metric != df.attrs.get("metric"):
            raise KeyError(f"metric {metric!r} was not recorded; recorded metrics: {', '.join(have) or '(none)'}")
        df = df.assign(**{col: np.nan})          # every run failed: a table of failures, not an error
    axes: List[str] = df.attrs.get("axes", [])
    ok = df[df["status"] == "FINISHED"]
    with quiet():
        values = cell_values(ok, col)
        cells = list(dict.fromkeys(df["cell"]))
        extra = {"epoch_s": "epoch_s", **({"peak_mem_mb": "metrics.peak_mem_mb"} if "metrics.peak_mem_mb" in df
                                          else {})}
        rows = [_row(c, g, axes, col, values.get(c, {}), extra) for c, g in df.groupby("cell", sort=False)]
        reason, seed_note = _no_comparison(values, baseline_cell, cells), []
        if reason is None:
            evidence, foot, design = _evidence(df, values, baseline_cell, settings, mode, metric, cells)
            seed_note = ev.seed_correlation_note(values, baseline_cell, settings["test"])
        else:
            evidence, foot, design = pd.DataFrame(columns=[*ev.EVIDENCE, *ev.DETAIL]), reason, "fixed"
        anova = ev.grid_anova(ok, axes, col)
    table = _assemble(rows, evidence, axes, baseline_cell, extra, mode)
    costs.add_costs(table, df)               # FLOPs, memory, latency, trial-seconds, ratios (analysis/costs.py)
    table.attrs.update(metric=metric, mode=mode, axes=axes, baseline_cell=baseline_cell, analysis=settings,
                       design=design, footnote=foot, anova=anova, notes=seed_note + _search_note(df, values) + _notes(df),
                       values=values, looks=df.attrs.get("looks"),
                       search_overlap=bool(df.attrs.get("search_overlap", False)))
    return table


def _assemble(rows, evidence, axes, baseline_cell, extra, mode) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    for a in axes:   # keep ints as ints where a conditional axis is missing (no 8.0 / NaN)
        table[a] = pd.Series([r[a] for r in rows], dtype=object)
    cols = [c for c in evidence.columns]
    ev_rows = evidence.reindex(table["cell"])
    for c in cols:
        table[c] = ev_rows[c].to_numpy(dtype=object if c in ("verdict", "seeds_needed", "look", "seeds_basis",
                                                              "seeds_low", "seeds_high") else float)
    for c in ("seeds_needed", "seeds_low", "seeds_high"):
        if c in table:
            table[c] = pd.array([None if v is None or v != v else int(v) for v in table[c]], dtype="Int64")
    if "seeds_basis" in table:
        table["seeds_basis"] = [v if isinstance(v, str) else "" for v in table["seeds_basis"]]
    if "look" in table:
        table["look"] = pd.array([None if v is None or v != v else int(v) for v in table["look"]], dtype="Int64")
    table["verdict"] = table["verdict"].astype(object).where(table["verdict"].notna(), None)
    table["baseline"] = table["cell"] == baseline_cell
    table.loc[table["baseline"] & table["n"].gt(0), "delta"] = 0.0
    table = table[[c for c in table.columns if c not in extra] + list(extra)]   # cost after the evidence
    if table["mean"].notna().any():
        best = table["mean"].idxmax() if mode == "max" else table["mean"].idxmin()
        table["best"] = table.index == best
    else:
        table["best"] = False
    table["baseline"] = table.pop("baseline")
    return table


def _search_note(df: pd.DataFrame, values) -> List[str]:
    """Where the nuisance search ran, against the evaluation seeds (Eimer et al. 2023: keep them apart); the
    ``search_overlap`` attr says whether they overlap."""
    col = C.column(C.SEARCH_SEED)
    df.attrs.setdefault("search_overlap", False)
    if col not in df:
        return []
    tuned = sorted({int(v) for v in df[col].dropna() if str(v).lstrip("-").isdigit()})
    if not tuned:
        return []
    evaluated = {s for v in values.values() for s in v if isinstance(s, (int, np.integer))}
    both = sorted(set(tuned) & evaluated)
    where = ", ".join(map(str, tuned))
    if both:
        df.attrs["search_overlap"] = True
        return [f"TUNING OVERLAPS EVALUATION: the nuisance axes were tuned on seed {where}, also an evaluation seed "
                f"(search.seed asked for it): cells are scored on a seed their setting was picked on, which flatters "
                f"them (Eimer et al. 2023)"]
    return [f"nuisance axes tuned on seed {where}, apart from the evaluation seeds"]


def _notes(df: pd.DataFrame) -> List[str]:
    smoke = df.attrs.get("smoke_launches", [])
    if not smoke:
        return []
    which = "this launch was" if len(df.attrs.get("launches", [])) <= 1 else f"launches {', '.join(smoke)} were"
    return [f"{which} a --smoke run (few epochs, little data): not a result to report"]


def csv_columns(table: pd.DataFrame) -> List[str]:
    """The CSV's columns: axes (or cell), CSV_HEAD, peak_mem_mb where recorded, best, baseline, look columns."""
    axes = list(table.attrs.get("axes") or ["cell"])
    cols = [*axes, *CSV_HEAD, *(["peak_mem_mb"] if "peak_mem_mb" in table else []), "best", "baseline"]
    return cols + [c for c in ("look", "p_bound") if c in table] + costs.csv_columns(table)


def render(table: pd.DataFrame, fmt: str = "md", cost: bool = False) -> str:
    """The table as Markdown ("md"), LaTeX ("latex") or CSV ("csv"; every column, see csv_columns); ``cost``:
    Markdown / LaTeX also get the cost table (analysis/costs.py; the CSV always has its columns)."""
    if fmt == "csv":
        return table.reindex(columns=csv_columns(table)).to_csv(index=False)
    if fmt not in ("md", "latex"):
        raise ValueError(f"format must be md, latex or csv, got {fmt!r}")
    if cost and "flops_fwd" in table:
        return text.render_text(table, fmt) + "\n\n" + costs.render_cost(table, fmt)
    return text.render_text(table, fmt)


def render_suite_csv(tables) -> str:
    """One CSV for a suite: the per-study tables stacked, with a ``study`` column."""
    frames = []
    for name, table in tables:
        frames.append(pd.read_csv(io.StringIO(render(table, "csv")), dtype=str, keep_default_na=False)
                      .assign(study=name))
    out = pd.concat(frames, ignore_index=True, sort=False).fillna("")
    return out[["study", *[c for c in out.columns if c != "study"]]].to_csv(index=False)
