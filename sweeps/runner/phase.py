"""One phase of a launch as one Ray Tune run: build the Tuner (or restore it),
fit, and read back which trials ended and how.

The trial list of a ``final`` phase (or of one look of an adaptive design) is
an explicit ``grid_search`` over trial dicts; a ``search`` phase uses the
per-cell Optuna searcher and ASHA (sweeps/runner/search.py).  A phase that Tune left
with unfinished trials (Ctrl-C, SIGTERM) raises LaunchInterrupted, so it is
never marked done.

What a phase costs per trial and what it keeps across faults (issue 13,
docs/reliability.md, docs/benchmarks_notes.md):

* Trial checkpoints follow ``checkpoint.every_s`` (sweeps/runner/trainable.py), and
  Tune keeps the last two (``num_to_keep=2``).  With one, Tune forces a full
  experiment snapshot after every checkpoint of every trial, so that its state
  never names a deleted checkpoint; with two it forces one only after a trial's
  second checkpoint since the last snapshot (the older one is still on disk).
* The periodic experiment snapshot (``TUNE_GLOBAL_CHECKPOINT_S``, when the
  user has not set it) is taken every max(1 s, 5 ms × trials): a snapshot
  costs about 250 µs per trial it lists (130 ms at 500 trials, profiled), so
  this keeps it near 5 % of the driver's time in a phase of any size.
  ``--resume`` needs no fresher one to rerun no finished trial: trials whose
  MLflow run ended replay their recorded result (sweeps/runner/trainable.py
  ``trainable``).
* Grid phases hand Tune a grid of indices and pick each trial's dict with
  ``tune.sample_from`` (``_Pick``): Tune's grid expansion is O(n²) in the size
  of the grid's values.
* Pending trials: Tune stages one trial at a time for a custom searcher
  (``TUNE_MAX_PENDING_TRIALS_PG`` = 1), so the search phase stages as many as
  the cluster fits; a grid phase already stages up to 200.
"""
from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Dict, List, Optional

from ..errors import LaunchInterrupted
from ..language.expand import TrialSpec, cells
from ..language.study import Study
from .state import Launch
from .trainable import FAILURE_KEY, trainable
from .tune_logs import quiet_tune_logs

SNAPSHOT_MIN_S = 1.0          # seconds between Tune's experiment snapshots, at least ...
SNAPSHOT_S_PER_TRIAL = 5e-3   # ... and this per trial of the phase (≈ 20 × a snapshot's cost per trial)
KEEP_CHECKPOINTS = 2


def tune_environment() -> None:
    # Legacy reporter: it lets us show cell/seed columns instead of the whole trial dict.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Short trials checkpoint often; Tune's "snapshot too often" warning is expected then.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # MLflow is the record of every result; Tune's own JSON/CSV/TensorBoard copies
    # only add per-result I/O (set the variable to 0 to get them back).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    quiet_tune_logs(missing_result_json=os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1")


def snapshot_period(n_trials: int) -> float:
    """Seconds between Tune's experiment snapshots for a phase of ``n_trials`` trials."""
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 0:
        raise ValueError(f"n_trials must be an integer >= 0, got {n_trials!r}")
    return max(SNAPSHOT_MIN_S, SNAPSHOT_S_PER_TRIAL * n_trials)


@contextlib.contextmanager
def _tune_settings(**values: str):
    """Set Tune's environment settings for one fit; a value the user set wins."""
    mine = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(mine)
    try:
        yield
    finally:
        for k in mine:
            os.environ.pop(k, None)


def trial_dict(study: Study, cell_id: str, params: Dict[str, Any], phase: str, key: str,
               look: Optional[int] = None) -> Dict[str, Any]:
    order = [c.id for c in cells(study)]
    res = study.resources
    extra = {} if look is None else {"look": look}
    if study.imports:                       # the sweep file's own code, imported by the trainable on the worker
        extra["imports"] = study.imports
    return {**extra, "task": study.task.name, "params": params, "cell": cell_id, "phase": phase, "key": key,
            "workers": res["workers"], "cpu": res["cpu"], "gpu": res["gpu"],
            "cell_index": order.index(cell_id) if cell_id in order else -1,
            "metric": study.search["metric"] if phase == "search" else study.metric,
            "mode": study.search["mode"] if phase == "search" else study.mode,
            "checkpoint_s": float(study.checkpoint["every_s"]),
            "checkpoint_at": _rungs(study, params) if phase == "search" else [],
            # the cost probe runs once per distinct configuration: the seed changes no FLOPs, memory or latency,
            # and the probe costs more than 2 % of a smoke trial (docs/benchmarks_notes.md; tasks/cost.py)
            "cost_probe": phase != "final" or not study.seeds or params.get("seed") == list(study.seeds)[0]}


def _rungs(study: Study, params: Dict[str, Any]) -> List[int]:
    """ASHA's rung epochs, where it may stop a search trial: each gets a checkpoint."""
    if study.search["scheduler"] != "asha":
        return []
    from .search import rung_epochs

    return rung_epochs(_max_epochs(study), study.search["grace_period"], study.search["reduction_factor"])


