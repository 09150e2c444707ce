"""The figures a sweep file asks for by ``plot: {kind: ...}`` (see analysis/plots.py): ``line`` (metric vs a
numeric axis, one line per hue, cells without the axis as bands), ``bars`` (grouped bars with every seed as a
dot) and ``metric_curve`` (several metrics as one curve per hue).  Bands and bars are 95 % t-intervals of the
mean; lines and bars carry each cell's verdict against the baseline where the figure shows the table's metric.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .stats import t_ci, t_interval  # noqa: E402
from .plot_marks import (CI_TEXT, VERDICTS, categorical, verdict_of,  # noqa: E402
                         verdict_legend, y_label)


def line(ok: pd.DataFrame, table: pd.DataFrame, spec, metric: str):
    x, hue = spec["x"], spec.get("hue")
    col = f"metrics.{metric}"
    fig, ax = plt.subplots(figsize=(6.8, 3.8))
    # A launch narrowed by --set may have no run carrying x (only the cells
    # without it, e.g. the baselines of an order sweep): those become bands.
    ok = ok.assign(**{k: None for k in (x, hue) if k and k not in ok.columns})
    on = categorical(ok[ok[x].notna()].copy(), hue)
    use_hue = hue if hue and on[hue].notna().any() else None
    seen = []
    if len(on):
        on[x] = pd.to_numeric(on[x])
        sns.lineplot(data=on, x=x, y=col, hue=use_hue, errorbar=t_ci, ax=ax, err_kws={"alpha": 0.15})
        colors = {t.get_label(): t.get_color() for t in ax.get_lines()}
        if metric == table.attrs.get("metric"):      # verdicts belong to the table's metric only
            # the verdict's marker at each cell's mean, in its line's colour (the lines carry no markers)
            for _, r in table[table[x].notna()].iterrows() if x in table else []:
                v = verdict_of(r)
                seen.append(v)
                c = colors.get(str(r[hue]), "C0") if use_hue else "C0"
                ax.plot(float(r[x]), r["mean"], VERDICTS[v][0], color=c, ms=7, mec="black", mew=0.6, zorder=4)
    off = ok[ok[x].isna()]
    from matplotlib.lines import Line2D

    extra = [Line2D([], [], color=t.get_color(), label=f"{hue}={t.get_label()}" if use_hue else t.get_label())
             for t in ax.get_lines() if use_hue and not t.get_label().startswith("_")]
    for i, (cell, g) in enumerate(off.groupby("cell", sort=False)):
        m, h = g[col].mean(), t_interval(g[col].to_numpy(float))
        h = 0.0 if not math.isfinite(h) else h
        band = ax.axhspan(m - h, m + h, color=f"C{7 + i % 3}", alpha=0.25, zorder=0)
        ax.axhline(m, color=f"C{7 + i % 3}", lw=1.2, ls="--")
        band.set_label(f"{cell}: mean, {CI_TEXT}")
        extra.append(band)
    if spec.get("logy"):
        ax.set_yscale("log")
    ax.set_ylabel(y_label(metric, table))
    ax.set_xlabel(spec.get("x_label", x))
    verdict_legend(ax, seen, extra, title=f"bands: {CI_TEXT}" + ("; marker: verdict" if seen else ""))
    return fig


def bars(ok: pd.DataFrame, spec, metric: str, table: pd.DataFrame):
    x, hue = spec["x"], spec.get("hue")
    col = f"metrics.{metric}"
    ok = categorical(ok, hue)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.2 * ok[x].nunique() + 3.5), 3.8))
    order = list(dict.fromkeys(table[x].dropna()))
    hue_order = list(dict.fromkeys(str(v) for v in table[hue].dropna())) if hue else None
    sns.barplot(data=ok, x=x, y=col, hue=hue, order=order, hue_order=hue_order, errorbar=t_ci, capsize=0.1,
                ax=ax, alpha=0.85)
    dots = {"palette": "dark:0.2"} if hue else {"color": "0.2"}     # one dark grey for every hue level
    sns.stripplot(data=ok, x=x, y=col, hue=hue, order=order, hue_order=hue_order, dodge=bool(hue), size=3, ax=ax,
                  legend=False, **dots)
    seen = _bar_verdicts(ax, table, x, hue, order, hue_order) if metric == table.attrs.get("metric") else []
    ax.set_ylabel(y_label(metric, table))
    handles, labels = ax.get_legend_handles_labels()
    from matplotlib.lines import Line2D

    extra = []
    for h, lb in zip(handles, labels):
        if not lb.startswith("_"):
            h.set_label(f"{hue}={lb}")
            extra.append(h)
    if seen:
        extra.append(Line2D([], [], ls="", label=", ".join(f"{VERDICTS[v][3]} {VERDICTS[v][2]}"
                                                             for v in VERDICTS if v in seen)))
    ax.legend(handles=extra, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title=f"bars: mean, {CI_TEXT}", title_fontsize=7)
    return fig


def _bar_verdicts(ax, table, x, hue, order, hue_order) -> list:
    """The verdict's symbol above each bar's interval (bars found by their container's hue and position)."""
    seen, top = [], {}
    for line in ax.lines:                       # an error bar (with caps): one line, NaN between segments
        xs, ys = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        if np.isfinite(xs).any() and np.isfinite(ys).any():
            top[round(float(np.nanmedian(xs)), 2)] = float(np.nanmax(ys))
    for ci, cont in enumerate(ax.containers):
        h = hue_order[ci] if hue and ci < len(hue_order or []) else None
        for bar in cont:
            cx = bar.get_x() + bar.get_width() / 2
            xv = order[int(round(cx))] if 0 <= int(round(cx)) < len(order) else None
            hit = table[(table[x] == xv) & ((table[hue].map(str) == h) if hue else True)]
            if not len(hit) or not math.isfinite(bar.get_height()):
                continue
            v = verdict_of(hit.iloc[0])
            seen.append(v)
            y = top.get(round(cx, 2), bar.get_height())
            ax.annotate(VERDICTS[v][3], (cx, y), xytext=(0, 3), textcoords="offset points", ha="center",
                        va="bottom", color=VERDICTS[v][1], fontsize=9)
    return seen


def metric_curve(ok: pd.DataFrame, spec, table: pd.DataFrame):
    metrics = spec["metrics"]
    xs = spec.get("x_values") or list(range(len(metrics)))
    hue = spec.get("hue") or "cell"
    long = []
    for _, r in ok.iterrows():
        for m, xv in zip(metrics, xs):
            v = r.get(f"metrics.{m}")
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                long.append({"x": xv, "value": v, hue: r[hue], "cell": r["cell"]})
    df = categorical(pd.DataFrame(long), hue)
    fig, ax = plt.subplots(figsize=(6.8, 3.8))
    if not df.empty:
        style = "cell" if hue != "cell" and df["cell"].nunique() > df[hue].nunique() else None
        sns.lineplot(data=df, x="x", y="value", hue=hue, style=style, marker="o", errorbar=t_ci, ax=ax)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                  title=f"bands: {CI_TEXT}", title_fontsize=7)
    ax.set_xlabel(spec.get("x_label", "x"))
    ax.set_ylabel(spec.get("metric", "value"))
    return fig
