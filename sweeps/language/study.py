"""The validated study (what a sweep file means) and the names of its keys.

Pure Python: nothing here imports torch, Ray or MLflow (validation must take
well under 2 s).
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from analysis.contract import DEFAULT_ANALYSIS
from tasks.schema import TaskSpec

TOP_KEYS = ("name", "task", "description", "metric", "baseline", "seeds", "fixed", "scientific",
            "nuisance", "search", "resources", "max_failures", "max_concurrent", "tracking",
            "storage", "smoke", "paper", "plot", "artifacts", "analysis", "checkpoint", "imports")
SUITE_KEYS = ("name", "description", "defaults", "studies", "paper", "imports")
ARTIFACT_KEYS = ("checkpoints", "summary")
PLOT_KINDS = ("auto", "line", "heatmap", "bars", "metric_curve")
PLOT_KEYS = ("kind", "x", "hue", "metric", "metrics", "x_values", "x_label", "logy")
SEARCH_KEYS = ("trials_per_cell", "scheduler", "metric", "mode", "grace_period", "reduction_factor", "seed")
RESOURCE_KEYS = ("cpu", "gpu", "workers")
TRACKING_KEYS = ("uri", "experiment")
CHECKPOINT_KEYS = ("every_s",)
SEED_KEYS = ("looks",)
DISTS = ("loguniform", "uniform", "int", "choice")
SCHEDULERS = ("none", "asha")
MAX_SEED = 2**31 - 1
DEFAULT_CHECKPOINT_S = 10.0


@dataclass
class Dist:
    kind: str
    args: List[Any]

    def describe(self) -> str:
        return f"{self.kind}{self.args}"


@dataclass
class Study:
    """A validated sweep.

    seeds: every seed a cell may run; with ``looks`` (cumulative seed counts of
    a group-sequential design) the cells still undecided after look k get the
    seeds up to looks[k+1].  analysis: alpha, correction, test, min_effect,
    spending.  checkpoint: {"every_s": seconds between per-trial checkpoints}.
    """

    name: str
    file: str
    task: TaskSpec
    metric: str
    mode: str
    seeds: List[int]
    fixed: Dict[str, Any]
    scientific: Dict[str, List[Any]]
    nuisance: Dict[str, Dist]
    baseline: Dict[str, Any]
    search: Dict[str, Any]
    resources: Dict[str, Any]
    max_failures: int
    max_concurrent: int
    tracking_uri: Optional[str]
    experiment: str
    storage: Optional[str]
    smoke: bool = False
    description: str = ""
    plot: Dict[str, Any] = field(default_factory=dict)
    artifacts: Dict[str, bool] = field(default_factory=lambda: {"checkpoints": False, "summary": True})
    raw: Dict[str, Any] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)   # e.g. a --set that drops the baseline
    looks: Optional[List[int]] = None
    analysis: Dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ANALYSIS))
    checkpoint: Dict[str, Any] = field(default_factory=lambda: {"every_s": DEFAULT_CHECKPOINT_S})
    imports: List[Dict[str, Any]] = field(default_factory=list)   # sweeps/language/imports.py Imported.to_json()


def near(key: Any, options) -> str:
    close = difflib.get_close_matches(str(key), [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
