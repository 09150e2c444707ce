"""The cost–accuracy picture (issue 24, ``ablate plot --kind pareto --cost flops|memory|latency|params``): the
study metric of each cell (mean with its 95 % t-interval over seeds, analysis.stats.t_interval) against one
cost of analysis/costs.py on a log scale, the Pareto front (no other cell is at most as costly and at least as
good, one of the two strictly) joined by a step line and its cells drawn as filled stars, the others as hollow
circles; each cell labelled.  Cells without the cost (runs from before the cost probe, a probe that failed) are
left out and named in the caption.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import List

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .costs import LABELS, PARETO_COSTS  # noqa: E402
from .plot_marks import CI_TEXT, save_figure, y_label  # noqa: E402
from .stats import t_interval  # noqa: E402


def pareto_front(cost: List[float], score: List[float], mode: str = "max") -> List[bool]:
    """Whether each point is on the front: no other point costs ≤ and scores ≥ (≤ for ``mode`` "min"), one
    of them strictly."""
    s = np.asarray(score, float) * (1 if mode == "max" else -1)
    c = np.asarray(cost, float)
    return [not any((c[j] <= c[i] and s[j] >= s[i] and (c[j] < c[i] or s[j] > s[i])) for j in range(len(c)) if j != i)
            for i in range(len(c))]


def _label(r, axes) -> str:
    parts = [f"{a}={r[a]}" for a in axes if r[a] is not None and not (isinstance(r[a], float) and math.isnan(r[a]))]
    return ", ".join(parts) or str(r["cell"])


def plot_pareto(table: pd.DataFrame, out: str | Path, cost: str, title: str = "") -> Path:
    """Draw the picture for ``table`` (ablation_table with analysis/costs.py's columns); ``cost``: one of
    PARETO_COSTS.  Raises ValueError (one line) for an unknown cost or when no cell has both values."""
    if cost not in PARETO_COSTS:
        raise ValueError(f"--cost {cost!r}: allowed: {', '.join(PARETO_COSTS)}")
    col = PARETO_COSTS[cost]
    metric, mode = table.attrs.get("metric", "metric"), table.attrs.get("mode", "max")
    values = table.attrs.get("values", {})
    have = table[pd.to_numeric(table[col], errors="coerce").gt(0) & table["mean"].notna()] if col in table \
        else table.iloc[:0]
    if have.empty:
        raise ValueError(f"no cell has both {metric} and the cost {cost} ({col}): runs from before the cost probe, "
                         f"or every probe failed (see the cost_note column of `ablate table --format csv`)")
    axes = list(table.attrs.get("axes") or [])
    x = have[col].astype(float).to_numpy()
    y = have["mean"].astype(float).to_numpy()
    h = np.array([t_interval(np.fromiter(values.get(c, {}).values(), float)) for c in have["cell"]])
    front = pareto_front(x, y, mode)
    fig, ax = plt.subplots(figsize=(6.8, 4.2))
    ax.errorbar(x, y, yerr=np.where(np.isfinite(h), h, 0.0), fmt="none", ecolor="0.45", capsize=3, lw=1, zorder=2)
    on = np.array(front)
    ax.scatter(x[~on], y[~on], s=45, facecolors="white", edgecolors="C0", linewidths=1.4, zorder=3,
               label="dominated cell")
    ax.scatter(x[on], y[on], s=140, marker="*", color="C3", edgecolors="black", linewidths=0.6, zorder=4,
               label="Pareto front")
    order = np.argsort(x[on])
    ax.step(x[on][order], y[on][order], where="post", color="C3", lw=1.2, ls="--", zorder=1)
    right = np.log(x) > np.log(x.min()) + 0.6 * (np.log(x.max()) - np.log(x.min()))   # label to the left
    for xi, yi, ri, (_, r) in zip(x, y, right, have.iterrows()):
        ax.annotate(_label(r, axes) + (" (baseline)" if r.get("baseline") else ""), (xi, yi),
                    xytext=(-6 if ri else 6, 5), textcoords="offset points", fontsize=8, ha="right" if ri else "left")
    ax.margins(x=0.12, y=0.12)
    ax.set_xscale("log")
    ax.set_xlabel(LABELS[col] + " (log scale)")
    ax.set_ylabel(y_label(metric, table) if "mean" in table else metric)
    ax.legend(fontsize=8, loc="best", title=f"bars: {CI_TEXT}", title_fontsize=8)
    missing = [c for c in table["cell"] if c not in set(have["cell"])]
    if missing:
        fig.text(0.01, 0.01, f"without {cost}: {', '.join(map(str, missing))}", fontsize=7)
    fig.suptitle(title or f"{metric} against {cost}")
    fig.tight_layout()
    return save_figure(fig, out)
