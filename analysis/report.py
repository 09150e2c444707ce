"""A self-contained HTML report of one launch (or of a suite's studies): the
file a researcher sends to a co-author; it opens offline in any browser.

I/O and rendering are apart: ``collect_study`` reads the MLflow store
(analysis.store.load_runs, per-epoch histories, the launch's parent run and
its ``sweep.yaml`` artifact) and draws the figures; ``render_html`` only
formats ReportStudy objects.  The numbers are analysis.tables' own
(``render(ablation_table(runs), "csv")``), the figures analysis.plots.
plot_ablation and analysis.curves.plot_curves as ``data:image/png;base64``
URIs; styles and a small table-sorting script are inline, nothing is fetched.
The HTML is written by hand with html.escape: pandas' Styler needs jinja2 (not
a dependency), and neither it nor DataFrame.to_html (used for the suite
summary) can keep each cell's exact CSV text in an attribute beside the
rounded number shown, which is what makes the page checkable against the CSV.
"""
from __future__ import annotations

import base64
import csv
import html
import io
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union
from urllib.parse import urlsplit

import pandas as pd

from . import contract as C

DEFAULT_UI = "http://127.0.0.1:5000"
NOT_RECORDED = "not recorded"


@dataclass
class ReportStudy:
    """Everything the report shows of one study's launch.

    Args:
        name, experiment_id, launch: experiment (sweep) name, its MLflow id, the launch id.
        task, paper: task name; the paper, or "not recorded".  metric, mode: study metric, "max"/"min".
        table_csv: ``render(ablation_table(runs), "csv")``.
        trials: one row per run: run_id, cell, seed, status, value, wall_s, reason, retries.
        footnotes: the lines under the Markdown table (default ()).
        git_commits, hosts: distinct values on the runs (default ()).
        started, ended: first start, last end, UTC Timestamps (default None).
        wall_s, trial_wall_median_s: ended − started, median run duration, in s (default NaN).
        sweep_yaml: the sweep file as run; None is shown as "not recorded" (default None).
        plot_png, curves_png: PNG bytes of the ablation plot and learning curves (default None).
        pareto_png: PNG bytes of the cost–accuracy picture (analysis/plot_pareto.py: FLOPs per sample, else
            parameters, on the x axis; issue 24) (default None).
        parent_run_id: the launch's parent MLflow run; None in older stores (default None).
        tracking_uri: the store, credentials removed (default "").
        notes: problems met while collecting, e.g. a figure that failed (default ()).
        external: runs ablate did not launch (analysis.api.report_study): {"source": ..., "mapping": ...}, one
            line each; the page says so, shows both, and has no launch, sweep file or rerun commands (default None).
    """

    name: str
    experiment_id: str
    launch: str
    task: str
    paper: str
    metric: str
    mode: str
    table_csv: str
    trials: pd.DataFrame
    footnotes: Sequence[str] = ()
    git_commits: Sequence[str] = ()
    hosts: Sequence[str] = ()
    started: Optional[pd.Timestamp] = None
    ended: Optional[pd.Timestamp] = None
    wall_s: float = math.nan
    trial_wall_median_s: float = math.nan
    sweep_yaml: Optional[str] = None
    plot_png: Optional[bytes] = None
    curves_png: Optional[bytes] = None
    pareto_png: Optional[bytes] = None
    parent_run_id: Optional[str] = None
    tracking_uri: str = ""
    notes: Sequence[str] = ()
    external: Optional[Dict[str, str]] = None


