"""Seaborn ablation figures, chosen by the shape of the scientific grid.

* one axis (or conditional axes, where cells do not form a rectangle, e.g.
  dense vs CDLinear B=4/8): each cell's mean with its 95 % t-interval (the
  interval of the mean, scipy.stats.t), drawn beside its individual seeds, the
  marker saying the verdict against the baseline (analysis.tables: better,
  worse, equivalent, undecided), the baseline's interval as a horizontal band;
* two full axes: heatmap of means (annotated mean ± interval half-width and the
  verdict's symbol);
* more axes: one heatmap per value of the remaining axes (facets).

Error bars and bands are 95 % t-intervals of the mean everywhere (seaborn's
``errorbar`` takes the function), never ± std, so a bar that clears the
baseline band means what a reader expects.  Legends sit outside the axes.
``plot_suite_ranks`` draws a suite's critical-difference picture (Demšar 2006's
layout) from pairwise Wilcoxon signed-rank tests with Holm (Benavoli et al. 2016).

A sweep file's ``plot:`` key asks for the figure its paper's readers expect
(stored with the runs, so ``ablate plot NAME`` needs only the store):

* ``line``: metric vs a numeric axis ``x`` (one line per ``hue``), cells
  without ``x`` (a baseline such as additive fusion) drawn as bands — the CFU
  order curve, memory vs depth;
* ``heatmap``: ``x`` × ``hue`` means — kernel size × N_L;
* ``bars``: grouped bars ``x`` by ``hue`` with each seed as a dot — Type × encoding;
* ``metric_curve``: several metrics as one curve (``metrics`` at ``x_values``)
  per ``hue`` — accuracy vs rotation range.
"""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from . import plot_kinds  # noqa: E402
from .stats import t_half_widths, t_interval  # noqa: E402
from .plot_marks import (CI_TEXT, VERDICTS, axis_label, save_figure, text_width_in, verdict_of,  # noqa: E402
                         verdict_legend)


def _rectangular(table: pd.DataFrame, axes) -> bool:
    if any(table[a].isna().any() for a in axes):
        return False
    return len(table) == int(np.prod([table[a].nunique() for a in axes]))


class NothingToPlot(ValueError):
    """No run has a value to draw (every trial failed, or none recorded the metric).  Its message is one line
    that says why; the table and the report still list the runs."""


def nothing_to_plot(runs: pd.DataFrame, table: pd.DataFrame) -> str | None:
    """Why ``table`` has nothing to draw (one line), or None when some cell has a mean."""
    if "mean" in table and pd.to_numeric(table["mean"], errors="coerce").notna().any():
        return None
    metric, n = table.attrs.get("metric", "the metric"), len(runs)
    status = runs["status"] if "status" in runs else pd.Series(["FINISHED"] * n, dtype=object)
    finished = int((status == "FINISHED").sum())
    if finished == 0:
        counts = ", ".join(f"{k} {str(s).lower()}" for s, k in status.value_counts().items())
        return (f"nothing to plot: none of the {n} trial{'s' * (n != 1)} finished ({counts or 'no runs'}), "
                f"so no {metric} was recorded")
    return f"nothing to plot: none of the {finished} finished trial{'s' * (finished != 1)} recorded a value of {metric}"


