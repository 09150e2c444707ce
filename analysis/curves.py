"""Per-cell learning curves of a launch: a metric per epoch, the mean over
seeds as a line with a ±1 std band (std with ddof=1, as in the ablation
table), every seed as a faint line, one colour per scientific cell.

The histories come from ``MlflowClient.get_metric_history`` (one call per run
and metric: MLflow has no public bulk read for several runs).  Aggregation is
``pandas.DataFrame.groupby(...).agg`` over the FINISHED runs only, like the
table; FAILED and unfinished runs are drawn dashed so a divergence shows but
never enters the mean.  Cells are dodged by a few hundredths of an epoch so
that identical curves (one model on schedules of different length) stay visible.  The figure is matplotlib; seaborn's ``lineplot`` can
draw mean ± sd but not faint per-seed lines in the same colour with a
failed/finished distinction, so the few plotting lines are written here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import pandas as pd

HISTORY_COLUMNS = ("run_id", "metric", "step", "value")
# one marker per cell too: cells that share a trajectory (same start, only a longer
# schedule) would otherwise hide each other's lines completely
MARKERS = ("o", "s", "^", "D", "v", "P", "<", ">", "h", "*")


def load_histories(tracking_uri: str, run_ids: Iterable[str], metrics: Sequence[str]) -> pd.DataFrame:
    """Every logged value of ``metrics`` for ``run_ids`` as a long frame with
    columns run_id, metric, step, value (one row per logged point)."""
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"metrics must be a non-empty list of metric names, got {metrics!r}")
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri)
    rows = [(rid, m, h.step, h.value) for rid in run_ids for m in metrics for h in c.get_metric_history(rid, m)]
    df = pd.DataFrame(rows, columns=list(HISTORY_COLUMNS))
    return df.astype({"step": "int64", "value": "float64"})


def _check_history(history: pd.DataFrame, runs: pd.DataFrame) -> None:
    missing = [c for c in HISTORY_COLUMNS if c not in history.columns]
    if missing:
        raise ValueError(f"history is missing columns {missing}; allowed: a frame with {list(HISTORY_COLUMNS)}")
    missing = [c for c in ("run_id", "cell", "status") if c not in runs.columns]
    if missing:
        raise ValueError(f"runs is missing columns {missing}; allowed: a frame from analysis.store.load_runs")


def curve_summary(history: pd.DataFrame, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per cell and epoch: mean, std (ddof=1; NaN for one seed) and n of the
    FINISHED runs' values of ``metric``.  Columns cell, step, mean, std, n;
    cells in the order of ``runs``."""
    _check_history(history, runs)
    ok = runs.loc[runs["status"] == "FINISHED", ["run_id", "cell"]]
    h = history[history["metric"] == metric].merge(ok, on="run_id")
    h = h[np.isfinite(h["value"].to_numpy(float))]     # a NaN/inf point is a divergence, not a value
    out = h.groupby(["cell", "step"], sort=False)["value"].agg(["mean", "std", "count"]).reset_index()
    out = out.rename(columns={"count": "n"})
    order = {c: i for i, c in enumerate(pd.unique(runs["cell"]))}
    out["_o"] = out["cell"].map(order)
    return out.sort_values(["_o", "step"], kind="stable").drop(columns="_o").reset_index(drop=True)


def cell_colors(cells: Sequence[str]) -> dict:
    """One colour per cell: tab10 up to 10 cells, then evenly spaced husl hues."""
    import seaborn as sns

    pal = sns.color_palette("tab10" if len(cells) <= 10 else "husl", len(cells))
    return dict(zip(cells, pal))