def collect_study(uri: str, experiment: str, launch: Optional[str] = "latest", *,
                  sweep_yaml: Optional[str] = None, metric: Optional[str] = None,
                  pooled: Optional[tuple] = None) -> ReportStudy:
    """Read one launch of ``experiment`` (an id, "latest" or None for all) from
    the store at ``uri`` and draw its figures.  ``sweep_yaml``: the sweep text as
    run (default: the parent run's ``sweep.yaml`` artifact, when there is one).
    Raises LookupError (no such sweep / launch) and KeyError (metric not recorded)."""
    from mlflow.tracking import MlflowClient

    from .curves import load_histories, plot_curves
    from .plots import plot_ablation
    from .store import load_runs
    from .tables import ablation_table, render

    # pooled: (runs, table) of several launches as the CLI pooled them (analysis/pooling.py)
    runs, table = pooled if pooled else (None, None)
    if runs is None:
        runs = load_runs(experiment, uri, launch=launch)
        table = ablation_table(runs, metric=metric)
    metric, mode = table.attrs["metric"], table.attrs["mode"]
    c, launch = MlflowClient(uri), runs.attrs["launch"]
    parent = _parent_run(c, runs, launch) if launch else None
    if sweep_yaml is None and parent is not None:
        sweep_yaml = _artifact_text(c, parent.info.run_id, "sweep.yaml")
    notes: List[str] = []
    plot_png = _png(lambda p: plot_ablation(runs, table, p, title=experiment), "ablation plot", notes)
    hist = load_histories(uri, runs["run_id"], list(dict.fromkeys([metric, "train_loss"])))
    shown = list(dict.fromkeys(m for m in [metric, "train_loss"] if (hist["metric"] == m).any()))
    modes = {**runs.attrs.get("metric_modes", {}), metric: mode}
    curves_png = _png(lambda p: plot_curves(runs, hist, shown, p, modes=modes), "learning curves", notes) if shown else None
    if not shown:
        notes.append("no per-epoch history was recorded: no learning curves")
    pareto_png = _pareto_png(table, experiment, notes)
    md = render(table, "md").splitlines()
    last = max(i for i, line in enumerate(md) if line.startswith("|"))
    tags = lambda k: [v for v in runs.get(C.column(k), pd.Series(dtype=object)).dropna().unique() if v]
    trials = _trials(runs, metric)
    return ReportStudy(
        name=experiment, experiment_id=str(runs["experiment_id"].iloc[0]), launch=str(launch or "all launches"),
        task=(tags(C.TASK) or [NOT_RECORDED])[0], paper=str((tags(C.PAPER) or [_paper(sweep_yaml)])[0] or NOT_RECORDED),
        metric=metric, mode=mode, table_csv=render(table, "csv"), trials=trials,
        footnotes=tuple(line.strip().strip("_") for line in md[last + 1:] if line.strip()),
        git_commits=tuple(sorted({*tags(C.GIT_COMMIT), *tags(C.LAUNCH_GIT_COMMIT), *tags(C.RESUMED_GIT_COMMIT),
                                  *tags(C.NODE_GIT_COMMIT)})),
        hosts=tuple(sorted({*tags(C.HOSTNAME), *tags(C.DRIVER_HOST)})), sweep_yaml=sweep_yaml, plot_png=plot_png,
        curves_png=curves_png, pareto_png=pareto_png, parent_run_id=parent.info.run_id if parent is not None else None,
        tracking_uri=_public_uri(uri), notes=tuple(notes), **_timing(runs, trials))


def _parent_run(c, runs: pd.DataFrame, launch: str):
    """The launch's parent run: the trials' ``mlflow.parentRunId``, else a run
    tagged ``ablate.phase=launch`` of this launch; None in older stores."""
    from mlflow.exceptions import MlflowException

    ids = runs[C.column(C.PARENT_RUN)].dropna().unique() if C.column(C.PARENT_RUN) in runs else []
    try:
        if len(ids):
            return c.get_run(ids[0])
        found = c.search_runs([str(runs["experiment_id"].iloc[0])], max_results=1,
                              filter_string=f"{C.equals(C.PHASE, C.PHASE_LAUNCH)} and {C.equals(C.LAUNCH, launch)}")
        return found[0] if found else None
    except MlflowException:
        return None


def _artifact_text(c, run_id: str, path: str) -> Optional[str]:
    from mlflow.exceptions import MlflowException

    try:
        with tempfile.TemporaryDirectory() as d:
            return Path(c.download_artifacts(run_id, path, d)).read_text()
    except (MlflowException, OSError):       # no such artifact: the page says "not recorded"
        return None


def _paper(sweep_yaml: Optional[str]):
    import yaml

    try:
        raw = yaml.safe_load(sweep_yaml) if sweep_yaml else None
    except yaml.YAMLError:                   # an unparsable text is still shown as it is
        raw = None
    return raw.get("paper") if isinstance(raw, dict) else None


