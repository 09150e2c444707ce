"""The sources of external runs (a CSV file, an MLflow experiment in any store, a DataFrame) and the mapping's
columns found in them; ``to_runs`` turns them into the runs frame (rows: analysis.external._rows)."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ._mapping import (PREFIXES, RESERVED, _ORDER, _RID, MappingError, RunMapping, Source, _first_line, _listing,
                       _visible)
from ._rows import dedupe, finish, frame_of


def read_csv(path) -> Tuple[pd.DataFrame, Source]:
    """``pandas.read_csv(path)`` with its defaults (so a DataFrame read the same way gives the same table)."""
    p = Path(path)
    if not p.is_file():
        raise MappingError(f"no such CSV file: {path}")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as e:
        raise MappingError(f"cannot read CSV file {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    return df, Source("csv", p.stem, str(path))


def read_mlflow(experiment: str, tracking_uri: str, where: Optional[str] = None) -> Tuple[pd.DataFrame, Source]:
    """The runs of an MLflow experiment (by name, or by id) in the store ``tracking_uri``, filtered by MLflow's
    ``where`` (``mlflow.search_runs``' filter_string).  LookupError: no such experiment; MappingError: a filter
    MLflow refuses."""
    import logging

    for name in ("alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri)
    exp = c.get_experiment_by_name(experiment)
    if exp is None and str(experiment).isdigit():
        try:
            exp = c.get_experiment(str(experiment))
        except MlflowException:
            exp = None
    if exp is None:
        names = [e.name for e in c.search_experiments()]
        raise LookupError(f"no MLflow experiment named {experiment!r} in {tracking_uri}; experiments there: "
                          f"{_listing(names) or '(none)'}")
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)     # search_runs reads the global store; a notebook's is put back below
    try:
        df = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string=where or "",
                                output_format="pandas", max_results=100000)
    except MlflowException as e:
        raise MappingError(f"--where {where!r} is not an MLflow filter string ({_first_line(e.message)}); "
                           f"e.g. \"params.lr = '0.1' and attributes.status = 'FINISHED'\"") from None
    finally:
        mlflow.set_tracking_uri(before)
    return df, Source("mlflow", exp.name, f"{exp.name} (id {exp.experiment_id})", str(exp.experiment_id),
                      tracking_uri)


def to_runs(df: pd.DataFrame, mapping: RunMapping, source: Optional[Source] = None,
            analysis: Optional[Mapping[str, Any]] = None) -> pd.DataFrame:
    """The runs frame (analysis.store.load_runs' columns and attrs) of ``df`` under ``mapping``.

    ``source`` says where ``df`` came from (default: a DataFrame); an MLflow source is already filtered by
    MLflow, any other is filtered here with ``DataFrame.query(mapping.where)``.  ``analysis``: overrides of
    the analysis settings (alpha, correction, test, min_effect).  attrs also carry ``external`` (source and
    mapping, one line each) and ``external_notes`` (what was left out, for the lines under the table)."""
    if not isinstance(df, pd.DataFrame):
        raise MappingError(f"runs must be a pandas DataFrame, got {type(df).__name__}")
    source = source or Source("dataframe", "dataframe")
    df = _with_run_ids(df, source)
    n_all = len(df)
    if n_all == 0:
        filtered = source.kind == "mlflow" and mapping.where
        raise MappingError(f"the {source.describe()} holds no runs"
                           + (f" matching --where {mapping.where!r}" if filtered else ""))
    if mapping.where and source.kind != "mlflow":
        df = _query(df, mapping.where)
        if df.empty:
            raise MappingError(f"--where {mapping.where!r} selects none of the {n_all} runs of the {source.describe()}")
    cols = _columns(df, mapping, source)
    notes: List[str] = []
    frame = frame_of(df, mapping, cols, source, notes)
    frame = dedupe(frame, mapping, notes)
    return finish(frame, mapping, cols, source, notes, analysis)


def _with_run_ids(df: pd.DataFrame, source: Source) -> pd.DataFrame:
    """A copy with string column names, a run id per row (MLflow's run id; a CSV's ``run_id`` column or
    its line number; a DataFrame's index label) and an order (later runs larger: MLflow's start time, else
    the row's position), both taken before any filter."""
    labels = list(df.index)
    df = df.copy()
    df.columns = [str(c) for c in df.columns]
    df = df.reset_index(drop=True)
    if "run_id" in df and df["run_id"].notna().all():
        rid = [str(v) for v in df["run_id"]]
    elif source.kind == "csv":
        rid = [f"line {i + 2}" for i in range(len(df))]          # line 1 is the header
    else:
        rid = [f"row {v}" for v in labels]
    df[_RID] = rid
    if source.kind == "mlflow" and "start_time" in df:
        df[_ORDER] = pd.to_datetime(df["start_time"], utc=True).rank(method="first").fillna(0).to_numpy(float)
    else:
        df[_ORDER] = np.arange(len(df), dtype=float)
    return df


def _query(df: pd.DataFrame, where: str) -> pd.DataFrame:
    try:
        out = df.query(where)
    except Exception as e:  # noqa: BLE001 - pandas raises many kinds (SyntaxError, UndefinedVariableError, ...)
        raise MappingError(f"--where {where!r} is not a pandas query over these columns ({type(e).__name__}: "
                           f"{_first_line(str(e))}); columns present: {_listing(_visible(df))}; put a name "
                           f"with dots in backticks: `model.arch` == 'resnet'") from None
    if not isinstance(out, pd.DataFrame):
        raise MappingError(f"--where {where!r} is not a row filter (a pandas query such as \"lr > 0.01\")")
    return out


def _present(df: pd.DataFrame, source: Source) -> str:
    """What a user can name: for MLflow its params and metrics (and non-MLflow tags), else the columns."""
    cols = _visible(df)
    if source.kind != "mlflow":
        return f"columns present: {_listing(cols) or '(none)'}"
    part = lambda p: sorted(c[len(p):] for c in cols if c.startswith(p))
    return (f"params present: {_listing(part('params.')) or '(none)'}; metrics present: "
            f"{_listing(part('metrics.')) or '(none)'}")


def _resolve(df: pd.DataFrame, name: str, what: str, source: Source, order: Sequence[str]) -> str:
    """The column ``name`` denotes: itself, else with the first prefix of ``order`` that exists."""
    if name in df.columns and name not in (_RID, _ORDER):
        return name
    for p in order:
        if p + name in df.columns:
            return p + name
    bare = [c.split(".", 1)[1] if c.startswith(PREFIXES) else c for c in _visible(df)]
    close = difflib.get_close_matches(name, bare, 1, 0.75)
    raise MappingError(f"{what} {name!r} is not in the {source.describe()}; {_present(df, source)}"
                       + (f" (did you mean {close[0]!r}?)" if close else ""))


def _columns(df: pd.DataFrame, mapping: RunMapping, source: Source) -> Dict[str, str]:
    """{mapped name: column} for the cells, the seed ("__seed") and the metric ("__metric")."""
    where = ("params.", "config.", "tags.", "metrics.")        # a seed logged with log_metric is still found
    cols = {c: _resolve(df, c, "cell column", source, where) for c in mapping.cells}
    seed = _resolve(df, mapping.seed, "seed column", source, where)
    metric = _resolve(df, mapping.metric, "metric", source, ("metrics.", "summary.", "params."))
    for name, col in cols.items():
        if name in RESERVED or name.startswith("metrics."):
            raise MappingError(f"cell column {name!r} has a name the table uses itself ({', '.join(RESERVED)}, "
                               f"metrics.*); rename it (e.g. df.rename(columns={{{name!r}: 'my_{name}'}}))")
        if col == seed:
            raise MappingError(f"column {col!r} is both a cell column and the seed column; the seed must be "
                               f"another column (seeds are replicates of one cell)")
        if col == metric:
            raise MappingError(f"column {col!r} is both a cell column and the metric")
    if seed == metric:
        raise MappingError(f"column {seed!r} is both the seed column and the metric")
    return {**cols, "__seed": seed, "__metric": metric}


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """analysis.tables.ablation_table of an external runs frame, with the notes on what was left out."""
    from ..tables import ablation_table

    out = ablation_table(runs)
    if not runs.attrs.get("baseline_cell"):     # the table's own reason names the sweep file, which has none here
        out.attrs["footnote"] = ("no baseline given (--baseline COL=VALUE, baseline= in analysis.compare): "
                                 "no comparisons")
    out.attrs["notes"] = list(out.attrs.get("notes") or []) + list(runs.attrs.get("external_notes") or [])
    return out