def _max_epochs(study: Study) -> int:
    return int(study.fixed.get("train.epochs") or study.task.params["train.epochs"].default)


class _Pick:
    """``tune.sample_from`` of a grid phase: the trial dict at the grid's ``index``.

    Why not ``grid_search`` over the trial dicts themselves: Tune's variant
    generator deep-copies the whole unresolved spec once per trial it generates
    (ray.tune.search.variant_generator._grid_search_generator), and that spec
    would hold every trial dict: O(n²) copying, 1.5 s of driver time at 500
    trials and growing with the square (issue 13).  A grid over indices is cheap
    to copy; this callable, which holds the list, copies as itself (the dicts
    are never modified), and each trial still gets its own copy of its dict.

    Args:
        specs: the phase's trial dicts, in grid order.
    """

    def __init__(self, specs: List[Dict[str, Any]]):
        self.specs = specs

    def __call__(self, config) -> Dict[str, Any]:
        return self.specs[config["index"]]

    def __deepcopy__(self, memo):
        return self


def _trainable(res: Dict[str, Any], replay: Dict[str, Dict[str, Any]]):
    from ray import tune

    fn = tune.with_parameters(trainable, replay=replay) if replay else trainable
    if res["workers"] > 1:
        # The trial itself only coordinates; its TorchTrainer reserves the workers
        # (Train V2 inside Tune: the two must not both hold the workers' CPUs).
        return tune.with_resources(fn, tune.PlacementGroupFactory([{"CPU": 0.01}]))
    return tune.with_resources(fn, {"cpu": res["cpu"], "gpu": res["gpu"]})


def _replays(callbacks) -> Dict[str, Dict[str, Any]]:
    """Recorded outcomes of this launch's ended runs, from the MLflow tracker among the callbacks."""
    from .tracker import MLflowTracker

    out: Dict[str, Dict[str, Any]] = {}
    for cb in callbacks:
        if isinstance(cb, MLflowTracker):
            out.update(cb.replays())
    return out


def _trials_that_fit(res: Dict[str, Any]) -> int:
    """How many trials the cluster holds at once now (at least 1): Tune's pending-trial limit."""
    import ray

    have = ray.cluster_resources()
    cpu = res["cpu"] * (0.99 * res["workers"] + 0.01 if res["workers"] > 1 else 1)
    n = have.get("CPU", 0) / cpu if cpu > 0 else math.inf
    if res["gpu"]:
        n = min(n, have.get("GPU", 0) / (res["gpu"] * res["workers"]))
    return max(1, int(n)) if math.isfinite(n) else 1


def counts(results: List[Dict[str, Any]]) -> Dict[str, int]:
    return {"trials": len(results), "finished": sum(not r["failed"] for r in results),
            "failed": sum(bool(r["failed"]) for r in results)}


def run_phase(run: Launch, phase: str, callbacks: List[Any], trials: Optional[List[TrialSpec]] = None,
              look: Optional[int] = None) -> List[Dict[str, Any]]:
    """Run one phase of the launch ``run`` as one Ray Tune run; returns one dict per trial (cell, params, failed,
    metric, epochs).

    ``phase``: "search", "final", or "look<k>" (k-th look of an adaptive design);
    ``callbacks``: the Tune callbacks (tracker, progress); ``trials``: the TrialSpecs of a non-search phase;
    ``look``: tagged on its runs."""
    from ray.tune import Tuner

    study, storage, state = run.study, run.storage, run.state
    name = f"{study.name}-{state.launch}-{phase}"
    path = f"{storage}/{name}"
    res = study.resources
    fn = _trainable(res, _replays(callbacks) if run.resume else {})
    if run.resume and Tuner.can_restore(str(path)):
        run.echo(f"restoring Tune run {path}")
        tuner = Tuner.restore(str(path), trainable=fn, resume_unfinished=True, resume_errored=True)
    else:
        tuner = _new_tuner(study, phase, name, storage, fn, callbacks, run.verbose, trials, look)
    n = study.search["trials_per_cell"] * len(cells(study)) if phase == "search" else len(trials)
    settings = {"TUNE_GLOBAL_CHECKPOINT_S": f"{snapshot_period(n):g}"}
    if phase == "search":
        settings["TUNE_MAX_PENDING_TRIALS_PG"] = str(_trials_that_fit(res))
    with _tune_settings(**settings):
        grid, interrupted = _fit_noting_ctrl_c(tuner)
    left = 0 if phase == "search" else max(sum(not _over(r) for r in grid), len(trials) - len(grid))
    if interrupted or left > 0:
        raise LaunchInterrupted(
            f"{study.name}: {phase} phase interrupted"
            + (f" with {left} of {len(grid)} trials not finished" if left else "")
            + f" (launch {state.launch}); finished trials are kept: rerun the same command with --resume "
              f"to run the rest")
    return trial_results(grid, trials)