def _pareto_png(table: pd.DataFrame, experiment: str, notes: List[str]) -> Optional[bytes]:
    """The cost–accuracy picture against FLOPs per sample, or parameters where no cell has FLOPs (runs from
    before the cost probe, a model the probe could not call); none where no cell has a mean."""
    from .costs import PARETO_COSTS
    from .plot_pareto import plot_pareto

    has = lambda col: col in table and bool(pd.to_numeric(table[col], errors="coerce").gt(0).any())
    cost = next((k for k in ("flops", "params") if has(PARETO_COSTS[k])), None)
    if cost is None or not table["mean"].notna().any():
        return None
    return _png(lambda p: plot_pareto(table, p, cost, title=f"{experiment}: {table.attrs.get('metric', '')} "
                                                              f"against {cost}"), "cost–accuracy picture", notes)


def _png(draw, what: str, notes: List[str]) -> Optional[bytes]:
    """PNG bytes of ``draw(path)``; a figure that fails is a note, not a lost report."""
    with tempfile.TemporaryDirectory() as d:
        try:
            return Path(draw(Path(d) / "f.png")).read_bytes()
        except Exception as e:  # noqa: BLE001 - any plotting error; the numbers are still reported
            from .plots import NothingToPlot

            notes.append(str(e) if isinstance(e, NothingToPlot) else f"could not draw the {what} ({type(e).__name__}: {e})")
            return None


def _trials(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    col = lambda name: runs[name] if name in runs else pd.Series([None] * len(runs), index=runs.index)
    dur = (pd.to_datetime(runs["end_time"], utc=True) - pd.to_datetime(runs["start_time"], utc=True)).dt.total_seconds()
    return pd.DataFrame({"run_id": runs["run_id"], "cell": runs["cell"], "seed": runs["seed"], "status": runs["status"],
                         "value": pd.to_numeric(col(f"metrics.{metric}"), errors="coerce"), "wall_s": dur,
                         "reason": col("failure_reason"),
                         "retries": pd.to_numeric(col(C.column(C.RETRIES)), errors="coerce").fillna(0).astype(int)
                         }).reset_index(drop=True)


def _timing(runs: pd.DataFrame, trials: pd.DataFrame) -> dict:
    started, ended = pd.to_datetime(runs["start_time"], utc=True).min(), pd.to_datetime(runs["end_time"], utc=True).max()
    # FINISHED runs only, when there are some: a trial that diverged at epoch 1 says little about cost
    fin = trials.loc[trials["status"] == "FINISHED", "wall_s"].dropna()
    med = (fin if len(fin) else trials["wall_s"].dropna()).median()
    return {"started": None if pd.isna(started) else started, "ended": None if pd.isna(ended) else ended,
            "wall_s": math.nan if pd.isna(started) or pd.isna(ended) else (ended - started).total_seconds(),
            "trial_wall_median_s": float(med) if pd.notna(med) else math.nan}


def _public_uri(uri: str) -> str:
    u = urlsplit(uri)
    return u._replace(netloc=u.hostname + (f":{u.port}" if u.port else "")).geturl() if u.username else uri


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI page of a run."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def render_html(studies: Sequence[ReportStudy], *, title: Optional[str] = None, ui_url: str = DEFAULT_UI,
                suite_summary: Union[pd.DataFrame, str, None] = None) -> str:
    """The whole page: a section per study, preceded by the cross-task summary
    (a frame, or preformatted text) when one is given."""
    if not isinstance(studies, (list, tuple)) or not studies or not all(isinstance(s, ReportStudy) for s in studies):
        raise ValueError(f"studies must be a non-empty list of ReportStudy, got {studies!r:.80}")
    if not isinstance(ui_url, str) or urlsplit(ui_url).scheme not in ("http", "https") or not urlsplit(ui_url).netloc:
        raise ValueError(f"ui_url must be an http(s) URL such as {DEFAULT_UI}, got {ui_url!r}")
    if suite_summary is not None and not isinstance(suite_summary, (pd.DataFrame, str)):
        raise ValueError(f"suite_summary must be a DataFrame, a str or None, got {type(suite_summary).__name__}")
    title = title or "ablate report: " + ", ".join(s.name for s in studies)
    parts = [f"<h1>{_e(title)}</h1>"]
    if len(studies) > 1:
        parts.append("<nav><b>Studies:</b> " + " · ".join(f'<a href="#{_slug(s.name)}">{_e(s.name)}</a>' for s in studies)
                     + "</nav>")
    if isinstance(suite_summary, pd.DataFrame):
        parts.append('<section><h2>Cross-task summary</h2><div class="scroll">' + suite_summary.to_html(
            index=False, border=0, classes="data", na_rep="–", float_format=lambda v: f"{v:.4g}") + "</div></section>")
    elif isinstance(suite_summary, str):
        parts.append(f"<section><h2>Cross-task summary</h2><pre>{_e(suite_summary)}</pre></section>")
    parts += [_study_html(s, ui_url.rstrip("/")) for s in studies]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width='
            f'device-width, initial-scale=1"><title>{_e(title)}</title><style>{_CSS}</style></head><body>'
            f'{"".join(parts)}<script>{_JS}</script></body></html>\n')


