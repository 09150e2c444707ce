"""Runs ablate did not launch (issue 28): an MLflow experiment logged by any script, a CSV (a W&B or MLflow UI
export, a spreadsheet) or a pandas DataFrame, turned into exactly the runs frame that analysis.store.load_runs
makes of ablate's own launches, so analysis.tables.ablation_table, analysis.plots and analysis.report apply
unchanged: the same mean ± std over seeds, Δ with its interval, corrected p, verdicts, plots and report.

A ``RunMapping`` says what ablate's tags say for its own runs: which columns (params) make the scientific cell,
which is the seed, the metric and its mode, the baseline cell, a filter, and what to do with two runs of one
(cell, seed).  Column names are looked up as given, then with MLflow's and W&B's prefixes (``params.``,
``metrics.``, ``tags.``, ``config.``, ``summary.``), so ``--cells lr`` finds MLflow's ``params.lr``.  Values
read back as strings (MLflow params, object columns of a CSV) are cast like load_runs casts params
(analysis.store._num).  A cell is ``col=value,col=value`` over the cell columns a run has a value for (a
conditional column, say a block size only some models have, is left out of the others' cells, as ablate leaves
conditional keys out).  A ``status``/``state`` column (MLflow's, W&B's) counts only finished runs, failed and
crashed runs appear as failed; without one every row is a finished run.

Every problem with the mapping is a MappingError with one line naming the column and what is present: an
unknown column, no seed column, an empty seed or cell, two runs with one (cell, seed) under
``duplicates="refuse"``, a metric that is not numeric, a baseline that matches no cell or several, a filter that
selects nothing.  pandas' ``DataFrame.query`` filters a CSV or DataFrame, MLflow's own filter string an
experiment (``mlflow.search_runs``): nothing is parsed here.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .contract import CORRECTIONS, DEFAULT_ANALYSIS, TESTS
from .store import _num

DUPLICATES = ("refuse", "keep-last", "best")
MODES = ("max", "min")
PREFIXES = ("params.", "metrics.", "tags.", "config.", "summary.")
# the columns ablate's runs frame uses itself: a cell column of one of these names would be overwritten
RESERVED = ("run_id", "experiment_id", "status", "cell", "seed", "launch", "n_params", "failure_reason", "look",
            "epoch_s", "start_time", "end_time", "baseline", "best")
_FINISHED = {"FINISHED", "COMPLETED", "SUCCEEDED", "SUCCESS", "DONE"}
_FAILED = {"FAILED", "CRASHED", "ERROR"}


class MappingError(ValueError):
    """The mapping does not fit the runs (one line: the column, what is wrong, what is present)."""


@dataclass(frozen=True)
class RunMapping:
    """How external runs map onto ablate's table.

    Args:
        cells: the columns (or MLflow params) whose values make a run's scientific cell.
        metric: the column (MLflow metric) to tabulate.
        seed: the column holding the run's seed (default "seed").
        mode: "max" (higher is better, the default) or "min".
        baseline: {cell column: value} of the cell every other cell is compared with (default None: no Δ).
        where: a filter: a pandas query for a CSV / DataFrame, an MLflow filter string for an experiment.
        duplicates: two runs with one (cell, seed): "refuse" (default), "keep-last" (the later run: MLflow's
            start time, a CSV's or DataFrame's row order) or "best" (the better value of the metric).
    """

    cells: Tuple[str, ...]
    metric: str
    seed: str = "seed"
    mode: str = "max"
    baseline: Optional[Mapping[str, Any]] = None
    where: Optional[str] = None
    duplicates: str = "refuse"

    def __post_init__(self):
        cells = (self.cells.split(",") if isinstance(self.cells, str) else list(self.cells or []))
        cells = [str(c).strip() for c in cells]
        if not cells or not all(cells):
            raise MappingError(f"cells must name one or more columns (e.g. ['arch', 'lr']), got {self.cells!r}")
        if len(set(cells)) < len(cells):
            raise MappingError(f"cells name a column twice: {', '.join(cells)}")
        object.__setattr__(self, "cells", tuple(cells))
        for name, v in (("metric", self.metric), ("seed", self.seed)):
            if not isinstance(v, str) or not v.strip():
                raise MappingError(f"{name} must name a column, got {v!r}")
        if self.mode not in MODES:
            raise MappingError(f"mode {self.mode!r} is not allowed; allowed: max (higher is better), min")
        if self.duplicates not in DUPLICATES:
            raise MappingError(f"duplicates {self.duplicates!r} is not allowed; allowed: {', '.join(DUPLICATES)}")
        if self.baseline is not None and (not isinstance(self.baseline, Mapping) or not self.baseline):
            raise MappingError(f"baseline must be a non-empty {{column: value}} mapping, got {self.baseline!r}")
        if self.where is not None and (not isinstance(self.where, str) or not self.where.strip()):
            raise MappingError(f"where must be a non-empty filter expression, got {self.where!r}")

    def describe(self) -> str:
        """One line: the mapping as given (shown in the report)."""
        out = [f"cells: {', '.join(self.cells)}", f"seed: {self.seed}", f"metric: {self.metric} ({self.mode})",
               "baseline: " + (",".join(f"{k}={v}" for k, v in self.baseline.items()) if self.baseline else "none")]
        if self.where:
            out.append(f"filter: {self.where}")
        return "; ".join(out + [f"duplicates: {self.duplicates}"])


@dataclass(frozen=True)
class Source:
    """Where external runs came from: kind "mlflow" | "csv" | "dataframe", a short name (the experiment, the
    file's stem, "dataframe"), and for MLflow the experiment id and the store."""

    kind: str
    name: str
    detail: str = ""
    experiment_id: str = ""
    tracking_uri: str = ""
    columns: Dict[str, str] = field(default_factory=dict)      # mapped name -> the column it was found as

    def describe(self) -> str:
        if self.kind == "mlflow":
            return f"MLflow experiment {self.name!r} (id {self.experiment_id}) in {self.tracking_uri}"
        if self.kind == "csv":
            return f"CSV file {self.detail}"
        return "a pandas DataFrame"


# ----------------------------------------------------------------------------------------------- sources


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


# ----------------------------------------------------------------------------------------------- the mapping


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
        raise MappingError(f"the {source.describe()} holds no runs" + (f" matching --where {mapping.where!r}"
                                                                          if source.kind == "mlflow" and mapping.where else ""))
    if mapping.where and source.kind != "mlflow":
        df = _query(df, mapping.where)
        if df.empty:
            raise MappingError(f"--where {mapping.where!r} selects none of the {n_all} runs of the {source.describe()}")
    cols = _columns(df, mapping, source)
    notes: List[str] = []
    frame = _frame(df, mapping, cols, source, notes)
    frame = _dedupe(frame, mapping, notes)
    return _finish(frame, mapping, cols, source, notes, analysis)


_RID, _ORDER = "_ablate_run_id", "_ablate_order"


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


def _visible(df: pd.DataFrame) -> List[str]:
    return [c for c in df.columns if c not in (_RID, _ORDER)]


def _listing(names: Sequence[str], limit: int = 24) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _present(df: pd.DataFrame, source: Source) -> str:
    """What a user can name: for MLflow its params and metrics (and non-MLflow tags), else the columns."""
    cols = _visible(df)
    if source.kind != "mlflow":
        return f"columns present: {_listing(cols) or '(none)'}"
    part = lambda p: sorted(c[len(p):] for c in cols if c.startswith(p))
    return (f"params present: {_listing(part('params.')) or '(none)'}; metrics present: "
            f"{_listing(part('metrics.')) or '(none)'}")


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")


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
    cols = {c: _resolve(df, c, "cell column", source, ("params.", "config.", "tags.")) for c in mapping.cells}
    seed = _resolve(df, mapping.seed, "seed column", source, ("params.", "config.", "tags."))
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


def metric_name(mapping: RunMapping) -> str:
    """The metric's name in the table (``metrics.acc`` and ``acc`` are both "acc")."""
    m = mapping.metric
    return m.split(".", 1)[1] if m.startswith(("metrics.", "summary.")) else m


# ----------------------------------------------------------------------------------------------- values


def _missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)):
        return math.isnan(v)
    return isinstance(v, str) and not v.strip()


