"""Shared marks of the ablation figures: the verdict markers and their legend, label sizes measured with
matplotlib's TextPath.  The 95 % t-interval of the mean behind every error bar and band is analysis.stats'
(``t_interval``, ``t_ci``, ``t_half_widths``).
"""
from __future__ import annotations

from pathlib import Path

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


def save_figure(fig, out, **savefig_kw):
    """Write ``fig`` to ``out`` as a 150-dpi image (its folder created), close it, and return the path."""
    import matplotlib.pyplot as plt

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, **savefig_kw)
    plt.close(fig)
    return out