def write_report(studies: Sequence[ReportStudy], out: Union[str, Path], *, title: Optional[str] = None,
                 ui_url: str = DEFAULT_UI, suite_summary: Union[pd.DataFrame, str, None] = None) -> Path:
    """render_html(...) written to ``out`` (UTF-8); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(studies, title=title, ui_url=ui_url, suite_summary=suite_summary), encoding="utf-8")
    return out


def _study_html(s: ReportStudy, ui: str) -> str:
    when = lambda t: t.strftime("%Y-%m-%d %H:%M:%S UTC") if t is not None else NOT_RECORDED
    link = lambda rid, text: f'<a href="{_e(run_url(ui, s.experiment_id, rid))}">{text}</a>' if s.experiment_id else text
    rerun = lambda rid: "–" if s.external else f"<code>ablate trial --from-run {_e(rid)}</code>"
    meta = [("task", _e(s.task)), ("paper", _e(s.paper)),
            ("launch", _e(s.launch) + (f" ({link(s.parent_run_id, 'launch run in MLflow')})" if s.parent_run_id else "")),
            ("git commit", "<br>".join(f"<code>{_e(g)}</code>" for g in s.git_commits) or NOT_RECORDED),
            ("hosts", _e(", ".join(s.hosts) or NOT_RECORDED)), ("first start", when(s.started)),
            ("last end", when(s.ended)), ("wall time", _dur(s.wall_s)), ("per trial (median)", _dur(s.trial_wall_median_s)),
            ("trials", _e(", ".join(f"{n} {k.lower()}" for k, n in s.trials["status"].value_counts().items()))),
            ("store", f'<code>{_e(s.tracking_uri or NOT_RECORDED)}</code> · '
                      f'<a href="{_e(ui)}/#/experiments/{_e(s.experiment_id)}">experiment in MLflow</a>'
                      # the launch's shared view (sweeps/runner/tracking.py share_launch_view): its trials, metric,
                      # axes and seed as columns; a launch from before it lacks the tag and the UI says so
                      + (f' · <a href="{_e(ui)}/#/experiments/{_e(s.experiment_id)}/runs?viewStateShareKey='
                         f'{_e(s.launch)}">this launch\'s trials in MLflow</a>' if s.launch and not s.external else ""))]
    if s.external:      # runs ablate did not launch: where they came from and how they were read, no launch
        meta = [("runs", "<b>external runs</b> (not launched by ablate): " + _e(s.external.get("source"))),
                ("mapping", _e(s.external.get("mapping")))] + [(k, v) for k, v in meta if k not in (
                    "task", "paper", "launch", "git commit", "hosts", *(() if s.experiment_id else ("store",)))]
    # the conclusion first (the verdicts, at any window from 1280 px), then the long tail, then provenance
    out = [f'<section id="{_slug(s.name)}"><h2>{_e(s.name)}</h2><p class="lede">{_lede(s)}</p>',
           f"<h3>Conclusion</h3>{_verdict_html(s.table_csv, s.metric, s.mode)}"]
    out += [f'<p class="foot">{_e(f)}</p>' for f in s.footnotes]
    out.append(_table_html(s.table_csv, s.metric, s.mode))
    out.append("<h3>Launch</h3>" if not s.external else "<h3>Runs read</h3>")
    out.append('<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta) + "</dl>")
    out += [f'<p class="warn">{_e(n)}</p>' for n in s.notes]
    for head, png in (("Plot", s.plot_png), ("Cost and accuracy", s.pareto_png), ("Learning curves", s.curves_png)):
        if png:
            out.append(f'<h3>{head}</h3><figure><img alt="{head.lower()} of {_e(s.name)}" '
                       f'src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>')
    bad = [f"<tr><td>{_cell(t.cell)}</td><td class=num>{_e(t.seed)}</td><td>{_e(t.status)}</td><td class=why>"
           f"{_reason(t.reason)}</td><td class=num>{int(t.retries)}</td><td>{rerun(t.run_id)}"
           f"</td><td>{link(t.run_id, 'MLflow')}</td></tr>" for t in s.trials.itertuples() if t.status != "FINISHED"]
    out.append("<h3>Failed and unfinished trials</h3>" + (_grid("failures", (
        "cell", "seed", "status", "reason", "retries", "rerun alone", "run"), bad) if bad else "<p>none: every trial finished.</p>"))
    rows = [f"<tr><td>{_cell(t.cell)}</td><td class=num>{_e(t.seed)}</td><td>{_e(t.status)}</td><td class=num "
            f"title=\"{_e(t.value)}\">{'' if pd.isna(t.value) else f'{t.value:.4g}'}</td><td class=num>"
            f"{'' if pd.isna(t.wall_s) else f'{t.wall_s:.1f}'}</td><td>{link(t.run_id, _e(t.run_id))}</td></tr>"
            for t in s.trials.itertuples()]
    out.append(f"<h3>Runs</h3><details><summary>all {len(rows)} runs of this launch, with their MLflow pages</summary>"
               + _grid("sortable runs", ("cell", "seed", "status", s.metric, "wall s", "MLflow run"), rows) + "</details>")
    if not s.external:
        out.append("<h3>Sweep file</h3>" + (f"<pre>{_e(s.sweep_yaml)}</pre>" if s.sweep_yaml else f"<p>{NOT_RECORDED}</p>"))
    return "".join(out) + "</section>"


_LABELS = {"mean": "{m} mean {a}", "delta": "Δ vs baseline", "p_value": "p (unadjusted)", "p_adj": "p (adjusted)",
           "ci_low": "CI low", "ci_high": "CI high", "epoch_s": "s / epoch", "hedges_g": "Hedges g",
           "mde": "MDE", "seeds_needed": "seeds needed", "peak_mem_mb": "peak MB", "look": "look (0-based)",
           "p_bound": "p* (boundary)", "ci_level": "CI level", "ci_low_unadj": "CI low (unadj.)",
           "ci_high_unadj": "CI high (unadj.)", "p_eq_adj": "p equiv. (adjusted)", "seeds_basis": "seeds needed from",
           "seeds_low": "seeds needed (low)", "seeds_high": "seeds needed (high)"}


def _lede(s: ReportStudy) -> str:
    """One line under the study's name: where the runs come from, the metric and its direction, the trials."""
    counts = ", ".join(f"{n} {str(k).lower()}" for k, n in s.trials["status"].value_counts().items()) or "no runs"
    where = (f"<b>external runs</b> (not launched by ablate): {_e(s.external.get('source'))}" if s.external
             else f"task {_e(s.task)} · launch {_e(s.launch)}")
    better = "higher" if s.mode == "max" else "lower"
    return f"{where} · metric <b>{_e(s.metric)}</b> ({better} is better) · {_e(counts)}"


