"""Launch a validated Study on Ray Tune: optional per-cell nuisance search,
then every scientific cell × seed with the cell's best nuisance values.

Phases (each one Ray Tune run under ``<storage>/<name>-<launch>-<phase>``):

* ``search`` (only with nuisance axes): CellwiseSearcher (one Optuna TPE per
  cell) and optionally CellwiseASHA; ``trials_per_cell`` trials per cell on
  the first seed.  Its runs are tracked with ``ablate.phase=search``.
* ``final``: the full grid × seeds as an explicit trial list; these runs are
  what tables and plots read (``ablate.phase=final``).

A state file ``<storage>/<name>.ablate.json`` records the launch id, finished
phases and the chosen nuisance values, so ``--resume`` continues with
``Tuner.restore`` exactly where a killed driver stopped.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import tracking
from .expand import baseline_cell, cells, final_trials
from .spec import Study
from .errors import LaunchError, LaunchInterrupted, TrialsFailed, UsageError  # noqa: F401  (re-exported)
from .parent import PARENT_TAG, end_parent, log_launch_artifacts, open_parent
from .phase import counts, run_phase, tune_environment

STATE_SUFFIX = ".ablate.json"


def _state_path(storage: Path, name: str) -> Path:
    return storage / f"{name}{STATE_SUFFIX}"


def storage_of(study: Study) -> Any:
    """Ray's storage for the study's Tune runs: a local directory (created) or a URI."""
    if "://" in str(study.storage or ""):
        return str(study.storage).rstrip("/")      # s3://..., gs://...: Path would mangle it
    storage = Path(study.storage or tracking.default_home() / "ray").expanduser().resolve()
    try:
        storage.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise tracking.SettingError(f"cannot create Ray's storage directory {storage} ({e.strerror}); "
                                    f"set storage: in the sweep file or ABLATE_HOME") from None
    return storage


def state_file(study: Study) -> Path:
    """The launch-state file; it stays with the driver (local) whatever Ray's storage is."""
    remote = "://" in str(study.storage or "")
    state_dir = tracking.ensure_home() if remote else storage_of(study)
    return _state_path(state_dir, study.name)


def read_state(study: Study) -> Optional[Dict[str, Any]]:
    """The recorded state of the study's last launch, or None."""
    f = state_file(study)
    if not f.exists():
        return None
    try:
        return json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise tracking.SettingError(f"launch state {f} cannot be read ({e}); delete it to start afresh") from None


def _phases(study: Study) -> List[str]:
    return (["search"] if study.nuisance else []) + ["final"]


def _new_state(study: Study, suite_launch: Optional[str]) -> Dict[str, Any]:
    return {"launch": time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6], "done": [],
            "best_nuisance": {}, "sweep_file": study.file, "smoke": study.smoke, "suite_launch": suite_launch,
            "design": _design_of(study)}


def _design_of(study: Study) -> Dict[str, Any]:
    """What decides which trials a launch runs beyond its grid: for adaptive seeds the looks and the analysis
    section (the design), for fixed seeds nothing ({"seeds.looks": None}); JSON-normalised like the state."""
    if not study.looks:
        return {"seeds.looks": None}
    return json.loads(json.dumps({"seeds.looks": list(study.looks),
                                  **{f"analysis.{k}": v for k, v in study.analysis.items()}}))


def _check_same_design(study: Study, state: Dict[str, Any]) -> None:
    """--resume of an adaptive launch must keep its design: the looks already run were decided under it, and a
    change (another alpha, spending, looks...) would mix two designs in one launch. Launches from before this
    check have no record and are not checked; a finished launch runs nothing, so it is not checked either."""
    if "design" not in state or "final" in state.get("done", []):
        return
    was, now = state["design"], _design_of(study)
    changed = [f"{k} was {was.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(was) | set(now))
               if now.get(k) != was.get(k)]
    if changed:
        raise UsageError(f"--resume: launch {state['launch']} of {study.name!r} was planned with another "
                         f"adaptive design ({'; '.join(changed)}); restore those values to resume it, or run "
                         f"without --resume for a new launch")


