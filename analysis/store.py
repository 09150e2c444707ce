"""Read a sweep's runs from MLflow into a tidy pandas frame.

``mlflow.search_runs`` already returns pandas; this adds the project's
conventions: final-phase runs of one launch, the scientific cell parsed into
columns, params cast back from strings (pandas 3 keeps them as str), the
launch's analysis settings (``ablate.analysis``) and adaptive-seed looks
(``ablate.looks``, ``ablate.look``), and each run's median seconds per epoch
from its ``epoch_seconds`` history.  MLflow's public client reads a history one
run at a time; on a SQL store the store's own ``get_metric_history_bulk`` reads
many runs in one query (500 per query), elsewhere it is one query per run.

A local sqlite store (what ``ablate run`` creates) is read without MLflow, by
analysis/store_sqlite.py: only the runs of the phase and launch asked for, in a
few queries, the same frame as ``mlflow.search_runs``; any other store, or a
sqlite schema that reader was not checked on, goes through MLflow's client.
"""
from __future__ import annotations

import json
import logging
import re
from typing import Dict, Iterable, List, Optional

import numpy as np
import pandas as pd

from . import contract as C
from .contract import DEFAULT_ANALYSIS

_BULK = 500        # run ids per bulk history query (sqlite allows 999 bound variables in old builds)


_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


def _num(v):
    """Cast an MLflow param string back to int/float/bool; anything else (a
    registry name, even 'nan' or 'inf') stays a string."""
    if not isinstance(v, str):
        return v
    if _INT.fullmatch(v):
        return int(v)
    if _FLOAT.fullmatch(v):
        return float(v)
    return {"True": True, "False": False}.get(v, v)


def parse_cell(cell: str) -> dict:
    if not cell or cell == C.CELL_ALL:
        return {}
    out = {}
    for part in cell.split(","):
        k, _, v = part.partition("=")
        out[k] = _num(v)
    return out


def load_runs(experiment: str, tracking_uri: str, phase: Optional[str] = "final",
              launch: Optional[str] = "latest", epoch_times: bool = True) -> pd.DataFrame:
    """Runs of ``experiment`` as a frame with columns run_id, status, cell,
    seed, launch, n_params, failure_reason, look (adaptive seeds, else None),
    epoch_s (median seconds per epoch; NaN without an ``epoch_seconds`` history), train_s (their sum),
    ``metrics.*``, ``params.*`` (typed), and one column per scientific axis.
    ``launch``: an id, "latest" or None (all).  ``epoch_times``: read the
    histories for epoch_s (default True; False skips those queries).
    attrs: axes, baseline_cell, metric, mode, launch, launches, smoke_launches,
    plot, metric_modes, analysis (all five keys), looks (list or None), and for the final phase search_cost
    ({cell: seconds, GPU-seconds and count of the search trials that tuned it}, analysis/costs.py).
    Raises LookupError when the experiment or the runs do not exist."""
    where = [(C.PHASE, phase)] if phase else []
    # a local sqlite store: this launch's runs only, without MLflow
    df = _fast(tracking_uri, lambda r: _sqlite_runs(r, experiment, tracking_uri, phase, launch, where))
    if df is None:
        df = _mlflow_runs(experiment, tracking_uri, phase, where)
        launch = _pick_launch(experiment, sorted(df[C.column(C.LAUNCH)].dropna().unique()), launch)
        if launch:
            df = df[df[C.column(C.LAUNCH)] == launch]
    launch = df.attrs.pop("launch", launch)
    df = _current(df.copy())
    for col in [c for c in df.columns if c.startswith("params.")]:
        # object dtype: a missing param (conditional key) must not turn ints into floats
        df[col] = pd.Series([None if v is None or (isinstance(v, float) and v != v) else _num(v)
                             for v in df[col]], index=df.index, dtype=object)
    for tag in (C.CELL, C.SEED):                 # absent on summary runs
        if C.column(tag) not in df:
            df[C.column(tag)] = None
    df["cell"] = df[C.column(C.CELL)]
    df["seed"] = df[C.column(C.SEED)].map(_num)
    df["launch"] = df[C.column(C.LAUNCH)]
    df["n_params"] = pd.to_numeric(df.get(C.column(C.N_PARAMS)), errors="coerce")
    # plain text: stores written before the tracker stripped Ray's colour codes still hold them
    df["failure_reason"] = [C.plain_text(v) if isinstance(v, str) else v for v in df.get(C.column(C.FAILURE_REASON),
                                                                                         [None] * len(df))]
    axes = []
    for cell in df["cell"].dropna().unique():
        for k in parse_cell(cell):
            if k not in axes:
                axes.append(k)
    for ax in axes:
        # object dtype: a conditional axis is None where it does not apply (not NaN, not 8.0)
        df[ax] = pd.Series([parse_cell(c or "").get(ax) for c in df["cell"]], index=df.index, dtype=object)
    if C.column(C.CELL_INDEX) in df:
        df["cell_index"] = pd.to_numeric(df[C.column(C.CELL_INDEX)], errors="coerce")
        df = df.sort_values(["cell_index", "seed"], kind="stable")
    df.attrs["axes"] = axes
    df.attrs["baseline_cell"] = _first(df, C.column(C.BASELINE_CELL))
    df.attrs["metric"] = _first(df, C.column(C.METRIC))
    df.attrs["mode"] = _first(df, C.column(C.MODE)) or "max"
    df.attrs["launch"] = launch
    df.attrs["launches"] = sorted(df["launch"].dropna().unique())
    smoke = df.get(C.column(C.SMOKE))
    df.attrs["smoke_launches"] = sorted(df.loc[smoke == "true", "launch"].dropna().unique()) if smoke is not None else []
    df.attrs["plot"] = json.loads(_first(df, C.column(C.PLOT)) or "{}")
    df.attrs["metric_modes"] = json.loads(_first(df, C.column(C.METRIC_MODES)) or "{}")
    _design_and_cost(df, tracking_uri, epoch_times)
    if phase == "final" and epoch_times:     # the search trials that tuned each cell: analysis/costs.py's search_s
        df.attrs["search_cost"] = _search_cost(experiment, tracking_uri, launch)
    return df.reset_index(drop=True)