# The conclusion's columns, by CSV name (the CSV's own order and any column another version adds stay in
# "All columns"): each cell's mean ± std, its Δ against the baseline with the interval its verdict was decided
# with, the adjusted p and the verdict.  The long tail (unadjusted p, Hedges g, MDE, seeds needed, cost, ...)
# is one click away, so the verdicts fit a 1280 px window beside any number of axes.
_CONCLUSION = ("n", "failed", "running", "mean", "std", "delta", "ci_low", "ci_high", "p_adj", "verdict", "best",
               "baseline")
_VERDICT_CLASS = {"better": "v-better", "worse": "v-worse", "equivalent": "v-equivalent", "undecided": "v-undecided",
                  "continue": "v-undecided"}


def _axes_of(head: Sequence[str]) -> List[str]:
    """The CSV's leading label columns: the scientific axes (or ``cell``), everything before ``n``."""
    return list(head[:head.index("n")]) if "n" in head else [h for h in head[:1]]


def _verdict_html(table_csv: str, metric: str, mode: str) -> str:
    """The conclusion table: per cell, n (and failures), mean ± std, Δ [interval], adjusted p, verdict.
    Each number cell keeps the exact CSV value(s) in data-value / its tooltip, as the full table does."""
    from .table_text import decimals, num, pval

    rows = list(csv.reader(io.StringIO(table_csv)))
    if not rows:
        raise ValueError("table_csv must hold at least a header line, got an empty string")
    head, arrow = rows[0], "↑" if mode == "max" else "↓"
    axes, adaptive = _axes_of(head), "p_bound" in head
    labels = [*axes, "n", f"{metric} {arrow} mean ± std", f"Δ vs baseline [{'RCI' if adaptive else 'CI'}]",
              "p / p* (boundary)" if adaptive else "p (adjusted)", "verdict"]
    cols = [*axes, "n", "mean", "delta", "p_value" if adaptive else "p_adj", "verdict"]
    trs = []
    for raw in rows[1:]:
        r = dict(zip(head, raw))
        f = lambda k: _float(r.get(k, ""))                                       # noqa: E731
        d, base = decimals(f("std"), f("mean")), r.get("baseline") == "True"
        n = r.get("n", "")
        extra = [f"{r[k]} {k}" for k in ("failed", "running") if _float(r.get(k, "")) > 0]
        ms = ("–" if not math.isfinite(f("mean")) else f"{num(f('mean'), d)} (one seed)" if n == "1"
              else f"{num(f('mean'), d)} ± {f('std'):.{d}f}")
        delta = "baseline" if base else "–" if not math.isfinite(f("delta")) else num(f("delta"), d, sign=True) + (
            f" [{num(f('ci_low'), d)}, {num(f('ci_high'), d)}]" if math.isfinite(f("ci_low")) and math.isfinite(
                f("ci_high")) else "")
        p = "" if base else (f"{pval(f('p_value'))} / {pval(f('p_bound'))}" if adaptive else pval(f("p_adj")))
        v = "" if base else r.get("verdict", "")
        needed = r.get("seeds_needed", "")
        shown_v = _e(v) + (f' <span class="note">(~{_e(needed)} seeds)</span>' if v == "undecided" and needed else "")
        tip = lambda *ks: " · ".join(f"{k} = {r[k]}" for k in ks if r.get(k, "") != "")      # noqa: E731
        tds = [f'<td data-col="{_e(a)}" data-value="{_e(r.get(a, ""))}" class="axis">'
               f'{_breakable(r.get(a, "")) or "–"}</td>' for a in axes]
        tds += [f'<td data-col="n" data-value="{_e(n)}" class=num title="{_e(tip("n", "failed", "running"))}">{_e(n)}'
                + (f' <span class="warn-text">({_e(", ".join(extra))})</span>' if extra else "") + "</td>",
                f'<td data-col="mean" data-value="{_e(r.get("mean", ""))}" class=num title="{_e(tip("mean", "std"))}">'
                f'{_e(ms)}</td>',
                f'<td data-col="delta" data-value="{_e(r.get("delta", ""))}" class=num '
                f'title="{_e(tip("delta", "ci_low", "ci_high", "ci_level"))}">{_e(delta)}</td>',
                f'<td data-col="{cols[-2]}" data-value="{_e(r.get(cols[-2], ""))}" class=num '
                f'title="{_e(tip("p_value", "p_adj", "p_bound"))}">{_e(p)}</td>',
                f'<td data-col="verdict" data-value="{_e(v)}" class="verdict {_VERDICT_CLASS.get(v, "")}" '
                f'title="{_e(tip("verdict", "seeds_needed"))}">{shown_v}</td>']
        cls = " ".join(k for k in ("best", "baseline") if r.get(k) == "True")
        trs.append(f'<tr class="{cls}">{"".join(tds)}</tr>' if cls else f"<tr>{''.join(tds)}</tr>")
    ths = "".join(f'<th data-col="{_e(c)}">{_breakable(lb)}</th>' for c, lb in zip(cols, labels))
    return (f'<div class="scroll"><table class="data verdicts"><thead><tr>{ths}</tr></thead><tbody>{"".join(trs)}'
            f'</tbody></table></div><p class="foot">highlighted: the best cell ({_e(metric)} {arrow}); exact values in '
            f'each cell\'s tooltip and under "All columns".</p>')


