"""Seaborn ablation figures, chosen by the shape of the scientific grid.

* one axis (or conditional axes, where cells do not form a rectangle, e.g.
  dense vs CDLinear B=4/8): mean ± std per cell as points with error bars,
  individual seeds as dots, the baseline mean ± std as a horizontal band;
* two full axes: heatmap of means (annotated mean ± std);
* more axes: one heatmap per value of the remaining axes (facets).

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


def _label(table: pd.DataFrame) -> str:
    m = table.attrs.get("metric", "metric")
    return f"{m} ({'higher' if table.attrs.get('mode', 'max') == 'max' else 'lower'} is better)"


def _rectangular(table: pd.DataFrame, axes) -> bool:
    if any(table[a].isna().any() for a in axes):
        return False
    return len(table) == int(np.prod([table[a].nunique() for a in axes]))


def plot_ablation(runs: pd.DataFrame, table: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Draw the figure for ``table`` (analysis.tables.ablation_table) with the
    per-seed values from ``runs``; writes PNG to ``out`` and returns the path."""
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
        fig = _line(ok, table, spec, spec.get("metric", metric))
    elif kind == "bars":
        fig = _bars(ok, spec, spec.get("metric", metric), table)
    elif kind == "metric_curve":
        fig = _metric_curve(ok, spec, table)
    elif kind == "heatmap" and spec.get("x") and spec.get("hue"):
        fig = _heatmaps(table, [spec["hue"], spec["x"]], metric)
    elif len(axes) >= 2 and _rectangular(table, axes):
        fig = _heatmaps(table, axes, metric)
    else:
        fig = _points(runs, table, metric)
    fig.suptitle(title or f"{metric} by scientific cell")
    fig.tight_layout()
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out


def _points(runs: pd.DataFrame, table: pd.DataFrame, metric: str):
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(table) + 2), 3.6))
    order = list(table["cell"])
    labels = [c.replace(",", "\n") for c in order]
    ok = runs[runs["status"] == "FINISHED"]
    base = table[table["baseline"]]
    if len(base) and math.isfinite(base["mean"].iloc[0]):
        m, s = base["mean"].iloc[0], base["std"].iloc[0]
        ax.axhspan(m - s, m + s, color="0.85", zorder=0, label="baseline mean ± std")
        ax.axhline(m, color="0.5", lw=1, zorder=1)
    sns.stripplot(data=ok, x="cell", y=f"metrics.{metric}", order=order, color="0.3", size=4, ax=ax,
                  jitter=0.08, zorder=2)
    x = np.arange(len(order))
    ax.errorbar(x, table["mean"], yerr=table["std"].fillna(0), fmt="o", color="C3", capsize=4, ms=7,
                zorder=3, label="mean ± std over seeds")
    ax.set_xticks(x, labels)
    ax.set_xlabel("")
    ax.set_ylabel(_label(table))
    ax.legend(loc="best", fontsize=8)
    return fig


def _heatmaps(table: pd.DataFrame, axes, metric: str):
    rows_ax, cols_ax, facets = axes[0], axes[1], axes[2:]
    groups = list(table.groupby(facets)) if facets else [((), table)]
    fig, axs = plt.subplots(1, len(groups), figsize=(4.2 * len(groups) + 1, 3.6), squeeze=False)
    vmin, vmax = table["mean"].min(), table["mean"].max()
    cmap = "viridis" if table.attrs.get("mode", "max") == "max" else "viridis_r"
    for ax, (key, g) in zip(axs[0], groups):
        means = g.pivot(index=rows_ax, columns=cols_ax, values="mean")
        stds = g.pivot(index=rows_ax, columns=cols_ax, values="std")
        annot = means.copy().astype(object)
        for i in means.index:
            for j in means.columns:
                annot.loc[i, j] = f"{means.loc[i, j]:.3g}\n±{stds.loc[i, j]:.2g}"
        sns.heatmap(means, annot=annot, fmt="", cmap=cmap, vmin=vmin, vmax=vmax, ax=ax,
                    cbar_kws={"label": _label(table)})
        if facets:
            ax.set_title(", ".join(f"{f}={v}" for f, v in zip(facets, key if isinstance(key, tuple) else (key,))))
    return fig


