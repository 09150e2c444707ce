"""What a launch is while it runs: its persisted state (``LaunchState``) and the
context every phase of it shares (``Launch``), as Ray Tune keeps its own in
``experiment_state.py``.

``LaunchState`` is the JSON file ``<storage>/<name>.ablate.json`` (the run
directory when Ray's storage is remote).  It records the launch id, the phases
done, the chosen nuisance values, the cells each look runs (recorded before the
look starts) and the design, so ``--resume`` continues exactly where a killed
driver stopped.  Its format is the one earlier versions wrote (a flat JSON
object); keys this version does not know are kept as they were.

``Launch`` bundles the study, its state and where it runs (storage, store,
experiment, tags), and how a phase is run.  ``run_phase`` is a field so the
decisions about phases and looks (sweeps/runner/launch.py, looks.py) can be
tested with a fake phase runner and no Ray (tests/sweeps/test_launch_state.py).
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..errors import SettingError
from ..language.study import Study

STATE_SUFFIX = ".ablate.json"
# The keys this version reads and writes; the order is the file's.
_KNOWN = ("launch", "done", "best_nuisance", "sweep_file", "smoke", "suite_launch", "design", "parent_run_id",
          "looks", "looks_correction", "counts", "added")


def design_of(study: Study) -> Dict[str, Any]:
    """What decides which trials a launch runs beyond its grid: for adaptive seeds the looks and the analysis
    section (the design), for fixed seeds nothing ({"seeds.looks": None}); JSON-normalised like the state."""
    if not study.looks:
        return {"seeds.looks": None}
    return json.loads(json.dumps({"seeds.looks": list(study.looks),
                                  **{f"analysis.{k}": v for k, v in study.analysis.items()}}))


@dataclass
class LaunchState:
    """The persisted state of one launch.

    Args:
        path: the state file.
        launch: the launch id ("YYYYmmdd-HHMMSS-xxxxxx").
        done: phases finished ("search", "look<k>", "final"), in order.
        best_nuisance: cell id → the nuisance values its search chose.
        sweep_file, smoke: what was launched.
        suite_launch: the suite launch id that started it (None outside a suite).
        design: ``design_of(study)`` at launch; None in launches from before it was recorded.
        parent_run_id: the launch's MLflow parent run, once created.
        looks: look k (as str) → the cells it runs, recorded before it starts (adaptive seeds).
        looks_correction: the correction the looks are decided with (adaptive seeds).
        counts: the final phase's trial counts, once complete (updated by each added phase).
        added: phases added to a finished launch by ``--retry-failed`` / ``--extend``, in order, each
            {"phase": "retry<k>" | "extend<k>", "keys": trial keys it runs, "was": key -> status of the run it
            replaces (None: a trial new to the launch)}; recorded before it starts, so ``--resume`` finishes it.
        extra: keys of the file this version does not know, written back unchanged.
    """

    path: Path
    launch: str
    done: List[str] = field(default_factory=list)
    best_nuisance: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    sweep_file: str = ""
    smoke: bool = False
    suite_launch: Optional[str] = None
    design: Optional[Dict[str, Any]] = None
    parent_run_id: Optional[str] = None
    looks: Optional[Dict[str, List[str]]] = None
    looks_correction: Optional[str] = None
    counts: Optional[Dict[str, int]] = None
    added: Optional[List[Dict[str, Any]]] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, path: Path, study: Study, suite_launch: Optional[str] = None) -> "LaunchState":
        return cls(path=path, launch=time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6],
                   sweep_file=study.file, smoke=study.smoke, suite_launch=suite_launch, design=design_of(study))

    @classmethod
    def read(cls, path: Path) -> Optional["LaunchState"]:
        """The state recorded at ``path``, or None if there is none."""
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
            if not isinstance(raw, dict) or not isinstance(raw.get("launch"), str):
                raise ValueError("not a launch state (no launch id)")
        except (OSError, ValueError) as e:
            raise SettingError(f"launch state {path} cannot be read ({e}); delete it to start afresh") from None
        known = {k: raw[k] for k in _KNOWN if k in raw}
        return cls(path=path, **known, extra={k: v for k, v in raw.items() if k not in _KNOWN})

    def to_json(self) -> Dict[str, Any]:
        """The file's content: the known keys that are set (an unset optional key is left out, as before), then
        the unknown ones."""
        out: Dict[str, Any] = {"launch": self.launch, "done": self.done, "best_nuisance": self.best_nuisance,
                               "sweep_file": self.sweep_file, "smoke": self.smoke, "suite_launch": self.suite_launch}
        for k in _KNOWN[6:]:
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return {**out, **self.extra}

    def save(self) -> None:
        self.path.write_text(json.dumps(self.to_json(), indent=1, default=str))

    def is_done(self, phase: str) -> bool:
        return phase in self.done

    def mark_done(self, phase: str) -> None:
        self.done.append(phase)
        self.save()

    def all_done(self, phases: List[str]) -> bool:
        """Whether ``phases`` and every added phase are done."""
        return all(self.is_done(p) for p in [*phases, *(a["phase"] for a in self.added or [])])

    def add_phase(self, kind: str, keys: List[str], was: Dict[str, Optional[str]]) -> str:
        """Record a new added phase ``<kind><k>`` (k = 1, 2, ... per kind) running ``keys``; its name."""
        k = 1 + sum(a["phase"].startswith(kind) for a in self.added or [])
        self.added = [*(self.added or []), {"phase": f"{kind}{k}", "keys": list(keys), "was": dict(was)}]
        self.save()
        return self.added[-1]["phase"]


PhaseRunner = Callable[..., List[Dict[str, Any]]]


@dataclass
class Launch:
    """Everything the phases of one launch share.

    Args:
        study: the validated study.
        state: its LaunchState (saved after every decision).
        storage: Ray's storage (a directory or a URI).
        uri: the MLflow tracking URI.
        experiment_id: the study's MLflow experiment.
        tags: tags of every run of the launch (the parent run id included).
        resume: whether this driver continues an earlier one.
        echo: where progress lines go.
        verbose: Tune's verbosity.
        summary: what ``launch()`` returns; phases add their counts under "phases".
        run_phase: ``(launch, phase, callbacks, trials=None, look=None) -> [trial outcome]``; default: one
            Ray Tune run (sweeps/runner/phase.py).  Tests pass a fake.
        callbacks: ``(launch, label, extra_tags) -> [Tune callbacks]``; default: the MLflow tracker and the
            progress line.
        values: ``(launch) -> {cell: {seed: metric}}`` of the launch's finished final runs, which the looks of
            adaptive seeds decide on; default: read from the store (sweeps/runner/looks.py ``store_values``).
    """

    study: Study
    state: LaunchState
    storage: Any
    uri: str
    experiment_id: str
    tags: Dict[str, str]
    resume: bool = False
    echo: Callable[[str], None] = print
    verbose: int = 1
    summary: Dict[str, Any] = field(default_factory=lambda: {"phases": {}})
    run_phase: Optional[PhaseRunner] = None
    callbacks: Optional[Callable[..., list]] = None
    values: Optional[Callable[["Launch"], Dict[str, Dict[int, float]]]] = None

    def phase(self, name: str, label: str, extra_tags: Optional[Dict[str, str]] = None, **kw) -> List[Dict[str, Any]]:
        """Run phase ``name`` (progress label ``label``; ``extra_tags`` on its runs) through ``run_phase``."""
        runner = self.run_phase
        if runner is None:
            from .phase import run_phase as runner
        make = self.callbacks or _default_callbacks
        return runner(self, name, make(self, label, extra_tags or {}), **kw)


def _default_callbacks(launch: Launch, label: str, extra_tags: Dict[str, str]) -> list:
    from .progress import Progress
    from .tracker import MLflowTracker

    return [MLflowTracker(launch.uri, launch.experiment_id, {**launch.tags, **extra_tags},
                          launch.study.artifacts["checkpoints"]), Progress(label)]
