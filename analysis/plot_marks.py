"""Shared marks of the ablation figures: the verdict markers and their legend, the 95 % t-interval of the
mean (scipy.stats.t; the error bars and bands of every figure), label sizes measured with matplotlib's TextPath.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


# verdict -> (marker, colour, legend text, symbol for heatmap / bar annotations)
VERDICTS = {"better": ("^", "#1a9850", "better than baseline", "▲"),
            "worse": ("v", "#d73027", "worse than baseline", "▼"),
            "equivalent": ("D", "#4575b4", "equivalent (within ±min_effect)", "◆"),
            "undecided": ("o", "#7f7f7f", "undecided", "○"),
            "continue": ("o", "#bdbdbd", "still adding seeds", "…"),
            "baseline": ("s", "#000000", "baseline", "■")}
CI_TEXT = "95 % t-interval of the mean"


def axis_label(table: pd.DataFrame) -> str:
    m = table.attrs.get("metric", "metric")
    return f"{m} ({'higher' if table.attrs.get('mode', 'max') == 'max' else 'lower'} is better)"


def verdict_of(row) -> str:
    if row.get("baseline"):
        return "baseline"
    v = row.get("verdict")
    return v if isinstance(v, str) and v in VERDICTS else "undecided"


def t_interval(vals: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the t interval of the mean (nan below 2 values)."""
    from scipy import stats

    vals = np.asarray(vals, float)
    vals = vals[np.isfinite(vals)]
    if len(vals) < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + confidence / 2, len(vals) - 1) * vals.std(ddof=1) / math.sqrt(len(vals)))


def t_ci(vals) -> tuple:
    """seaborn ``errorbar=`` callable: (low, high) of the 95 % t-interval (the mean alone below 2 values)."""
    vals = np.asarray(vals, float)
    m, h = float(np.mean(vals)), t_interval(vals)
    h = 0.0 if not math.isfinite(h) else h
    return m - h, m + h


def half_widths(table: pd.DataFrame) -> np.ndarray:
    """Each table row's t-interval half-width from its n and std (0 where n < 2)."""
    from scipy import stats

    n, sd = table["n"].to_numpy(float), table["std"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    return np.where(n >= 2, h, 0.0)


def text_width_in(labels, size: float) -> float:
    """Width in inches of the widest line of ``labels`` in the default font at ``size`` points."""
    from matplotlib.textpath import TextPath

    lines = [line for lb in labels for line in lb.split("\n")] or ["x"]
    return max(TextPath((0, 0), line, size=size).get_extents().width for line in lines) / 72.0


def verdict_legend(ax, verdicts, extra=(), title=None) -> None:
    """Legend outside the axes (never over the data): ``extra`` handles first, then one marker per verdict."""
    from matplotlib.lines import Line2D

    handles = list(extra) + [Line2D([], [], ls="", marker=VERDICTS[v][0], color=VERDICTS[v][1], ms=7,
                                    label=VERDICTS[v][2]) for v in VERDICTS if v in verdicts]
    ax.legend(handles=handles, fontsize=7, title=title, title_fontsize=7, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False)


def y_label(metric: str, table: pd.DataFrame) -> str:
    return axis_label(table) if metric == table.attrs.get("metric") else metric


def categorical(df: pd.DataFrame, hue):
    """Hue values as strings: a numeric hue otherwise gets seaborn's pale sequential palette."""
    if hue and hue in df and df[hue].notna().any():
        return df.assign(**{hue: df[hue].map(lambda v: None if v is None or v != v else str(v))})
    return df