def trial_results(grid, trials: Optional[List[TrialSpec]]) -> List[Dict[str, Any]]:
    """One dict per trial of a phase (cell, params, failed, metric, epochs, key) from Tune's results."""
    out, silent = [], 0
    for r in grid:
        if not r.config or "trial" not in r.config:
            # Tune's Result.config is read from the trial's last reported result: a trial that failed
            # before its first report has none.  It still counts, as failed; one that never started
            # (e.g. the sweep was interrupted) has no error and does not.
            silent += r.error is not None
            continue
        spec = r.config["trial"]
        last = r.metrics or {}
        failed = r.error is not None or FAILURE_KEY in last
        out.append({"cell": spec["cell"], "params": spec["params"], "failed": failed,
                    "metric": None if failed else last.get(spec["metric"]),
                    "epochs": int(last.get("epoch", 0) or 0), "key": spec.get("key")})
    return out + _failed_before_first_report(silent, trials, {r["key"] for r in out})


def _failed_before_first_report(n: int, trials: Optional[List[TrialSpec]], seen: set) -> List[Dict[str, Any]]:
    """One failed result per trial that errored before its first report (``run_phase``).  In a grid phase
    they are the specs no result names, in order (which is which does not matter: a failed result
    carries no metric); a search trial's sampled settings are lost with it, so its cell is None."""
    missing = [t for t in (trials or []) if t.key not in seen][:n]
    out = [{"cell": t.cell.id, "params": t.config, "failed": True, "metric": None, "epochs": 0, "key": t.key}
           for t in missing]
    return out + [{"cell": None, "params": {}, "failed": True, "metric": None, "epochs": 0, "key": None}
                  for _ in range(n - len(missing))]


def _over(r) -> bool:
    """Whether a final trial is over: Tune returns normally when interrupted and
    reports the stopped trials as TERMINATED, so a trial is over only if it
    errored, reported its own failure or reached its last epoch ("done" alone is
    not enough: the result carrying it may miss Tune's last snapshot).  In the
    search phase ASHA's early stops are legitimate ends, so there only the
    signal counts (run_phase does not call this)."""
    m, spec = r.metrics or {}, (r.config or {}).get("trial") or {}
    epochs = spec.get("params", {}).get("train.epochs")
    return (r.error is not None or FAILURE_KEY in m or bool(m.get("done"))
            or (epochs is not None and int(m.get("epoch", 0) or 0) >= int(epochs)))


def _new_tuner(study: Study, phase: str, name: str, storage: Any, fn, callbacks, verbose: int,
               trials: Optional[List[TrialSpec]], look: Optional[int]):
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner

    reporter = tune.CLIReporter(
        parameter_columns={"trial/cell": "cell", "trial/params/seed": "seed"},
        metric_columns={"epoch": "epoch", study.metric: study.metric}, max_report_frequency=15,
        sort_by_metric=False, max_column_length=60)
    run_config = RunConfig(
        name=name, storage_path=str(storage), callbacks=callbacks, verbose=verbose, progress_reporter=reporter,
        failure_config=FailureConfig(max_failures=study.max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=KEEP_CHECKPOINTS))
    if phase == "search":
        return _search_tuner(study, fn, run_config)
    specs = [trial_dict(study, t.cell.id, t.config, "final", t.key, look=look) for t in trials]
    space = {"index": tune.grid_search(list(range(len(specs)))), "trial": tune.sample_from(_Pick(specs))}
    return Tuner(fn, param_space=space, run_config=run_config,
                 tune_config=TuneConfig(max_concurrent_trials=study.max_concurrent or None, reuse_actors=True))


def _fit_noting_ctrl_c(tuner):
    """``tuner.fit()`` and whether Ctrl-C stopped it.  Tune swaps in its own
    SIGINT handler and, on the first signal, puts back the one it found; so a
    sentinel handler installed here is back in place exactly when Tune was
    interrupted.  Tune exposes no other trace of it."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return tuner.fit(), False

    def sentinel(sig, frame):              # a second Ctrl-C: stop at once, as by default
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGINT, sentinel)
    try:
        grid = tuner.fit()
        return grid, signal.getsignal(signal.SIGINT) is sentinel
    finally:
        signal.signal(signal.SIGINT, before)


def _search_tuner(study: Study, fn, run_config):
    from ray.tune import TuneConfig, Tuner

    from .search import CellwiseASHA, CellwiseSearcher

    base = {}
    for c in cells(study):
        params = study.task.resolve({**c.config, "seed": study.search["seed"]})
        base[c.id] = trial_dict(study, c.id, params, "search", f"{c.id}|seed={study.search['seed']}")
    tpc = study.search["trials_per_cell"]
    searcher = CellwiseSearcher(base, study.nuisance, tpc, study.search["metric"], study.search["mode"],
                                seed=study.search["seed"])
    scheduler = None
    if study.search["scheduler"] == "asha":
        scheduler = CellwiseASHA(study.search["metric"], study.search["mode"], max_t=_max_epochs(study),
                                 grace_period=study.search["grace_period"],
                                 reduction_factor=study.search["reduction_factor"])
    return Tuner(fn, run_config=run_config,
                 tune_config=TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=tpc * len(base),
                                        max_concurrent_trials=study.max_concurrent or None, reuse_actors=True))
