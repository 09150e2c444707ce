"""What a mapping of external runs is (RunMapping), where the runs came from (Source), the error every
mapping problem raises (MappingError), and the small text helpers the error lines share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import pandas as pd

DUPLICATES = ("refuse", "keep-last", "best")
MODES = ("max", "min")
PREFIXES = ("params.", "metrics.", "tags.", "config.", "summary.")
# the columns ablate's runs frame uses itself: a cell column of one of these names would be overwritten
RESERVED = ("run_id", "experiment_id", "status", "cell", "seed", "launch", "n_params", "failure_reason", "look",
            "epoch_s", "start_time", "end_time", "baseline", "best")
# the run id and run order of each row, taken before any filter (columns of the working copy only)
_RID, _ORDER = "_ablate_run_id", "_ablate_order"


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


def metric_name(mapping: RunMapping) -> str:
    """The metric's name in the table (``metrics.acc`` and ``acc`` are both "acc")."""
    m = mapping.metric
    return m.split(".", 1)[1] if m.startswith(("metrics.", "summary.")) else m


def _visible(df: pd.DataFrame) -> List[str]:
    return [c for c in df.columns if c not in (_RID, _ORDER)]


def _listing(names: Sequence[str], limit: int = 24) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "")


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in str(text).splitlines() if ln.strip()), "")


def _ids(frame_ids: Sequence[str], limit: int = 4) -> str:
    ids = list(frame_ids)
    return ", ".join(ids[:limit]) + (f", … ({len(ids)} in all)" if len(ids) > limit else "")