def _value(v):
    """A cell or seed value as a plain Python value: None when missing, strings cast like MLflow params."""
    if _missing(v):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    return _num(v.strip()) if isinstance(v, str) else v


def _values(s: pd.Series) -> List[Any]:
    vals = [_value(v) for v in s]
    # a column of ints with gaps is read as floats (4.0, NaN): its cells are labelled 4, as ablate labels them
    if pd.api.types.is_float_dtype(s.dtype) and s.isna().any() and all(
            v is None or float(v).is_integer() for v in vals):
        vals = [None if v is None else int(v) for v in vals]
    return vals


def _ids(frame_ids: Sequence[str], limit: int = 4) -> str:
    ids = list(frame_ids)
    return ", ".join(ids[:limit]) + (f", … ({len(ids)} in all)" if len(ids) > limit else "")


def _metric(df: pd.DataFrame, col: str, name: str, source: Source) -> np.ndarray:
    s = df[col]
    x = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_bool_dtype(s.dtype) else s.astype(float)
    text = s.astype(object).map(lambda v: str(v).strip().lower())
    bad = s.notna().to_numpy() & x.isna().to_numpy() & ~text.isin(["", "nan", "none", "null"]).to_numpy()
    if bad.any():
        shown = ", ".join(repr(v) for v in dict.fromkeys(s[bad].astype(str)).keys()) if bad.sum() else ""
        numeric = [c for c in _visible(df) if pd.api.types.is_numeric_dtype(df[c]) and c != col]
        raise MappingError(f"metric {name!r} (column {col!r}) is not numeric: {shown[:120]} in {int(bad.sum())} "
                           f"of {len(s)} runs ({_ids(df.loc[bad, _RID])}); numeric columns present: "
                           f"{_listing(numeric) or '(none)'}")
    return x.to_numpy(float)