def _ylabel(metric: str, table: pd.DataFrame) -> str:
    return _label(table) if metric == table.attrs.get("metric") else metric


def _line(ok: pd.DataFrame, table: pd.DataFrame, spec, metric: str):
    x, hue = spec["x"], spec.get("hue")
    col = f"metrics.{metric}"
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    # A launch narrowed by --set may have no run carrying x (only the cells
    # without it, e.g. the baselines of an order sweep): those become bands.
    ok = ok.assign(**{k: None for k in (x, hue) if k and k not in ok.columns})
    on = ok[ok[x].notna()].copy()
    if len(on):
        on[x] = pd.to_numeric(on[x])
        sns.lineplot(data=on, x=x, y=col, hue=hue if hue and on[hue].notna().any() else None, marker="o",
                     errorbar="sd", ax=ax)
    off = ok[ok[x].isna()]
    for i, (cell, g) in enumerate(off.groupby("cell", sort=False)):
        m, sd = g[col].mean(), g[col].std(ddof=1) if len(g) > 1 else 0.0
        ax.axhspan(m - sd, m + sd, color=f"C{7 + i % 3}", alpha=0.25, zorder=0)
        ax.axhline(m, color=f"C{7 + i % 3}", lw=1.2, ls="--", label=f"{cell} (mean ± std)")
    if spec.get("logy"):
        ax.set_yscale("log")
    ax.set_ylabel(_ylabel(metric, table))
    ax.set_xlabel(spec.get("x_label", x))
    ax.legend(fontsize=7, loc="best")
    return fig


def _bars(ok: pd.DataFrame, spec, metric: str, table: pd.DataFrame):
    x, hue = spec["x"], spec.get("hue")
    col = f"metrics.{metric}"
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * ok[x].nunique() + 3), 3.8))
    sns.barplot(data=ok, x=x, y=col, hue=hue, errorbar="sd", capsize=0.1, ax=ax, alpha=0.85)
    sns.stripplot(data=ok, x=x, y=col, hue=hue, dodge=True, color="0.2", size=3, ax=ax, legend=False)
    ax.set_ylabel(_ylabel(metric, table))
    return fig


def _metric_curve(ok: pd.DataFrame, spec, table: pd.DataFrame):
    metrics = spec["metrics"]
    xs = spec.get("x_values") or list(range(len(metrics)))
    hue = spec.get("hue") or "cell"
    long = []
    for _, r in ok.iterrows():
        for m, xv in zip(metrics, xs):
            v = r.get(f"metrics.{m}")
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                long.append({"x": xv, "value": v, hue: r[hue], "cell": r["cell"]})
    df = pd.DataFrame(long)
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    if not df.empty:
        style = "cell" if hue != "cell" and df["cell"].nunique() > df[hue].nunique() else None
        sns.lineplot(data=df, x="x", y="value", hue=hue, style=style, marker="o", errorbar="sd", ax=ax)
    ax.set_xlabel(spec.get("x_label", "x"))
    ax.set_ylabel(spec.get("metric", "value"))
    ax.legend(fontsize=7, loc="best")
    return fig


def _t_interval(vals: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the t interval of the mean (nan below 2 values)."""
    from scipy import stats

    vals = vals[np.isfinite(vals)]
    if len(vals) < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + confidence / 2, len(vals) - 1) * vals.std(ddof=1) / math.sqrt(len(vals)))


def plot_interaction(runs: pd.DataFrame, table: pd.DataFrame, out: str | Path, title: str = "") -> Path:
    """Interaction plot of a two-axis grid: the metric's mean against the first
    axis, one line per value of the second, error bars the 95 % t interval of
    the mean.  Parallel lines = no interaction.  ValueError unless the grid has
    exactly two axes with several values each and every combination present."""
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
            errs.append(_t_interval(v))
        ax.errorbar(range(len(xs)), means, yerr=np.nan_to_num(errs), marker="o", capsize=4, color=f"C{i}",
                    label=f"{hue}={h}")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel(_label(table))
    ax.legend(title="error bars: 95 % CI of the mean", fontsize=8, title_fontsize=8,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle(title or f"interaction of {x} and {hue}")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150)
    plt.close(fig)
    return out
