"""The cost columns of an ablation table (issue 24): what each cell costs, beside what it scores.

From the tags every trial's cost probe writes (tasks/cost.py; names in analysis/contract.py) and the runs' own
times, per cell:

* ``flops_fwd``, ``flops_step``: FLOPs per sample of a forward / a training step (median over the cell's FINISHED
  runs; the same for every seed, as they depend on shapes only);
* ``mem_mb``: peak memory of one training step (MiB; named so beside a task's own ``peak_mem_mb`` metric);
* ``lat_b1_ms``, ``lat_batch_ms``: median inference latency at batch 1 and at the batch size (median over runs);
* ``epoch_s`` is the table's own column (median over each run's epochs, then over runs);
* ``trial_s``: total compute seconds of the cell, summed over all its runs (finished, failed, retried): each
  run's ``epoch_seconds`` history summed (the training epochs, as the worker timed them) plus the cost probe's
  own time (``ablate.cost_s``).  Not counted, because the store holds no worker-side measure of them: start-up
  (imports, data loading, model building) and evaluation.  Not MLflow's start-to-end time of a run: the
  tracker starts a run when Tune's actor is ready, before the worker imports torch and the task, so a trial on
  a fresh worker carried its process's cold start (31-34 s for a digits smoke cell on a loaded 2-core machine)
  and one on a reused actor did not (0.8 s); a resumed run's span also holds the time the driver was down;
* ``gpu_s``: GPU-seconds of those runs: each run's trial-seconds times the GPUs it held (``ablate.gpus``, which
  sweeps/runner/trainable.py annotates as resources.gpu × resources.workers; 0 on a CPU launch); NaN where no run
  of the cell recorded it (launches from before it was annotated);
* ``search_s``, ``search_gpu_s``, ``search_n``: the same seconds summed over the search-phase trials that tuned
  the cell (the launch's runs of phase ``search`` with the same cell tag; load_runs puts them in
  ``runs.attrs["search_cost"]``); 0 trials and 0 s for a launch without a search phase;
* ``total_s``, ``total_gpu_s``: final plus search, the cell's whole compute;
* ``threads``: the torch threads the latencies were timed with;
* ``<cost>_x``: the ratio to the baseline cell's value (``params_x``, ``flops_x``, ``mem_x``, ``lat_b1_x``,
  ``lat_batch_x``, ``epoch_x``), where there is a baseline with that cost;
* ``cost_note``: why a cost is missing (the probe's ``cost_note``) or what FLOPs could not count (``flops_note``).

The CSV always has these columns; Markdown and LaTeX show them as a second table with ``render(..., cost=True)``
(``ablate table --cost``), so the default table stays compact.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from . import contract as C

# table column -> the run tag it is the median of
FROM_TAGS = {"flops_fwd": C.FLOPS_FWD, "flops_step": C.FLOPS_STEP, "mem_mb": C.PEAK_MEM_MB,
             "lat_b1_ms": C.LATENCY_MS_B1, "lat_batch_ms": C.LATENCY_MS_BATCH, "threads": C.THREADS}
RATIOS = {"params_x": "params", "flops_x": "flops_fwd", "mem_x": "mem_mb", "lat_b1_x": "lat_b1_ms",
          "lat_batch_x": "lat_batch_ms", "epoch_x": "epoch_s"}
COMPUTE = ("trial_s", "gpu_s", "search_s", "search_gpu_s", "search_n", "total_s", "total_gpu_s")
COLUMNS = (*FROM_TAGS, *COMPUTE, *RATIOS, "cost_note")
# what ablate plot --kind pareto --cost NAME puts on its x axis
PARETO_COSTS = {"flops": "flops_fwd", "memory": "mem_mb", "latency": "lat_batch_ms", "params": "params"}
LABELS = {"flops_fwd": "FLOPs per sample (forward)", "mem_mb": "peak training memory of one step (MiB)",
          "lat_batch_ms": "inference latency at the batch size (ms)", "params": "parameters"}


def _median(g: pd.DataFrame, tag: str) -> float:
    col = C.column(tag)
    if col not in g:
        return np.nan
    x = pd.to_numeric(g[col], errors="coerce").dropna()
    return float(x.median()) if len(x) else np.nan


COST_S = C.ANNOTATION_PREFIX + "cost_s"      # the probe's own wall time (tasks/cost.py)
GPUS = C.ANNOTATION_PREFIX + "gpus"          # GPUs the trial held (sweeps/runner/trainable.py)


def _numeric(g: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(g[col], errors="coerce") if col in g else pd.Series(np.nan, index=g.index, dtype=float)


def compute_seconds(g: pd.DataFrame) -> Dict[str, float]:
    """Trial-seconds and GPU-seconds of runs ``g`` (one cell's): each run's epoch_seconds summed plus the probe's
    time (module docstring), summed over the runs; NaN where no run has an epoch history (or, for GPU-seconds,
    no run recorded its GPUs)."""
    train = _numeric(g, "train_s")
    if not train.notna().any():
        return {"s": np.nan, "gpu_s": np.nan}
    per_run = train.fillna(0.0) + _numeric(g, C.column(COST_S)).fillna(0.0)
    gpus = _numeric(g, C.column(GPUS))
    gpu_s = float((per_run * gpus).sum()) if gpus.notna().any() else np.nan
    return {"s": float(per_run.sum()), "gpu_s": gpu_s}


def search_cost(search_runs: pd.DataFrame) -> Dict[str, Dict[str, float]]:
    """{cell: {"s", "gpu_s", "n"}} of a launch's search-phase runs (load_runs(phase="search")'s frame)."""
    return {cell: {**compute_seconds(g), "n": int(len(g))} for cell, g in search_runs.groupby("cell", sort=False)}


def _note(g: pd.DataFrame) -> str:
    notes: List[str] = []
    for tag in (C.COST_NOTE, C.FLOPS_NOTE):
        col = C.column(tag)
        if col in g:
            notes += [v for v in g[col].dropna().unique() if isinstance(v, str) and v]
    return "; ".join(dict.fromkeys(notes))


def add_costs(table: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Add COLUMNS to ``table`` (ablation_table's frame, one row per cell) from ``runs`` (load_runs' frame)."""
    per_cell: Dict[str, dict] = {}
    for cell, g in runs.groupby("cell", sort=False):
        ok = g[g["status"] == "FINISHED"]
        src = ok if len(ok) else g
        own = compute_seconds(g)
        per_cell[cell] = {**{name: _median(src, tag) for name, tag in FROM_TAGS.items()},
                          "trial_s": own["s"], "gpu_s": own["gpu_s"], "cost_note": _note(g)}
    searched = runs.attrs.get("search_cost") or {}
    for cell, row in per_cell.items():
        s = searched.get(cell, {"s": 0.0, "gpu_s": 0.0 if math.isfinite(row["gpu_s"]) else np.nan, "n": 0})
        row.update(search_s=s["s"], search_gpu_s=s["gpu_s"], search_n=s["n"],
                   total_s=row["trial_s"] + s["s"], total_gpu_s=row["gpu_s"] + s["gpu_s"])
    for name in (*FROM_TAGS, *COMPUTE, "cost_note"):
        table[name] = [per_cell.get(c, {}).get(name, np.nan if name != "cost_note" else "") for c in table["cell"]]
    base = table.loc[table["baseline"]] if "baseline" in table else table.iloc[:0]
    for ratio, col in RATIOS.items():
        b = float(base[col].iloc[0]) if len(base) and col in table and _pos(base[col].iloc[0]) else np.nan
        table[ratio] = [float(v) / b if _pos(v) and math.isfinite(b) else np.nan
                        for v in (table[col] if col in table else [np.nan] * len(table))]
    return table