def _search_cost(experiment: str, tracking_uri: str, launch: Optional[str]) -> Dict[str, Dict[str, float]]:
    """{cell: {"s", "gpu_s", "n"}} of the launch's (``None``: every launch's) search-phase runs; {} without any."""
    from .costs import search_cost

    try:
        return search_cost(load_runs(experiment, tracking_uri, phase="search", launch=launch))
    except LookupError:
        return {}


def _current(df: pd.DataFrame) -> pd.DataFrame:
    """Each trial once: runs a later attempt replaced (``ablate run --retry-failed`` / ``--extend`` tag them
    ``ablate.superseded_by``) are dropped, and of two current runs of one launch's trial key (a driver killed
    between creating the new attempt and marking the old one) the newest is kept."""
    sup = C.column(C.SUPERSEDED_BY)
    if sup in df:
        df = df[df[sup].isna() | (df[sup] == "")]
    key, launch = C.column(C.TRIAL_KEY), C.column(C.LAUNCH)
    if all(c in df for c in (C.column(C.ADDED_IN), key, C.column(C.PHASE), "start_time")):
        has = df[key].notna()
        newest = df[has].sort_values("start_time", kind="stable").drop_duplicates([launch, key, C.column(C.PHASE)], keep="last")
        df = pd.concat([newest, df[~has]]).sort_index()
    return df


def _fast(tracking_uri: str, ask):
    """``ask(reader)`` on a local sqlite store (analysis/store_sqlite.py); None where that reader does not
    apply or sqlite fails (the caller then asks MLflow's client).  LookupErrors are the answer and pass."""
    import sqlite3

    from .store_sqlite import open_reader

    reader = open_reader(tracking_uri)
    if reader is None:
        return None
    try:
        with reader:
            return ask(reader)
    except sqlite3.Error:
        return None


def has_experiment(tracking_uri: str, name: str) -> bool:
    """Whether the store has an experiment called ``name`` (deleted ones too, as MLflow's get_experiment_by_name)."""
    got = _fast(tracking_uri, lambda r: r.experiment_id(name) is not None)
    return got if got is not None else _client(tracking_uri).get_experiment_by_name(name) is not None