def _float(v: str) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _table_html(table_csv: str, metric: str, mode: str) -> str:
    """The CSV as an HTML table, folded under "All columns": each cell keeps its exact CSV text in
    data-value (and its tooltip) and shows it rounded; the best row is marked."""
    rows = list(csv.reader(io.StringIO(table_csv)))
    if not rows:
        raise ValueError("table_csv must hold at least a header line, got an empty string")
    head, arrow, trs = rows[0], "↑" if mode == "max" else "↓", []
    tail = [_LABELS.get(h, h).format(m=metric, a=arrow) for h in head if h not in (*_axes_of(head), *_CONCLUSION)]
    ths = "".join(f'<th data-col="{_e(h)}" title="CSV column {_e(h)}; click to sort">'
                  f'{_e(_LABELS.get(h, h).format(m=metric, a=arrow))}</th>' for h in head)
    for r in rows[1:]:
        cls = " ".join(k for k in ("best", "baseline") if dict(zip(head, r)).get(k) == "True")
        tds = "".join(f'<td data-col="{_e(h)}" data-value="{_e(v)}" title="{_e(v)}"{" class=num" if _is_num(v) else ""}>'
                      f'{_e(_fmt(h, v))}</td>' for h, v in zip(head, r))
        trs.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    return (f'<details class="alltab"><summary>All columns: {_e(", ".join(tail) or "every CSV column")} '
            f'(the CSV of <code>ablate table --format csv</code>, sortable)</summary>'
            f'<div class="scroll"><table class="data sortable ablation"><thead><tr>{ths}</tr></thead><tbody>'
            f'{"".join(trs)}</tbody></table></div><p class="foot">★ best cell ({_e(metric)} {arrow}); numbers '
            f'rounded to 4 significant digits, the exact value in each cell\'s tooltip; click a column to sort.</p>'
            f'</details>')


