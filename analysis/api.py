"""The notebook API for runs ablate did not launch (issue 28): one call from a DataFrame, a CSV or an MLflow
experiment to the ablation table, its plot and its HTML report.

    import analysis
    res = analysis.compare(df, cells=["arch"], seed="seed", metric="acc", mode="max", baseline={"arch": "resnet"})
    res                      # the Markdown table in Jupyter
    res.to_latex(); res.to_csv("table.csv"); res.to_html("report.html"); res.plot("plot.png")
    res.table                # the table as a DataFrame (analysis.tables.ablation_table's columns)

The numbers are analysis.tables.ablation_table's on the runs frame analysis.external.to_runs makes, so they equal
``ablate table --csv / --experiment`` with the same mapping, and ablate's own tables of the same values.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, List, Mapping, Optional, Sequence, Union

import pandas as pd

from .external import MappingError, RunMapping, Source, read_csv, read_mlflow, table as external_table, to_runs

__all__ = ["compare", "Comparison", "MappingError", "load"]
FORMATS = ("md", "latex", "csv", "html")


def load(data: Union[pd.DataFrame, str, Path, None] = None, *, cells: Union[Sequence[str], str], metric: str,
         seed: str = "seed", mode: str = "max", baseline: Optional[Mapping[str, Any]] = None,
         where: Optional[str] = None, duplicates: str = "refuse", experiment: Optional[str] = None,
         tracking_uri: Optional[str] = None, analysis: Optional[Mapping[str, Any]] = None) -> pd.DataFrame:
    """The runs frame (analysis.store.load_runs' columns and attrs) of external runs; arguments as compare's."""
    mapping = RunMapping(cells=cells, metric=metric, seed=seed, mode=mode, baseline=baseline, where=where,
                         duplicates=duplicates)
    if (data is None) == (experiment is None):
        raise MappingError("give the runs as data (a DataFrame or a CSV path) or as experiment (an MLflow "
                           "experiment name or id), exactly one of them")
    if experiment is not None:
        import mlflow

        uri = tracking_uri or mlflow.get_tracking_uri()
        df, source = read_mlflow(str(experiment), uri, where)
    elif isinstance(data, (str, Path)):
        df, source = read_csv(data)
    elif isinstance(data, pd.DataFrame):
        df, source = data, Source("dataframe", "dataframe")
    else:
        raise MappingError(f"data must be a pandas DataFrame or the path of a CSV file, got {type(data).__name__}")
    return to_runs(df, mapping, source, analysis=analysis)


def compare(data: Union[pd.DataFrame, str, Path, None] = None, *, cells: Union[Sequence[str], str], metric: str,
            seed: str = "seed", mode: str = "max", baseline: Optional[Mapping[str, Any]] = None,
            where: Optional[str] = None, duplicates: str = "refuse", experiment: Optional[str] = None,
            tracking_uri: Optional[str] = None, analysis: Optional[Mapping[str, Any]] = None) -> "Comparison":
    """The ablation table of runs ablate did not launch.

    Args:
        data: a DataFrame with one row per run, or the path of a CSV file of them (read with pandas.read_csv).
        cells: the columns whose values make a run's scientific cell (a list, or "a,b").
        metric: the column to tabulate; mode: "max" (default) or "min" (lower is better).
        seed: the column holding each run's seed (default "seed").
        baseline: {cell column: value} of the cell the others are compared with (default None: no Δ, no verdicts).
        where: a pandas query (data) or an MLflow filter string (experiment) selecting runs (default None: all).
        duplicates: two runs of one (cell, seed): "refuse" (default), "keep-last" or "best".
        experiment, tracking_uri: instead of data, an MLflow experiment (name or id) in a store (default
            ``mlflow.get_tracking_uri()``).
        analysis: overrides of the statistics (alpha 0.05, correction holm|bonferroni|bh|none, test
            welch|paired, min_effect None).

    Returns a Comparison.  Raises MappingError (one line: the column and what is present) when the mapping
    does not fit the runs, LookupError when the experiment does not exist.
    """
    runs = load(data, cells=cells, metric=metric, seed=seed, mode=mode, baseline=baseline, where=where,
                duplicates=duplicates, experiment=experiment, tracking_uri=tracking_uri, analysis=analysis)
    return Comparison(runs, external_table(runs))


@dataclass
class Comparison:
    """The result of compare: ``runs`` (one row per run) and ``table`` (analysis.tables.ablation_table's frame,
    with its attrs: footnote, notes, values, ...), rendered as Markdown, LaTeX, CSV or an HTML report."""

    runs: pd.DataFrame
    table: pd.DataFrame

    @property
    def source(self) -> str:
        return self.runs.attrs["external"]["source"]

    @property
    def mapping(self) -> str:
        return self.runs.attrs["external"]["mapping"]

    def render(self, fmt: str = "md") -> str:
        """The table as "md", "latex" or "csv" text (analysis.tables.render), or "html": the report page."""
        from .tables import render

        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        return self.to_html() if fmt == "html" else render(self.table, fmt)

    def to_markdown(self) -> str:
        return self.render("md")

    def to_latex(self) -> str:
        return self.render("latex")

    def to_csv(self, path: Union[str, Path, None] = None) -> str:
        """The CSV text (every column); also written to ``path`` when given."""
        return _written(self.render("csv"), path)

    def to_html(self, path: Union[str, Path, None] = None, *, ui_url: Optional[str] = None) -> str:
        """The self-contained HTML report page (table, plot, runs; marked as external runs with the source and
        the mapping); also written to ``path`` when given.  ``ui_url``: the MLflow UI for run links."""
        from .report import DEFAULT_UI, render_html

        page = render_html([self.report_study()], title=_title(self.runs), ui_url=ui_url or DEFAULT_UI)
        return _written(page, path)

    def plot(self, out: Union[str, Path], kind: str = "auto") -> Path:
        """The ablation plot (analysis.plots.plot_ablation; kind "interaction": analysis.plots.plot_interaction)."""
        from .plots import plot_ablation, plot_interaction

        if kind not in ("auto", "interaction"):
            raise ValueError(f"kind must be auto or interaction, got {kind!r}")
        draw = plot_interaction if kind == "interaction" else plot_ablation
        return draw(self.runs, self.table, out, title=_name(self.runs))

    def report_study(self):
        """The analysis.report.ReportStudy of these runs (what ``ablate report`` writes)."""
        return report_study(self.runs, self.table)

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _name(runs: pd.DataFrame) -> str:
    return str(runs["launch"].iloc[0]) if len(runs) else "runs"


def _title(runs: pd.DataFrame) -> str:
    return f"ablate report: {_name(runs)} (external runs)"


def _written(text: str, path) -> str:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text, encoding="utf-8")
    return text


def _png(draw, what: str, notes: List[str]) -> Optional[bytes]:
    with tempfile.TemporaryDirectory() as d:
        try:
            return Path(draw(Path(d) / "f.png")).read_bytes()
        except Exception as e:  # noqa: BLE001 - any plotting error; the numbers are still reported
            notes.append(f"could not draw the {what} ({type(e).__name__}: {e})")
            return None


def _curves(runs: pd.DataFrame, metric: str, mode: str, notes: List[str]) -> Optional[bytes]:
    """Learning curves from the MLflow metric's per-step history, where there is one (not in a CSV)."""
    ext = runs.attrs["external"]
    column = ext["columns"]["metric"]
    uri = ext.get("tracking_uri")
    if not uri or not column.startswith("metrics."):
        notes.append("the runs hold one value each (no per-step history): no learning curves")
        return None
    from .curves import load_histories, plot_curves

    hist = load_histories(uri, runs["run_id"], [column[len("metrics."):]]).assign(metric=metric)
    if hist.groupby("run_id")["step"].nunique().max() < 2 if len(hist) else True:
        notes.append(f"{metric} was logged once per run (no per-step history): no learning curves")
        return None
    return _png(lambda p: plot_curves(runs, hist, [metric], p, modes={metric: mode}), "learning curves", notes)


def report_study(runs: pd.DataFrame, table: pd.DataFrame):
    """The ReportStudy of external runs: the table, plot and curves as for a launch, the page marked as coming
    from runs ablate did not launch, with the source and the mapping (ReportStudy.external)."""
    from .plots import plot_ablation
    from .report import NOT_RECORDED, ReportStudy
    from .tables import render

    metric, mode, name, ext = table.attrs["metric"], table.attrs["mode"], _name(runs), runs.attrs["external"]
    notes: List[str] = []
    plot_png = _png(lambda p: plot_ablation(runs, table, p, title=name), "ablation plot", notes)
    curves_png = _curves(runs, metric, mode, notes)
    md = render(table, "md").splitlines()
    last = max(i for i, line in enumerate(md) if line.startswith("|"))
    trials = pd.DataFrame({"run_id": runs["run_id"], "cell": runs["cell"], "seed": runs["seed"],
                           "status": runs["status"], "value": runs[f"metrics.{metric}"],
                           "wall_s": (pd.to_datetime(runs["end_time"], utc=True)
                                      - pd.to_datetime(runs["start_time"], utc=True)).dt.total_seconds(),
                           "reason": runs["failure_reason"], "retries": 0}).reset_index(drop=True)
    start, end = pd.to_datetime(runs["start_time"], utc=True).min(), pd.to_datetime(runs["end_time"], utc=True).max()
    fin = trials.loc[trials["status"] == "FINISHED", "wall_s"].dropna()
    return ReportStudy(
        name=name, experiment_id=str(runs["experiment_id"].iloc[0] or ""), launch="none (runs not launched by ablate)",
        task=NOT_RECORDED, paper=NOT_RECORDED, metric=metric, mode=mode, table_csv=render(table, "csv"),
        trials=trials, footnotes=tuple(line.strip().strip("_") for line in md[last + 1:] if line.strip()),
        started=None if pd.isna(start) else start, ended=None if pd.isna(end) else end,
        wall_s=float("nan") if pd.isna(start) or pd.isna(end) else (end - start).total_seconds(),
        trial_wall_median_s=float(fin.median()) if len(fin) else float("nan"), plot_png=plot_png,
        curves_png=curves_png, tracking_uri=ext.get("tracking_uri", ""), notes=tuple(notes),
        external={"source": ext["source"], "mapping": ext["mapping"]})