def experiment_names(tracking_uri: str) -> List[str]:
    """The store's active experiments, newest first (MLflow's search_experiments)."""
    got = _fast(tracking_uri, lambda r: r.experiment_names())
    return got if got is not None else [e.name for e in _client(tracking_uri).search_experiments()]


def _client(tracking_uri: str):
    for name in ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri)


def _no_sweep(experiment: str, tracking_uri: str, names) -> LookupError:
    names = [n for n in names if n != "Default"]
    return LookupError(f"no sweep named {experiment!r} in {tracking_uri}; sweeps there: {', '.join(names) or '(none)'}")


def _pick_launch(experiment: str, launches, launch: Optional[str]) -> Optional[str]:
    """"latest" → the newest of ``launches`` (ids sort by time); an id must be among them (LookupError)."""
    if not launches:
        raise LookupError(f"sweep {experiment!r} has no runs written by ablate (no launch id on its runs)")
    if launch == "latest":
        return launches[-1]
    if launch and launch not in launches:
        raise LookupError(f"sweep {experiment!r} has no runs of launch {launch!r}; launches: "
                          f"{', '.join(launches[-10:])}{' (latest 10)' if len(launches) > 10 else ''}")
    return launch


def _no_runs(experiment: str, tracking_uri: str, phase: Optional[str], ablate_tags: bool) -> LookupError:
    if not ablate_tags:
        return LookupError(f"sweep {experiment!r} has no runs written by ablate in {tracking_uri}")
    return LookupError(f"sweep {experiment!r} has no {phase or ''} runs in {tracking_uri}")


