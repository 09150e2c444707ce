"""Seaborn ablation figures, chosen by the shape of the scientific grid.

* one axis (or conditional axes, where cells do not form a rectangle, e.g.
  dense vs CDLinear B=4/8): mean ± std per cell as points with error bars,
  individual seeds as dots, the baseline mean ± std as a horizontal band;
* two full axes: heatmap of means (annotated mean ± std);
* more axes: one heatmap per value of the remaining axes (facets).
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
    if len(axes) >= 2 and _rectangular(table, axes):
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