def _draw_metric(ax, history: pd.DataFrame, runs: pd.DataFrame, metric: str, colors: dict, markers: dict,
                 label: str) -> None:
    from matplotlib.ticker import MaxNLocator

    h = history[history["metric"] == metric]
    cells = list(colors)
    # Dodge each cell by a few hundredths of an epoch (as seaborn's pointplot does):
    # cells that share a trajectory, e.g. the same model on a longer schedule, stay visible.
    dodge = {c: (i - (len(cells) - 1) / 2) * min(0.08, 0.4 / len(cells)) for i, c in enumerate(cells)}
    for cell, g in runs.groupby("cell", sort=False):
        for _, r in g.iterrows():       # every seed, faint; failed / unfinished ones dashed
            pts = h[h["run_id"] == r["run_id"]].sort_values("step")
            if len(pts):
                ok = r["status"] == "FINISHED"
                # failed runs get markers: one that died at epoch 2 has a single point
                ax.plot(pts["step"] + dodge[cell], pts["value"], color=colors[cell], alpha=0.3 if ok else 0.6,
                        lw=0.9, ls="-" if ok else (0, (3, 2)), marker=None if ok else "x", ms=5, zorder=1)
    summ = curve_summary(history, runs, metric)
    for cell, s in summ.groupby("cell", sort=False):
        x, sd = s["step"] + dodge[cell], s["std"].fillna(0.0)
        ax.fill_between(x, s["mean"] - sd, s["mean"] + sd, color=colors[cell], alpha=0.18, lw=0, zorder=2)
        ax.plot(x, s["mean"], color=colors[cell], lw=1.8, marker=markers[cell], ms=5, zorder=3,
                mfc="white", mew=1.4, markevery=max(1, len(s) // 12))     # ~12 markers: enough to tell cells apart
    vals = h["value"].to_numpy(float)
    vals = vals[np.isfinite(vals)]
    if len(vals) and vals.min() > 0 and vals.max() / vals.min() > 100:
        ax.set_yscale("log")            # a loss spanning decades is unreadable on a linear axis
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)


def plot_curves(runs: pd.DataFrame, history: pd.DataFrame, metrics: Sequence[str], out: str | Path,
                modes: Optional[dict] = None, title: str = "") -> Path:
    """Draw one panel per metric (side by side) and a legend of the cells below
    the panels, outside the data; writes PNG to ``out`` and returns the path.

    Args:
        runs: frame of analysis.store.load_runs (run_id, cell, status).
        history: long frame of load_histories.
        metrics: metric names, one panel each (e.g. [study metric, "train_loss"]).
        out: PNG path.
        modes: metric -> "max"/"min", shown as ↑/↓ in the axis label (default {}).
        title: figure title (default "").
    """
    _check_history(history, runs)
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"metrics must be a non-empty list of metric names, got {metrics!r}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    modes = modes or {}
    cells = list(pd.unique(runs["cell"]))
    colors = cell_colors(cells)
    markers = {c: MARKERS[i % len(MARKERS)] for i, c in enumerate(cells)}
    fig, axs = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 3.6), squeeze=False)
    for ax, m in zip(axs[0], metrics):
        arrow = {"max": " ↑", "min": " ↓"}.get(modes.get(m, ""), "")
        _draw_metric(ax, history, runs, m, colors, markers, f"{m}{arrow}")
    handles = []
    for cell in cells:
        st = runs.loc[runs["cell"] == cell, "status"]
        n_ok, n_bad = int((st == "FINISHED").sum()), int((st != "FINISHED").sum())
        note = f"  ({n_ok} finished" + (f", {n_bad} failed/unfinished: dashed, ×)" if n_bad else ")")
        handles.append(Line2D([], [], color=colors[cell], lw=1.8, marker=markers[cell], mfc="white", mew=1.4,
                              label=f"{cell}{note}"))
    handles.append(Line2D([], [], color="0.4", lw=0.9, alpha=0.5, label="one seed (faint); band: mean ± std"))
    # As many legend columns as fit the figure's width (~14 characters per inch at 8 pt).
    room = int(5.2 * len(metrics) * 14) // (max(len(h.get_label()) for h in handles) + 6)
    fig.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=max(1, min(room, 4)),
               fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out, dpi=130, bbox_inches="tight")    # tight: the legend below the axes is kept, not cut
    plt.close(fig)
    return out