def _mlflow_runs(experiment: str, tracking_uri: str, phase: Optional[str], where) -> pd.DataFrame:
    """Every run of ``phase`` through MLflow's client (any store)."""
    for name in ("alembic", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(logging.WARNING)
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is None:
        raise _no_sweep(experiment, tracking_uri, [e.name for e in mlflow.search_experiments()])
    filt = " and ".join(C.equals(k, v) for k, v in where)
    df = mlflow.search_runs(experiment_ids=[exp.experiment_id], filter_string=filt, output_format="pandas",
                            max_results=100000)
    if df.empty:
        raise _no_runs(experiment, tracking_uri, phase, True)
    if C.column(C.LAUNCH) not in df:
        raise _no_runs(experiment, tracking_uri, phase, False)
    return df


def _sqlite_runs(reader, experiment: str, tracking_uri: str, phase: Optional[str], launch: Optional[str],
                 where) -> pd.DataFrame:
    """The runs of ``phase`` and of one launch (or all), selected in SQL (analysis/store_sqlite.py); the
    launch picked is in attrs["launch"].  Same frame and errors as the MLflow path."""
    eid = reader.experiment_id(experiment)
    if eid is None:
        raise _no_sweep(experiment, tracking_uri, reader.experiment_names())
    launches = sorted(reader.tag_values(eid, C.LAUNCH, where))
    if not launches:
        raise _no_runs(experiment, tracking_uri, phase, reader.count_runs(eid, where) == 0)
    launch = _pick_launch(experiment, launches, launch)
    df = reader.search_runs(eid, [*where, *([(C.LAUNCH, launch)] if launch else [])])
    if launch is None:               # all launches: as MLflow's path, only runs that carry a launch tag
        df = df[df[C.column(C.LAUNCH)].notna()]
    df.attrs["launch"] = launch
    return df


def _design_and_cost(df: pd.DataFrame, tracking_uri: str, epoch_times: bool) -> None:
    """attrs analysis / looks, and the columns look and epoch_s (median of each run's epoch_seconds history)."""
    df.attrs["analysis"] = {**DEFAULT_ANALYSIS, **json.loads(_first(df, C.column(C.ANALYSIS)) or "{}")}
    looks = json.loads(_first(df, C.column(C.LOOKS)) or "null")
    df.attrs["looks"] = [int(n) for n in looks] if looks else None
    if looks:   # a launch from before the Holm step-down has no such tag: its looks were decided by Bonferroni
        df.attrs["analysis"]["correction"] = _first(df, C.column(C.LOOKS_CORRECTION)) or "bonferroni"
    tagged = df[C.column(C.LOOK)] if C.column(C.LOOK) in df else [None] * len(df)
    df["look"] = pd.Series([None if v is None or v != v else int(v) for v in tagged], index=df.index, dtype=object)
    df["epoch_s"] = df["train_s"] = np.nan
    if epoch_times and "metrics.epoch_seconds" in df:
        timed = df.loc[df["metrics.epoch_seconds"].notna(), "run_id"]
        hist = load_metric_histories(tracking_uri, timed, "epoch_seconds")
        hist = {rid: v for rid, v in hist.items() if len(v)}
        df["epoch_s"] = df["run_id"].map({rid: float(np.median(v)) for rid, v in hist.items()}).astype(float)
        # the sum: analysis/costs.py's trial-seconds (MLflow's start-to-end time counts a fresh worker's imports)
        df["train_s"] = df["run_id"].map({rid: float(np.sum(v)) for rid, v in hist.items()}).astype(float)


def load_metric_histories(tracking_uri: str, run_ids: Iterable[str], metric: str) -> Dict[str, np.ndarray]:
    """{run_id: values of ``metric`` by step} (last value per step; runs without it are absent).

    A local sqlite store is read with sqlite3 (analysis/store_sqlite.py); another SQL store answers
    ``get_metric_history_bulk`` for 500 runs per query; other stores (a tracking server, a file store) get
    ``MlflowClient.get_metric_history`` once per run."""
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"metric must be a metric name; got {metric!r}")
    ids = list(dict.fromkeys(run_ids))
    points = _fast(tracking_uri, lambda r: r.metric_points(ids, metric))
    if points is not None:
        return _by_step(points)
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri)
    store = getattr(getattr(c, "_tracking_client", None), "store", None)
    points = []                                   # (run_id, step, value), in logging order
    if hasattr(store, "get_metric_history_bulk"):
        for i in range(0, len(ids), _BULK):
            got = store.get_metric_history_bulk(ids[i:i + _BULK], metric, None)    # None: no row limit
            points += [(m.run_id, m.step, m.value) for m in got]
    else:
        points = [(rid, m.step, m.value) for rid in ids for m in c.get_metric_history(rid, metric)]
    return _by_step(points)


def _by_step(points) -> Dict[str, np.ndarray]:
    by_run: Dict[str, Dict[int, float]] = {}
    for rid, step, value in points:
        by_run.setdefault(rid, {})[int(step)] = float(value)   # a step logged twice (a retried epoch): the last
    return {rid: np.array([v for _, v in sorted(steps.items())]) for rid, steps in by_run.items()}


def _first(df: pd.DataFrame, col: str):
    if col not in df:
        return None
    vals = df[col].dropna()
    return vals.iloc[0] if len(vals) else None


def launch_notes(df: pd.DataFrame) -> list:
    """Warnings about what a table of these runs pools: ``--launch all`` over
    launches run with different settings (a --smoke launch beside a full one,
    another epoch count, ...)."""
    launches = df.attrs.get("launches", [])
    if len(launches) < 2:
        return []
    notes = []
    smoke = df.attrs.get("smoke_launches", [])
    if smoke and len(smoke) < len(launches):
        notes.append(f"pooling {len(launches)} launches, {len(smoke)} of them --smoke runs "
                     f"({', '.join(smoke)}): their numbers are not comparable with the others'")
    params = [c for c in df.columns if c.startswith("params.") and c != "params.seed"]
    differ = []
    for col in params:
        per_cell = df.groupby("cell", sort=False)[col].agg(lambda v: len({repr(x) for x in v if x is not None}))
        if (per_cell > 1).any():
            differ.append(col[len("params."):])
    if differ:
        shown = ", ".join(differ[:6]) + (", …" if len(differ) > 6 else "")
        notes.append(f"pooling {len(launches)} launches whose runs of one cell differ in {shown}: "
                     f"pass --launch ID to see one launch")
    return notes
