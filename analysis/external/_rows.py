"""Rows of external runs → the runs frame: values cast like MLflow params, the metric checked numeric, the
status read, seeds made integers, one run per (cell, seed) by the duplicate policy, cells in run order, the
baseline cell found, and load_runs' columns and attrs filled in."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from ..contract import CORRECTIONS, DEFAULT_ANALYSIS, TESTS
from ..store import _num
from ._mapping import (PREFIXES, _ORDER, _RID, MappingError, RunMapping, Source, _ids, _listing, _visible,
                       metric_name)

_FINISHED = {"FINISHED", "COMPLETED", "SUCCEEDED", "SUCCESS", "DONE"}
_FAILED = {"FAILED", "CRASHED", "ERROR"}
_UNFINISHED = {"RUNNING", "KILLED", "SCHEDULED", "PENDING", "QUEUED", "PREEMPTED", "STOPPED", "CANCELLED",
               "CANCELED"}


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
    """MLflow's run status, or a CSV's ``status`` / ``state`` column (W&B: finished, crashed, failed, running,
    killed): FINISHED, FAILED or an unfinished status; FINISHED where there is no such column or a row leaves it
    empty.  A value of none of these kinds is a MappingError (a column of another meaning must not drop runs)."""
    found = [c for c in df.columns if c.lower() in ("status", "state") and c not in cols.values()]
    if not found:
        return ["FINISHED"] * len(df)
    out = []
    for v in df[found[0]]:
        v = "FINISHED" if _missing(v) else str(v).strip().upper()
        out.append("FINISHED" if v in _FINISHED else "FAILED" if v in _FAILED else v)
    unknown = sorted({v for v in out if v not in _FINISHED | _FAILED | _UNFINISHED})
    if unknown:
        raise MappingError(f"status column {found[0]!r} holds {_listing(unknown, 5)}, which is not a run status; "
                           f"allowed: finished, failed, crashed, running, killed (any case); rename the column if it "
                           f"means something else")
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


def frame_of(df: pd.DataFrame, mapping: RunMapping, cols: Dict[str, str], source: Source,
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
        notes.append(f"{int(empty.sum())} run(s) with no cell, seed or {name} value left out "
                     f"({_ids(df.loc[empty, _RID])})")
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


def dedupe(frame: pd.DataFrame, mapping: RunMapping, notes: List[str]) -> pd.DataFrame:
    """One run per (cell, seed), by ``mapping.duplicates``."""
    key = frame["cell"] + "\x00" + frame["seed"].astype(str)
    dup = key.duplicated(keep=False)
    if not dup.any():
        return frame
    pairs = key[dup].nunique()
    if mapping.duplicates == "refuse":
        first = frame[dup].sort_values("_order", kind="stable").groupby(key[dup], sort=False)
        _, g = next(iter(first))
        more = f", and {pairs - 1} more (cell, seed) pairs repeat" if pairs > 1 else ""
        raise MappingError(f"{len(g)} runs share cell [{g['cell'].iloc[0]}] and seed {g['seed'].iloc[0]} "
                           f"({_ids(g['run_id'])}){more}; resolve with --duplicates keep-last (the later run) or "
                           f"best (the better {metric_name(mapping)}), or leave runs out with --where")
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
        bare = k.split(".", 1)[1] if k.startswith(PREFIXES) else k
        # a cell column named as given, as found (params.lr), or bare (lr for a cell column given as params.lr)
        names = [k, bare, *(p + bare for p in PREFIXES)]
        axis = next((n if n in mapping.cells else found_as[n] for n in names if n in mapping.cells or n in found_as),
                    None)
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


def finish(frame: pd.DataFrame, mapping: RunMapping, cols: Dict[str, str], source: Source, notes: List[str],
           analysis: Optional[Mapping[str, Any]]) -> pd.DataFrame:
    """Cells in run order, the baseline found, and the columns and attrs of analysis.store.load_runs' frame (what
    only a launch records, parameter counts and seconds per epoch, left empty)."""
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