def launch(study: Study, address: Optional[str] = None, tracking_uri: Optional[str] = None,
           resume: bool = False, echo: Callable[[str], None] = print, verbose: int = 1,
           suite_launch: Optional[str] = None) -> Dict[str, Any]:
    """Run the study; returns {"launch", "experiment_id", "uri", "counts", "phases", "complete_before"}.

    ``resume`` continues the last launch (UsageError if there is none); a launch
    that had already completed is not run again (``complete_before`` is True).
    ``suite_launch`` ties the launch to a suite run, so a suite ``--resume`` can
    tell the studies it started from stale ones.
    """
    uri = tracking.resolve_uri(tracking_uri, study.tracking_uri)
    tracking.open_store(uri, create=True)               # before any trial starts
    sfile = state_file(study)
    if resume:
        state = read_state(study)
        if state is None:
            raise UsageError(f"--resume: no earlier launch of {study.name!r} (no {sfile}); run without --resume")
        _check_same_design(study, state)
        echo(f"resuming launch {state['launch']} of {study.name} (phases done: {state.get('done', [])})")
    else:
        state = _new_state(study, suite_launch)
    exp_id = tracking.ensure_experiment(uri, study.experiment)
    storage = storage_of(study)
    summary = {"launch": state["launch"], "experiment_id": exp_id, "uri": uri, "phases": {},
               "storage": str(storage), "complete_before": all(p in state["done"] for p in _phases(study))}
    if summary["complete_before"]:
        summary["counts"] = state.get("counts", {})
        return summary
    save = lambda: sfile.write_text(json.dumps(state, indent=1, default=str))
    save()
    tune_environment()
    from .cluster import connect

    connect(address, verbose)
    _check_fits(study, local=address is None)
    tags = _launch_tags(study, state["launch"])
    parent = open_parent(study, uri, exp_id, tags, state)
    save()
    summary["parent_run_id"] = parent
    try:
        _run_phases(study, state, save, storage, uri, exp_id, {**tags, PARENT_TAG: parent}, resume, echo,
                    verbose, summary)
    except LaunchInterrupted:
        end_parent(uri, parent, "KILLED")
        raise
    except TrialsFailed:
        end_parent(uri, parent, "FAILED")
        raise
    summary["counts"] = summary["phases"].get("final", {})
    state["counts"] = summary["counts"]
    save()
    if study.artifacts["summary"]:
        summary["report"] = log_launch_artifacts(study, uri, parent, state["launch"], echo)
    end_parent(uri, parent, "FINISHED")
    return summary


def _launch_tags(study: Study, launch_id: str) -> Dict[str, str]:
    tags = tracking.base_tags(study.name, launch_id)
    base = baseline_cell(study, cells(study))
    tags.update({"ablate.metric": study.metric, "ablate.mode": study.mode,
                 "ablate.baseline_cell": base.id if base else "", "ablate.smoke": str(study.smoke).lower(),
                 "ablate.plot": json.dumps(study.plot), "ablate.metric_modes": json.dumps(study.task.metrics),
                 "ablate.analysis": json.dumps(study.analysis), "ablate.task": study.task.name,
                 "ablate.paper": str(study.raw.get("paper") or study.task.paper)[:500]})
    if study.looks:
        tags["ablate.looks"] = json.dumps(study.looks)
        # Marks launches whose looks were decided with analysis.correction; older ones used Bonferroni whatever
        # it said, and the table must replay what the runner did (analysis/store.py).
        tags["ablate.looks_correction"] = study.analysis["correction"]
    return tags


def _run_phases(study, state, save, storage, uri, exp_id, tags, resume, echo, verbose, summary) -> None:
    from .callback import MLflowTracker

    from .progress import Progress

    tracker = lambda label: [MLflowTracker(uri, exp_id, tags, study.artifacts["checkpoints"]), Progress(label)]
    if study.nuisance and "search" not in state["done"]:
        results = run_phase(study, "search", state, storage, tracker("search"), resume, echo, verbose)
        from .search import best_per_cell

        state["best_nuisance"] = best_per_cell(results, study.search["metric"], study.search["mode"],
                                               list(study.nuisance))
        missing = [c.id for c in cells(study) if c.id not in state["best_nuisance"]]
        if missing:
            raise TrialsFailed(f"{study.name}: the nuisance search produced no usable trial for cells "
                               f"{', '.join(missing)} (every search trial failed or reported no "
                               f"{study.search['metric']}); see the failed search runs in MLflow experiment "
                               f"{study.experiment!r}")
        state["done"].append("search")
        save()
        summary["phases"]["search"] = counts(results)
        for cid, vals in state["best_nuisance"].items():
            echo(f"best nuisance for [{cid}]: {vals}")
    if "final" not in state["done"] and study.looks:
        from .looks import run_looks

        run_looks(study, state, save, storage, uri, exp_id, tags, resume, echo, verbose, summary)
    elif "final" not in state["done"]:
        trials = final_trials(study, state.get("best_nuisance"))
        results = run_phase(study, "final", state, storage, tracker("final"), resume, echo, verbose, trials=trials)
        state["done"].append("final")
        save()
        summary["phases"]["final"] = counts(results)


def _check_fits(study: Study, local: bool) -> None:
    """A trial that needs more than the whole cluster waits forever in Tune; on a
    fixed-size (local) cluster say so before launching instead."""
    import ray

    r = study.resources
    need_cpu = r["cpu"] * (0.99 * r["workers"] + (0.01 if r["workers"] > 1 else 0)) if r["workers"] > 1 else r["cpu"]
    need_gpu = r["gpu"] * r["workers"]
    have = ray.cluster_resources()
    short = []
    if need_cpu > have.get("CPU", 0) + 1e-9:
        short.append(f"{need_cpu:g} CPUs (cluster has {have.get('CPU', 0):g})")
    if need_gpu > have.get("GPU", 0) + 1e-9:
        short.append(f"{need_gpu:g} GPUs (cluster has {have.get('GPU', 0):g})")
    if short and local:
        raise LaunchError(f"{study.file}: resources: one trial needs {' and '.join(short)}; lower "
                              f"resources.cpu/gpu/workers or pass --address of a larger cluster")