def _pos(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v)) and float(v) > 0
    except (TypeError, ValueError):
        return False


def csv_columns(table: pd.DataFrame) -> List[str]:
    return [c for c in COLUMNS if c in table]


def _si(x: float) -> str:
    if not _pos(x):
        return "" if not (x == 0) else "0"
    for unit, k in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= k:
            return f"{x / k:.3g}{unit}"
    return f"{x:.3g}"


def _with_ratio(value: str, r, ratio: Optional[str]) -> str:
    if not value:
        return ""
    if ratio and _pos(r.get(ratio)) and not r.get("baseline", False):
        return f"{value} ({float(r[ratio]):.2g}×)"
    return value


def render_cost(table: pd.DataFrame, fmt: str) -> str:
    """The cost table in Markdown or LaTeX: one row per cell, each cost with its ratio to the baseline."""
    from .table_text import esc

    axes = list(table.attrs.get("axes") or ["cell"])
    spec = [("params", "params", "params_x", lambda v: f"{int(v):,}" if _pos(v) else ""),
            ("FLOPs/sample fwd", "flops_fwd", "flops_x", _si), ("FLOPs/sample step", "flops_step", None, _si),
            ("peak train MiB", "mem_mb", "mem_x", lambda v: f"{v:.3g}" if _pos(v) else ""),
            ("latency b=1 ms", "lat_b1_ms", "lat_b1_x", lambda v: f"{v:.3g}" if _pos(v) else ""),
            ("latency batch ms", "lat_batch_ms", "lat_batch_x", lambda v: f"{v:.3g}" if _pos(v) else ""),
            ("s/epoch", "epoch_s", "epoch_x", lambda v: f"{v:.3g}" if _pos(v) else ""),
            ("trial-s", "trial_s", None, lambda v: f"{v:,.1f}" if _pos(v) else ""),
            ("search-s", "search_s", None, lambda v: f"{v:,.1f}" if _pos(v) else ""),
            ("GPU-s", "total_gpu_s", None, lambda v: f"{v:,.1f}" if _pos(v) else "")]
    # search-s and GPU-s only where a cell had a search / held a GPU: a CPU launch without search stays compact
    spec = [s for s in spec if s[1] in table and (s[1] not in ("search_s", "total_gpu_s")
                                                 or any(_pos(v) for v in table[s[1]]))]
    head = axes + [s[0] for s in spec]
    body = []
    for _, r in table.iterrows():
        cells = ["–" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in (r[a] for a in axes)]
        cells += [_with_ratio(f(r[col]) if r[col] is not None else "", r, ratio) for _, col, ratio, f in spec]
        body.append(cells)
    threads = sorted({int(t) for t in table.get("threads", pd.Series(dtype=float)).dropna()})
    notes = [f"cost per cell: median over its finished runs; (×) = ratio to the baseline; latency timed at "
             f"{'/'.join(map(str, threads)) or '?'} torch thread(s); trial-s: training epochs and cost probe, "
             f"summed over all the cell's runs (start-up and evaluation not counted)"
             + ("; search-s: the same over the search trials that tuned the cell" if any(
                 s[1] == "search_s" for s in spec) else "")
             + ("; GPU-s: final and search seconds times the GPUs each trial held" if any(
                 s[1] == "total_gpu_s" for s in spec) else "")]
    notes += [f"{r['cell']}: {r['cost_note']}" for _, r in table.iterrows() if isinstance(r.get("cost_note"), str)
              and r["cost_note"]]
    if fmt == "md":
        widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
        line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
        md = "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])
        return md + "".join(f"\n\n_{n}_" for n in notes)
    lines = [r"\begin{tabular}{" + "l" * len(axes) + "r" * len(spec) + "}", r"\toprule",
             " & ".join(esc(h) for h in head) + r" \\", r"\midrule",
             *(" & ".join(esc(c) for c in b) + r" \\" for b in body), r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines + [f"% {esc(n)}" for n in notes])
