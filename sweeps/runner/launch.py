"""Launch a validated Study on Ray Tune: optional per-cell nuisance search,
then every scientific cell × seed with the cell's best nuisance values.

Phases (each one Ray Tune run under ``<storage>/<name>-<launch>-<phase>``):

* ``search`` (only with nuisance axes): CellwiseSearcher (one Optuna TPE per
  cell) and optionally CellwiseASHA; ``trials_per_cell`` trials per cell on
  the first seed.  Its runs are tracked with ``ablate.phase=search``.
* ``final``: the full grid × seeds as an explicit trial list; these runs are
  what tables and plots read (``ablate.phase=final``).

A state file ``<storage>/<name>.ablate.json`` (sweeps/runner/state.py) records
the launch id, finished phases and the chosen nuisance values, so ``--resume``
continues with ``Tuner.restore`` exactly where a killed driver stopped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from analysis import contract as C

from ..errors import LaunchError, LaunchInterrupted, SettingError, TrialsFailed, UsageError
from ..language.expand import baseline_cell, cells, final_trials
from ..language.study import Study
from . import tracking
from .grow import grown_launch, launch_runs, plan_extend, plan_retry, run_added
from .parent import end_parent, log_launch_artifacts, open_parent
from .phase import counts, tune_environment
from .state import STATE_SUFFIX, Launch, LaunchState, PhaseRunner, design_of


def storage_of(study: Study) -> Any:
    """Ray's storage for the study's Tune runs: a local directory (created) or a URI."""
    if "://" in str(study.storage or ""):
        return str(study.storage).rstrip("/")      # s3://..., gs://...: Path would mangle it
    storage = Path(study.storage or tracking.default_home() / "ray").expanduser().resolve()
    try:
        storage.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SettingError(f"cannot create Ray's storage directory {storage} ({e.strerror}); "
                           f"set storage: in the sweep file or ABLATE_HOME") from None
    return storage


def state_file(study: Study) -> Path:
    """The launch-state file; it stays with the driver (local) whatever Ray's storage is."""
    remote = "://" in str(study.storage or "")
    state_dir = tracking.ensure_home() if remote else storage_of(study)
    return state_dir / f"{study.name}{STATE_SUFFIX}"


def read_state(study: Study) -> Optional[LaunchState]:
    """The recorded state of the study's last launch, or None."""
    return LaunchState.read(state_file(study))


def _phases(study: Study) -> List[str]:
    return (["search"] if study.nuisance else []) + ["final"]


def check_same_design(study: Study, state: LaunchState) -> None:
    """--resume of an adaptive launch must keep its design: the looks already run were decided under it, and a
    change (another alpha, spending, looks...) would mix two designs in one launch. Launches from before this
    check have no record and are not checked; a finished launch runs nothing, so it is not checked either."""
    if state.design is None or state.is_done("final"):
        return
    was, now = state.design, design_of(study)
    changed = [f"{k} was {was.get(k)!r}, now {now.get(k)!r}" for k in sorted(set(was) | set(now))
               if now.get(k) != was.get(k)]
    if changed:
        raise UsageError(f"--resume: launch {state.launch} of {study.name!r} was planned with another "
                         f"adaptive design ({'; '.join(changed)}); restore those values to resume it, or run "
                         f"without --resume for a new launch")


def launch(study: Study, address: Optional[str] = None, tracking_uri: Optional[str] = None,
           resume: bool = False, echo: Callable[[str], None] = print, verbose: int = 1,
           suite_launch: Optional[str] = None, run_phase: Optional[PhaseRunner] = None,
           values: Optional[Callable[[Launch], Dict[str, Dict[int, float]]]] = None,
           grow: Optional[str] = None, launch_id: Optional[str] = None) -> Dict[str, Any]:
    """Run the study; returns {"launch", "experiment_id", "uri", "counts", "phases", "complete_before"}.

    ``grow``: "retry" (``--retry-failed``) or "extend" (``--extend``) adds a phase to the finished launch
    ``launch_id`` (None/"latest": the last; sweeps/runner/grow.py); with nothing to run the summary has
    "nothing" (a sentence) and nothing is launched.

    ``resume`` continues the last launch (UsageError if there is none); a launch
    that had already completed is not run again (``complete_before`` is True).
    ``suite_launch`` ties the launch to a suite run, so a suite ``--resume`` can
    tell the studies it started from stale ones.  ``run_phase``, ``values``: see ``Launch`` (tests replace Ray
    with them).
    """
    uri = tracking.resolve_uri(tracking_uri, study.tracking_uri)
    tracking.open_store(uri, create=True)               # before any trial starts
    sfile = state_file(study)
    if grow:
        state = grown_launch(study, LaunchState.read(sfile), launch_id,
                             "--retry-failed" if grow == "retry" else "--extend", _phases(study))
    elif resume:
        state = LaunchState.read(sfile)
        if state is None:
            raise UsageError(f"--resume: no earlier launch of {study.name!r} (no {sfile}); run without --resume")
        check_same_design(study, state)
        echo(f"resuming launch {state.launch} of {study.name} (phases done: {state.done})")
    else:
        state = LaunchState.new(sfile, study, suite_launch)
    exp_id = tracking.ensure_experiment(uri, study.experiment)
    storage = storage_of(study)
    summary = {"launch": state.launch, "experiment_id": exp_id, "uri": uri, "phases": {},
               "storage": str(storage), "complete_before": state.all_done(_phases(study))}
    if grow:
        summary["nothing"] = _plan_growth(study, state, uri, exp_id, grow, echo)
        summary["complete_before"] = summary["nothing"] is not None
    if summary["complete_before"]:
        summary["counts"] = state.counts or {}
        return summary
    state.save()
    if run_phase is None:
        tune_environment()
        from .cluster import connect

        connect(address, verbose, runtime_env_of(study))
        _check_fits(study, local=address is None)
    tags = launch_tags(study, state.launch)
    parent = open_parent(study, uri, exp_id, tags, state)
    state.save()
    summary["parent_run_id"] = parent
    run = Launch(study=study, state=state, storage=storage, uri=uri, experiment_id=exp_id,
                 tags={**tags, C.PARENT_RUN: parent}, resume=resume, echo=echo, verbose=verbose, summary=summary,
                 run_phase=run_phase, values=values)
    try:
        run_phases(run)
    except LaunchInterrupted:
        end_parent(uri, parent, "KILLED")
        raise
    except TrialsFailed:
        end_parent(uri, parent, "FAILED")
        raise
    if "final" in summary["phases"]:
        state.counts = summary["phases"]["final"]
    summary["counts"] = state.counts or {}
    state.save()
    if study.artifacts["summary"]:
        summary["report"] = log_launch_artifacts(study, uri, parent, state.launch, echo)
    end_parent(uri, parent, "FINISHED")
    return summary