def _status(df: pd.DataFrame, source: Source, cols: Mapping[str, str]) -> List[str]:
    """MLflow's run status; else a CSV's ``status`` / ``state`` column (W&B: finished, crashed, failed, ...),
    FINISHED when it has none or a row leaves it empty."""
    found = [c for c in df.columns if c.lower() in ("status", "state") and c not in cols.values()]
    if not found:
        return ["FINISHED"] * len(df)
    out = []
    for v in df[found[0]]:
        v = "FINISHED" if _missing(v) else str(v).strip().upper()
        out.append("FINISHED" if v in _FINISHED else "FAILED" if v in _FAILED else v)
    return out


def _seeds(raw: List[Any], col: str, notes: List[str]) -> List[Any]:
    """Integer seeds; other labels ("run-a") are numbered 0, 1, ... in sorted order (with a note)."""
    def as_int(v):
        if isinstance(v, bool):
            return None
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return None

    ints = [as_int(v) for v in raw]
    if all(i is not None for i in ints):
        return ints
    labels = sorted({str(v) for v in raw})
    notes.append(f"seeds in column {col!r} are not integers ({_listing(labels, 4)}): numbered 0–{len(labels) - 1} "
                 f"in sorted order; a paired test pairs runs by these labels")
    return [labels.index(str(v)) for v in raw]


def _frame(df: pd.DataFrame, mapping: RunMapping, cols: Dict[str, str], source: Source,
           notes: List[str]) -> pd.DataFrame:
    """One row per run: run_id, status, the cell columns, cell, seed, metric value, order, and MLflow's
    experiment_id / start_time / end_time where the source has them."""
    name = metric_name(mapping)
    axes = {c: _values(df[cols[c]]) for c in mapping.cells}
    seed = [_value(v) for v in df[cols["__seed"]]]
    value = _metric(df, cols["__metric"], name, source)
    no_cell = np.array([all(axes[a][i] is None for a in axes) for i in range(len(df))], bool)
    no_seed = np.array([v is None for v in seed], bool)
    empty = no_cell & no_seed & np.isnan(value)
    if empty.any():
        notes.append(f"{int(empty.sum())} run(s) with no cell, seed or {name} value left out ({_ids(df.loc[empty, _RID])})")
    keep = ~empty
    if not keep.any():
        raise MappingError(f"none of the {len(df)} runs has a value of the cell columns "
                           f"({', '.join(cols[c] for c in mapping.cells)}), the seed ({cols['__seed']}) or {name}")
    for mask, what in ((no_cell & keep, f"the cell columns {', '.join(cols[c] for c in mapping.cells)} are all"),
                       (no_seed & keep, f"seed column {cols['__seed']!r} is")):
        if mask.any():
            raise MappingError(f"{what} empty in {int(mask.sum())} of {int(keep.sum())} runs "
                               f"({_ids(df.loc[mask, _RID])}); fill them in, or leave those runs out with --where")
    idx = np.flatnonzero(keep)
    out = pd.DataFrame({"run_id": df[_RID].to_numpy()[idx], "_order": df[_ORDER].to_numpy()[idx]})
    out["status"] = np.array(_status(df, source, cols), dtype=object)[idx]
    for a, vals in axes.items():
        out[a] = pd.Series([vals[i] for i in idx], dtype=object)
    out["cell"] = [",".join(f"{a}={out.at[i, a]}" for a in axes if out.at[i, a] is not None) for i in range(len(idx))]
    out["seed"] = pd.Series(_seeds([seed[i] for i in idx], cols["__seed"], notes), dtype=object)
    out[f"metrics.{name}"] = value[idx]
    for c in ("experiment_id", "start_time", "end_time"):
        out[c] = df[c].to_numpy()[idx] if c in df else (pd.NaT if c != "experiment_id" else source.experiment_id)
    return out


