"""Task schemas: which flat, dotted config keys a task accepts, their types,
defaults, allowed values and ranges, and the task's metrics.

Pure Python on purpose: `ablate run --dry-run` and sweep validation must answer
in well under 2 s, so nothing here (or in any task module's top level) may
import torch, Ray or MLflow.  Heavy imports live inside each task's ``run``.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean"}


@dataclass(frozen=True)
class Param:
    """One config key of a task.

    type: int, float, str or bool.  default: used when a sweep does not set it.
    choices: allowed values (for strings, e.g. registry names).
    low / high: inclusive numeric bounds.  when: the key only applies when
    other keys take one of the listed values (``{"model.linear": ("cdlinear",)}``);
    elsewhere it is dropped from the trial config, so a conditional axis never
    multiplies the trials of cells it does not apply to.
    """

    type: type
    default: Any
    doc: str = ""
    choices: Optional[Tuple[Any, ...]] = None
    low: Optional[float] = None
    high: Optional[float] = None
    when: Optional[Dict[str, Tuple[Any, ...]]] = None

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        kind = _TYPE_NAMES.get(self.type, self.type.__name__)
        if self.low is not None and self.high is not None:
            return f"{kind} in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"{kind} >= {self.low}"
        if self.high is not None:
            return f"{kind} <= {self.high}"
        return kind

    def coerce(self, value: Any) -> Any:
        """Return ``value`` as this param's type or raise ValueError(allowed)."""
        t = self.type
        if t is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise ValueError(self.allowed())
        if t is int:
            if isinstance(value, bool):
                raise ValueError(self.allowed())
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, str):
                try:
                    value = int(value)
                except ValueError:
                    raise ValueError(self.allowed()) from None
            if not isinstance(value, int):
                raise ValueError(self.allowed())
        elif t is float:
            if isinstance(value, bool):
                raise ValueError(self.allowed())
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise ValueError(self.allowed()) from None
            if not isinstance(value, (int, float)):
                raise ValueError(self.allowed())
            value = float(value)
        elif t is str:
            if self.choices is None and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)      # `--set optim.milestones=40` arrives from YAML as an int
            if not isinstance(value, str):
                raise ValueError(self.allowed())
        if self.choices is not None and value not in self.choices:
            raise ValueError(self.allowed())
        if self.low is not None and value < self.low:
            raise ValueError(self.allowed())
        if self.high is not None and value > self.high:
            raise ValueError(self.allowed())
        return value

    def applies(self, config: Dict[str, Any]) -> bool:
        if not self.when:
            return True
        return all(config.get(k) in vals for k, vals in self.when.items())


# Keys every task accepts; `sweeps` fills them, tasks read them.
COMMON: Dict[str, Param] = {
    "seed": Param(int, 0, "replicate seed: seeds every RNG of the trial", low=0, high=2**31 - 1),
    "train.threads": Param(int, 1, "torch intra-op threads; fixed so a rerun reproduces exactly", low=1, high=256),
    "train.device": Param(str, "auto", "auto picks CUDA when present", choices=("auto", "cpu", "cuda")),
    "train.deterministic": Param(bool, True, "torch.use_deterministic_algorithms"),
}


@dataclass
class TaskSpec:
    """What the platform knows about a task without importing it heavily.

    params: task keys (COMMON keys are added automatically).
    metrics: metric name → "max" or "min" (what is better).
    run: "module:function" of ``run(config, reporter) -> dict`` (imported lazily).
    check: optional pure function(config) → list of (key, message) for
        cross-key constraints (e.g. a block size must divide the layer widths).
    smoke: overrides that shrink a trial for tests/CI (few epochs, little data).
    paper: one line naming the paper/section the task reproduces.
    sparse: optional pure function(config) → {metric: (every, key)} for metrics
        reported only every ``every`` epochs (and after the last) under that
        config, ``key`` being the setting that controls it.  A nuisance search
        (ASHA, Optuna) needs its metric every epoch; the sweep validator
        refuses the combination before launch.
    """

    name: str
    params: Dict[str, Param]
    metrics: Dict[str, str]
    run: str
    check: Optional[Callable[[Dict[str, Any]], List[Tuple[str, str]]]] = None
    smoke: Dict[str, Any] = field(default_factory=dict)
    description: str = ""
    paper: str = ""
    sparse: Optional[Callable[[Dict[str, Any]], Dict[str, Tuple[int, str]]]] = None

    def __post_init__(self) -> None:
        merged = dict(COMMON)
        merged.update(self.params)
        self.params = merged
        for m, mode in self.metrics.items():
            if mode not in ("max", "min"):
                raise ValueError(f"task {self.name}: metric {m} mode must be max or min")

    def suggest(self, key: str) -> str:
        close = difflib.get_close_matches(key, list(self.params), n=1, cutoff=0.6)
        return f"did you mean {close[0]!r}? " if close else ""

    def defaults(self) -> Dict[str, Any]:
        return {k: p.default for k, p in self.params.items()}

    def resolve(self, overrides: Dict[str, Any]) -> Dict[str, Any]:
        """Defaults + overrides, conditional keys dropped where they don't apply.

        Raises KeyError/ValueError for unknown keys or bad values (callers that
        need file/key-path context validate first, see sweeps.language.load).
        """
        cfg = self.defaults()
        for k, v in overrides.items():
            if k not in self.params:
                raise KeyError(f"unknown key {k!r} for task {self.name}; {self.suggest(k)}"
                               f"valid keys: {', '.join(sorted(self.params))}")
            cfg[k] = self.params[k].coerce(v)
        return {k: v for k, v in cfg.items() if self.params[k].applies(cfg)}

    def check_config(self, config: Dict[str, Any]) -> List[Tuple[str, str]]:
        return list(self.check(config)) if self.check else []

    def load_run(self) -> Callable[..., Dict[str, float]]:
        import importlib

        mod, fn = self.run.split(":")
        return getattr(importlib.import_module(mod), fn)


def choices_of(values: Sequence[Any]) -> Tuple[Any, ...]:
    return tuple(values)