def _plan_growth(study: Study, state: LaunchState, uri: str, exp_id: str, grow: str,
                 echo: Callable[[str], None]) -> Optional[str]:
    """Record the added phase that ``grow`` runs (None) or say why there is nothing to run."""
    runs = launch_runs(uri, exp_id, state.launch)
    if grow == "retry":
        was = plan_retry(study, state, runs)
        if not was:
            return f"launch {state.launch} of {study.name} has no failed trials; nothing to retry"
    else:
        was = plan_extend(study, state, runs, tracking.git_commit(), echo)
        if not was:
            return f"launch {state.launch} of {study.name} already has every trial of {study.file}; nothing to extend"
    name = state.add_phase(grow, sorted(was), was)
    new = sum(v is None for v in was.values())
    echo(f"{name} of launch {state.launch} of {study.name}: {len(was)} trials ({new} new to the launch, "
         f"{len(was) - new} rerun; their old runs are kept, marked superseded)")
    return None


def runtime_env_of(study: Study) -> Optional[Dict[str, Any]]:
    """Ray's runtime_env that ships the sweep file's own code (``imports:``) to every worker of the launch, on
    any node (``py_modules``: the files and package folders; installed modules must be installed there)."""
    mods = [r["path"] for r in study.imports if r.get("ship") and r.get("path")]
    return {"py_modules": mods} if mods else None


def launch_tags(study: Study, launch_id: str) -> Dict[str, str]:
    """The tags of every run of the launch (analysis/contract.py names them)."""
    import json

    tags = tracking.base_tags(study.name, launch_id)
    base = baseline_cell(study, cells(study))
    tags.update({C.METRIC: study.metric, C.MODE: study.mode, C.BASELINE_CELL: base.id if base else "",
                 C.SMOKE: str(study.smoke).lower(), C.PLOT: json.dumps(study.plot),
                 C.METRIC_MODES: json.dumps(study.task.metrics), C.ANALYSIS: json.dumps(study.analysis),
                 C.TASK: study.task.name, C.PAPER: str(study.raw.get("paper") or study.task.paper)[:500]})
    if study.imports:
        tags[C.IMPORTS] = json.dumps(study.imports)
    if study.nuisance:                           # where the tuning ran: the table flags overlap with the seeds
        tags[C.SEARCH_SEED] = str(study.search["seed"])
    if study.looks:
        tags[C.LOOKS] = json.dumps(study.looks)
        # Marks launches whose looks were decided with analysis.correction; older ones used Bonferroni whatever
        # it said, and the table must replay what the runner did (analysis/store.py).
        tags[C.LOOKS_CORRECTION] = study.analysis["correction"]
    return tags


def run_phases(run: Launch) -> None:
    """The search phase (nuisance axes), then the final phase or its looks; each done phase is recorded."""
    study, state = run.study, run.state
    if study.nuisance and not state.is_done("search"):
        results = run.phase("search", "search")
        from .search import best_per_cell

        state.best_nuisance = best_per_cell(results, study.search["metric"], study.search["mode"],
                                            list(study.nuisance))
        missing = [c.id for c in cells(study) if c.id not in state.best_nuisance]
        if missing:
            raise TrialsFailed(f"{study.name}: the nuisance search produced no usable trial for cells "
                               f"{', '.join(missing)} (every search trial failed or reported no "
                               f"{study.search['metric']}); see the failed search runs in MLflow experiment "
                               f"{study.experiment!r}")
        state.mark_done("search")
        run.summary["phases"]["search"] = counts(results)
        for cid, vals in state.best_nuisance.items():
            run.echo(f"best nuisance for [{cid}]: {vals}")
    if not state.is_done("final") and study.looks:
        from .looks import run_looks

        run_looks(run)
    elif not state.is_done("final"):
        trials = final_trials(study, state.best_nuisance)
        results = run.phase("final", "final", trials=trials)
        state.mark_done("final")
        run.summary["phases"]["final"] = counts(results)
    run_added(run)


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