def _dedupe(frame: pd.DataFrame, mapping: RunMapping, notes: List[str]) -> pd.DataFrame:
    """One run per (cell, seed), by ``mapping.duplicates``."""
    key = frame["cell"] + "\x00" + frame["seed"].astype(str)
    dup = key.duplicated(keep=False)
    if not dup.any():
        return frame
    pairs = key[dup].nunique()
    if mapping.duplicates == "refuse":
        first = frame[dup].sort_values("_order", kind="stable").groupby(key[dup], sort=False)
        k, g = next(iter(first))
        raise MappingError(f"{len(g)} runs share cell [{g['cell'].iloc[0]}] and seed {g['seed'].iloc[0]} "
                           f"({_ids(g['run_id'])})" + (f", and {pairs - 1} more (cell, seed) pairs repeat" if pairs > 1
                                                       else "")
                           + f"; resolve with --duplicates keep-last (the later run) or best (the better "
                             f"{metric_name(mapping)}), or leave runs out with --where")
    col = f"metrics.{metric_name(mapping)}"
    if mapping.duplicates == "best":
        sign = 1.0 if mapping.mode == "max" else -1.0
        score = np.where(np.isfinite(frame[col].to_numpy(float)), sign * frame[col].to_numpy(float), -np.inf)
        ranked = frame.assign(_score=score).sort_values(["_score", "_order"], kind="stable")
    else:
        ranked = frame.sort_values("_order", kind="stable")
    kept = ranked[~ranked["cell"].add("\x00").add(ranked["seed"].astype(str)).duplicated(keep="last")]
    notes.append(f"--duplicates {mapping.duplicates}: {len(frame) - len(kept)} run(s) repeating a (cell, seed) of "
                 f"{pairs} pair(s) left out")
    return kept.drop(columns=[c for c in ("_score",) if c in kept]).sort_index()


def _sort_key(values: Sequence[Any]) -> tuple:
    """Numbers by value, then text; a missing value last (the seeds' order within a cell)."""
    out = []
    for v in values:
        if v is None:
            out.append((2, 0.0, ""))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out.append((0, float(v), ""))
        else:
            out.append((1, 0.0, str(v)))
    return tuple(out)


def _same(v, want) -> bool:
    b = _num(want.strip()) if isinstance(want, str) else want
    return v is not None and (v == b or str(v) == str(want).strip())


def _baseline(cells: pd.DataFrame, mapping: RunMapping, cols: Mapping[str, str]) -> Optional[str]:
    """The label of the one cell the baseline names (its keys: cell columns, as given or as found)."""
    if not mapping.baseline:
        return None
    found_as = {cols[a]: a for a in mapping.cells}
    spec = {}
    for k, v in mapping.baseline.items():
        axis = k if k in mapping.cells else found_as.get(k)
        if axis is None:
            raise MappingError(f"baseline column {k!r} is not a cell column; cell columns: {', '.join(mapping.cells)}")
        spec[axis] = v
    hit = cells[[all(_same(r[a], v) for a, v in spec.items()) for _, r in cells.iterrows()]]
    text = ",".join(f"{k}={v}" for k, v in mapping.baseline.items())
    if hit.empty:
        have = "; ".join(f"{a} has {', '.join(map(str, dict.fromkeys(x for x in cells[a] if x is not None)))}"
                         for a in spec)
        raise MappingError(f"baseline {text} matches no cell; {have}")
    if len(hit) > 1:
        raise MappingError(f"baseline {text} matches {len(hit)} cells ({', '.join(f'[{c}]' for c in hit['cell'])}); "
                           f"name the other cell columns too, e.g. --baseline {hit['cell'].iloc[0]}")
    return hit["cell"].iloc[0]