def plot_ablation(runs: pd.DataFrame, table: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Draw the figure for ``table`` (analysis.tables.ablation_table) with the
    per-seed values from ``runs``; writes PNG to ``out`` and returns the path.
    Raises NothingToPlot (one line saying why) when no cell has a value, before any file is written."""
    why = nothing_to_plot(runs, table)
    if why:
        raise NothingToPlot(why)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    metric = table.attrs["metric"]
    axes = [a for a in table.attrs.get("axes", []) if table[a].nunique(dropna=True) > 1 or len(table) == 1]
    sns.set_theme(style="whitegrid", context="paper")
    spec = dict(runs.attrs.get("plot") or {})
    kind = spec.get("kind", "auto")
    ok = runs[runs["status"] == "FINISHED"]
    named = [spec[k] for k in ("x", "hue") if spec.get(k)]
    if kind in ("bars", "heatmap") and not all(k in ok.columns and k in table.columns for k in named):
        kind = "auto"   # narrowed by --set to cells without that key: per-cell points instead
    if kind == "line":
        fig = plot_kinds.line(ok, table, spec, spec.get("metric", metric))
    elif kind == "bars":
        fig = plot_kinds.bars(ok, spec, spec.get("metric", metric), table)
    elif kind == "metric_curve":
        fig = plot_kinds.metric_curve(ok, spec, table)
    elif kind == "heatmap" and spec.get("x") and spec.get("hue"):
        fig = _heatmaps(table, [spec["hue"], spec["x"]], metric)
    elif len(axes) >= 2 and _rectangular(table, axes):
        fig = _heatmaps(table, axes, metric)
    else:
        fig = _points(runs, table, metric)
    fig.suptitle(title or f"{metric} by scientific cell")
    fig.tight_layout()
    return save_figure(fig, out)


def _points(runs: pd.DataFrame, table: pd.DataFrame, metric: str):
    order = list(table["cell"])
    labels = [c.replace(",", "\n") for c in order]
    depth = max((lb.count("\n") + 1 for lb in labels), default=1)
    # each cell's slot is as wide as its longest label line at 8 pt (measured, not guessed per character)
    # plus a gap, so long labels never run into each other
    slot = max(0.9, text_width_in(labels, 8) + 0.25)
    fig, ax = plt.subplots(figsize=(slot * len(order) + 3.2, 3.4 + 0.16 * depth))
    ok = runs[runs["status"] == "FINISHED"]
    base = table[table["baseline"]]
    extra = []
    if len(base) and math.isfinite(base["mean"].iloc[0]):
        m, h = base["mean"].iloc[0], t_half_widths(base["n"], base["std"])[0]
        extra.append(ax.axhspan(m - h, m + h, color="0.88", zorder=0, label=f"baseline: {CI_TEXT}"))
        ax.axhline(m, color="0.55", lw=1, zorder=1)
    x = np.arange(len(order))
    # the seeds left of each slot centre, the mean and its interval right of it: neither hides the other
    sns.stripplot(data=ok, x="cell", y=f"metrics.{metric}", order=order, color="0.35", size=3.5, ax=ax,
                  jitter=0.06, zorder=2, native_scale=False)
    for coll in ax.collections[-len(order):]:
        off = coll.get_offsets()
        if len(off):
            coll.set_offsets(off - [0.14, 0])
    from matplotlib.lines import Line2D

    extra.append(Line2D([], [], ls="", marker="o", color="0.35", ms=3.5, label="one seed"))
    half = t_half_widths(table["n"], table["std"])
    seen = []
    for i, (_, r) in enumerate(table.iterrows()):
        if not math.isfinite(r["mean"]):
            continue
        v = verdict_of(r)
        seen.append(v)
        mk, col = VERDICTS[v][:2]
        ax.errorbar(x[i] + 0.14, r["mean"], yerr=half[i], fmt=mk, color=col, ecolor=col, capsize=4, ms=7,
                    mec="white", mew=0.6, zorder=3)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.set_xlabel("")
    ax.set_ylabel(axis_label(table))
    verdict_legend(ax, seen, extra, title=f"marker: cell mean\nbars: {CI_TEXT}")
    return fig


def _heatmaps(table: pd.DataFrame, axes, metric: str):
    rows_ax, cols_ax, facets = axes[0], axes[1], axes[2:]
    table = table.assign(half_widths=t_half_widths(table["n"], table["std"]), _sym=[VERDICTS[verdict_of(r)][3] for _, r in table.iterrows()])
    groups = list(table.groupby(facets)) if facets else [((), table)]
    fig, axs = plt.subplots(1, len(groups), figsize=(4.2 * len(groups) + 1, 3.9), squeeze=False)
    vmin, vmax = table["mean"].min(), table["mean"].max()
    cmap = "viridis" if table.attrs.get("mode", "max") == "max" else "viridis_r"
    for ax, (key, g) in zip(axs[0], groups):
        means = g.pivot(index=rows_ax, columns=cols_ax, values="mean")
        half = g.pivot(index=rows_ax, columns=cols_ax, values="half_widths")
        sym = g.pivot(index=rows_ax, columns=cols_ax, values="_sym")
        annot = means.copy().astype(object)
        for i in means.index:
            for j in means.columns:
                annot.loc[i, j] = f"{means.loc[i, j]:.3g} {sym.loc[i, j]}\n±{half.loc[i, j]:.2g}"
        sns.heatmap(means, annot=annot, fmt="", cmap=cmap, vmin=vmin, vmax=vmax, ax=ax,
                    cbar_kws={"label": axis_label(table)})
        if facets:
            ax.set_title(", ".join(f"{f}={v}" for f, v in zip(facets, key if isinstance(key, tuple) else (key,))))
    present = [v for v in VERDICTS if (table["_sym"] == VERDICTS[v][3]).any()]
    fig.text(0.01, 0.01, f"± {CI_TEXT} (half-width); " + ", ".join(f"{VERDICTS[v][3]} {VERDICTS[v][2]}"
                                                                  for v in present), fontsize=7, ha="left")
    fig.subplots_adjust(bottom=0.2)
    return fig


def plot_interaction(runs: pd.DataFrame, table: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Interaction plot of a two-axis grid: the metric's mean against the first
    axis, one line per value of the second, error bars the 95 % t interval of
    the mean.  Parallel lines = no interaction.  ValueError unless the grid has
    exactly two axes with several values each and every combination present; NothingToPlot (a ValueError)
    when no cell has a value."""
    why = nothing_to_plot(runs, table)
    if why:
        raise NothingToPlot(why)
    axes = [a for a in table.attrs.get("axes", []) if table[a].nunique(dropna=True) > 1]
    if len(axes) != 2 or not _rectangular(table, axes):
        raise ValueError(f"needs a complete grid of exactly two scientific axes; this table has axes "
                         f"{table.attrs.get('axes', [])} over {len(table)} cells")
    x, hue = axes
    col = f"metrics.{table.attrs['metric']}"
    ok = runs[runs["status"] == "FINISHED"]
    xs = list(dict.fromkeys(table[x]))
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, h in enumerate(dict.fromkeys(table[hue])):
        means, errs = [], []
        for xv in xs:
            v = ok.loc[(ok[x] == xv) & (ok[hue] == h), col].to_numpy(float)
            means.append(np.nanmean(v) if len(v) else np.nan)
            errs.append(t_interval(v))
        ax.errorbar(range(len(xs)), means, yerr=np.nan_to_num(errs), marker="o", capsize=4, color=f"C{i}",
                    label=f"{hue}={h}")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel(axis_label(table))
    ax.legend(title="error bars: 95 % CI of the mean", fontsize=8, title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title or f"interaction of {x} and {hue}")
    fig.tight_layout()
    return save_figure(fig, out)


def _cliques(order, differ) -> list:
    """Maximal runs i..j of cells (in mean-rank order) no pair of which the pairwise tests tell apart."""
    out = []
    for i in range(len(order)):
        j = i
        while j + 1 < len(order) and not any(differ(order[a], order[j + 1]) for a in range(i, j + 1)):
            j += 1
        if j > i and not any(i >= a and j <= b for a, b in out):
            out.append((i, j))
    return out


def plot_suite_ranks(tables, out: str | Path) -> Path | str:
    """The critical-difference picture of a suite (Demšar 2006's layout): each cell at its mean rank, thick bars
    joining cells that the pairwise Wilcoxon signed-rank tests with Holm's correction (analysis.stats
    .average_ranks; Benavoli, Corani & Mangili 2016) cannot tell apart. Saved as PNG to ``out``; returns the
    Path, or a one-line reason when fewer than 5 studies share at least 3 cells."""
    from .suite_table import suite_ranks

    tables = list(tables)
    res, reason = suite_ranks(tables)
    shared = 0 if res is None else res.ranks.shape[1]
    studies = 0 if res is None else res.ranks.shape[0]
    if res is None or studies < 5 or shared < 3 or res.pairwise is None:
        return (f"a critical-difference diagram needs >= 5 studies sharing >= 3 cells; "
                f"{studies or len(tables)} studies share {shared} cells" + (f" ({reason})" if reason else ""))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sns.set_theme(style="white", context="paper")
    order, ranks = list(res.mean_ranks.index), res.mean_ranks.to_numpy(float)
    pairs = {frozenset((r["a"], r["b"])): bool(r["differ"]) for _, r in res.pairwise.iterrows()}
    groups = _cliques(order, lambda a, b: pairs.get(frozenset((a, b)), False))
    k = len(order)
    fig, ax = plt.subplots(figsize=(7.0, 1.6 + 0.28 * k))
    ax.set_xlim(0.5, shared + 0.5)
    ax.set_ylim(-(k + 1) * 0.5 - 0.3 * len(groups), 1.0)
    ax.hlines(0, 1, shared, color="k", lw=1)
    for r in range(1, shared + 1):
        ax.vlines(r, 0, 0.15, color="k", lw=1)
        ax.text(r, 0.3, str(r), ha="center", va="bottom", fontsize=8)
    half = (k + 1) // 2
    for i, (cell, r) in enumerate(zip(order, ranks)):          # best half labelled left, the rest right
        y = -0.5 * (i + 1) if i < half else -0.5 * (k - i)
        x_text = 0.6 if i < half else shared + 0.4
        ax.plot([r, r, x_text], [0, y, y], color="0.3", lw=0.8)
        ax.text(x_text, y, f"{cell} ({r:.2f})", ha="left" if i >= half else "right", va="center", fontsize=8)
    for g, (i, j) in enumerate(groups):
        y = -0.25 - 0.3 * g
        ax.hlines(y, ranks[i] - 0.03, ranks[j] + 0.03, color="k", lw=3.5)
    ax.axis("off")
    p = "–" if not math.isfinite(res.p_value) else f"{res.p_value:.3g}"
    fig.text(0.5, 0.0, f"mean rank over {studies} studies (1 = best); Friedman p = {p}\nthick bars join cells "
                       f"that pairwise Wilcoxon signed-rank tests (Holm over {len(pairs)} pairs, α = {res.alpha:g}) "
                       f"cannot tell apart", ha="center", va="top", fontsize=8)
    return save_figure(fig, out, bbox_inches="tight")