def _grid(cls: str, head: Sequence[str], rows: Sequence[str]) -> str:
    ths = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f'<div class="scroll"><table class="data {cls}"><thead><tr>{ths}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _reason(reason) -> str:
    """A failure reason's last line (a traceback's says what), the full text folded under it."""
    if not isinstance(reason, str) or not reason.strip():
        return "(no reason recorded)"
    reason = C.plain_text(reason)            # any reader's frame: no terminal colour codes on the page
    last = [x for x in reason.splitlines() if x.strip()][-1]
    return _e(last) if last == reason.strip() else f"<details><summary>{_e(last)}</summary><pre>{_e(reason)}</pre></details>"


def _is_num(v: str) -> bool:
    try:
        return math.isfinite(float(v))
    except ValueError:
        return False


def _fmt(col: str, v: str) -> str:
    """One CSV value made readable: booleans as marks, integers grouped, numbers
    longer than 7 characters to 4 significant digits; short text unchanged."""
    if v in ("True", "False"):
        return ("★" if col == "best" else "✓") if v == "True" else ""
    if v == "" or not _is_num(v):
        return v or "–"
    if re.fullmatch(r"[+-]?\d+", v):
        return f"{int(v):,}"
    x = float(v)
    if len(v) <= 7 or x == 0:
        return v
    return f"{x:.3e}" if abs(x) < 1e-3 or abs(x) >= 1e6 else f"{x:.4g}"