def _analysis(overrides: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    settings = {**DEFAULT_ANALYSIS, **dict(overrides or {})}
    unknown = sorted(set(settings) - set(DEFAULT_ANALYSIS))
    if unknown:
        raise MappingError(f"analysis has unknown keys {unknown}; allowed: alpha, correction, test, min_effect")
    if settings["correction"] not in CORRECTIONS:
        raise MappingError(f"analysis correction {settings['correction']!r} is not allowed; allowed: "
                           f"{', '.join(CORRECTIONS)}")
    if settings["test"] not in TESTS:
        raise MappingError(f"analysis test {settings['test']!r} is not allowed; allowed: {', '.join(TESTS)}")
    a = settings["alpha"]
    if not isinstance(a, (int, float)) or isinstance(a, bool) or not 0 < a < 1:
        raise MappingError(f"analysis alpha {a!r} is not allowed; allowed: a number in (0, 1), e.g. 0.05")
    m = settings["min_effect"]
    if m is not None and (not isinstance(m, (int, float)) or isinstance(m, bool) or not m > 0):
        raise MappingError(f"analysis min_effect {m!r} is not allowed; allowed: a number > 0 (metric units) or None")
    return settings


def _finish(frame: pd.DataFrame, mapping: RunMapping, cols: Dict[str, str], source: Source, notes: List[str],
            analysis: Optional[Mapping[str, Any]]) -> pd.DataFrame:
    axes = list(mapping.cells)
    # cells in the order their first runs ran (MLflow's start time, a CSV's rows): a script's loop order
    cells = frame.sort_values("_order", kind="stable").drop_duplicates("cell")[["cell", *axes]].reset_index(drop=True)
    base = _baseline(cells, mapping, cols)
    rank = {c: i for i, c in enumerate(cells["cell"])}
    frame = frame.assign(cell_index=frame["cell"].map(rank), _s=[_sort_key([s]) for s in frame["seed"]])
    frame = frame.sort_values(["cell_index", "_s"], kind="stable").drop(columns=["_s", "_order"])
    frame = frame.reset_index(drop=True)
    name = metric_name(mapping)
    n_missing = int(((frame["status"] == "FINISHED") & ~np.isfinite(frame[f"metrics.{name}"])).sum())
    if n_missing:
        notes.append(f"{n_missing} finished run(s) have no value of {name} and are not counted")
    frame["params.seed"] = frame["seed"]
    frame["launch"] = source.name
    frame["n_params"] = np.nan
    frame["failure_reason"] = None
    frame["look"] = pd.Series([None] * len(frame), dtype=object)
    frame["epoch_s"] = np.nan
    resolved = {**{a: cols[a] for a in axes}, "seed": cols["__seed"], "metric": cols["__metric"]}
    frame.attrs.update(axes=axes, baseline_cell=base, metric=name, mode=mapping.mode, launch=None, launches=[],
                       smoke_launches=[], plot={}, metric_modes={name: mapping.mode}, analysis=_analysis(analysis),
                       looks=None, external={"source": source.describe(), "mapping": mapping.describe(),
                                             "columns": resolved, "kind": source.kind, "name": source.name,
                                             "tracking_uri": source.tracking_uri},
                       external_notes=list(notes))
    return frame


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """analysis.tables.ablation_table of an external runs frame, with the notes on what was left out."""
    from .tables import ablation_table

    out = ablation_table(runs)
    if not runs.attrs.get("baseline_cell"):     # the table's own reason names the sweep file, which has none here
        out.attrs["footnote"] = "no baseline given (--baseline COL=VALUE, baseline= in analysis.compare): no comparisons"
    out.attrs["notes"] = list(out.attrs.get("notes") or []) + list(runs.attrs.get("external_notes") or [])
    return out