def _dur(s: float) -> str:
    if s is None or not math.isfinite(s):
        return NOT_RECORDED
    h, rem = divmod(s, 3600)
    return f"{int(h)} h {int(rem // 60)} min" if h else f"{int(rem // 60)} min {rem % 60:.0f} s" if rem >= 60 else f"{s:.1f} s"


_e = lambda v: html.escape("" if v is None else str(v), quote=True)                        # noqa: E731
_cell = lambda c: _e(c).replace(",", ",<wbr>")      # noqa: E731 - a long cell id may wrap after its commas
_slug = lambda name: "study-" + re.sub(r"[^A-Za-z0-9_.-]", "-", name)                      # noqa: E731
# a long axis name or value (model.block_size, cosine_with_warmup) may wrap after its dots, underscores, commas
_breakable = lambda v: re.sub(r"([._,=/])(?=[A-Za-z])", r"\1<wbr>", _e(v))                      # noqa: E731

_CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;max-width:1500px;
margin:1.5em auto;padding:0 1.2em;color:#1d232a;line-height:1.45}h1{font-size:1.6em}h3{margin:1.6em 0 .5em}
h2{border-bottom:2px solid #d6dde4;padding-bottom:.2em;margin-top:2em}nav{margin:.5em 0 1em}section{margin-bottom:3em}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1.2em}dt{color:#5a6772;font-weight:600}dd{margin:0}
.scroll{overflow-x:auto;max-width:100%;background:linear-gradient(to left,#fff 30%,#fff0) right/3em 100% no-repeat local,
radial-gradient(farthest-side at 100% 50%,#0003,#0000) right/1em 100% no-repeat scroll}
table.data{border-collapse:collapse;font-size:.92em;font-variant-numeric:tabular-nums}td.num{text-align:right}
table.data th,table.data td{border-bottom:1px solid #e3e8ed;padding:.3em .7em;text-align:left;white-space:nowrap}
table.data th{background:#f2f5f8;position:sticky;top:0}table.sortable th{cursor:pointer}
tr.best td{font-weight:700;background:#fff4cc}tr.baseline td{background:#eef5fb}tr.best.baseline td{background:#f7f1d8}
.foot{color:#5a6772;font-size:.9em;margin:.3em 0}.warn{color:#8a4b00;background:#fff3e0;padding:.4em .7em}
figure{margin:.5em 0}img{max-width:100%;height:auto;border:1px solid #e3e8ed}details summary{cursor:pointer}
pre,code{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}code{font-size:.88em}
pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}table.failures code{white-space:nowrap}
table.failures td{white-space:normal;vertical-align:top}table.failures td.why{min-width:24em}
.lede{color:#3b4650;margin:.2em 0 .6em}table.verdicts th{white-space:normal;vertical-align:bottom}
table.verdicts td.axis{white-space:normal;max-width:16em}.warn-text{color:#8a4b00;white-space:normal}
table.verdicts .note{display:block;font-weight:400;font-size:.85em;color:#5a6772}
td.verdict{font-weight:600}.v-better{color:#1a7f37}.v-worse{color:#b42318}.v-equivalent{color:#1f5fa8}
.v-undecided{color:#5a6772}details.alltab{margin:.6em 0 1em}details.alltab>summary{color:#3b4650}"""

# Click a header to sort by it (again to reverse); numbers by value (data-value when
# there is one), empty cells last either way.
_JS = """document.querySelectorAll('table.sortable').forEach(function(t){t.querySelectorAll('th').forEach(function(th,i){
th.addEventListener('click',function(){var b=t.tBodies[0],rows=Array.from(b.rows),d=th.dataset.dir==='a'?-1:1;
th.dataset.dir=d===1?'a':'d';var key=function(r){var c=r.cells[i];return c.dataset.value!==undefined?c.dataset.value:
c.textContent.trim()};var num=rows.every(function(r){return key(r)===''||!isNaN(Number(key(r).replace(/,/g,'')))});
rows.sort(function(x,y){var a=key(x),c=key(y);if(a===''||c==='')return(a==='')-(c==='');if(num)return d*(Number(
a.replace(/,/g,''))-Number(c.replace(/,/g,'')));return d*a.localeCompare(c)});rows.forEach(function(r){b.appendChild(r)})})})});"""
