"""One phase of a launch as one Ray Tune run: build the Tuner (or restore it),
fit, and read back which trials ended and how.

The trial list of a ``final`` phase (or of one look of an adaptive design) is
an explicit ``grid_search`` over trial dicts; a ``search`` phase uses the
per-cell Optuna searcher and ASHA (sweeps/search.py).  A phase that Tune left
with unfinished trials (Ctrl-C, SIGTERM) raises LaunchInterrupted, so it is
never marked done.
"""
from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional

from .errors import LaunchInterrupted
from .expand import TrialSpec, cells
from .reporter import trainable
from .spec import Study
from .tracking import FAILURE_KEY


def tune_environment() -> None:
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")   # resumable experiment state
    # Legacy reporter: it lets us show cell/seed columns instead of the whole trial dict.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Per-epoch checkpoints of short trials trigger a harmless "snapshot too often" warning.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # MLflow is the record of every result; Tune's own JSON/CSV/TensorBoard copies
    # only add per-result I/O (set the variable to 0 to get them back).
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    if os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] == "1":
        _mute_missing_result_json()
    _one_line_trial_errors()


def trial_dict(study: Study, cell_id: str, params: Dict[str, Any], phase: str, key: str,
               look: Optional[int] = None) -> Dict[str, Any]:
    order = [c.id for c in cells(study)]
    res = study.resources
    extra = {} if look is None else {"look": look}
    return {**extra, "task": study.task.name, "params": params, "cell": cell_id, "phase": phase, "key": key,
            "workers": res["workers"], "cpu": res["cpu"], "gpu": res["gpu"],
            "cell_index": order.index(cell_id) if cell_id in order else -1,
            "metric": study.search["metric"] if phase == "search" else study.metric,
            "mode": study.search["mode"] if phase == "search" else study.mode}


def counts(results: List[Dict[str, Any]]) -> Dict[str, int]:
    return {"trials": len(results), "finished": sum(not r["failed"] for r in results),
            "failed": sum(bool(r["failed"]) for r in results)}


def run_phase(study: Study, phase: str, state: Dict[str, Any], storage: Any, callback, resume: bool,
              echo, verbose: int, trials: Optional[List[TrialSpec]] = None,
              look: Optional[int] = None) -> List[Dict[str, Any]]:
    """Run one phase; returns one dict per trial (cell, params, failed, metric, epochs).

    ``phase``: "search", "final", or "look<k>" (k-th look of an adaptive design);
    ``trials``: the TrialSpecs of a non-search phase; ``look``: tagged on its runs."""
    from ray import tune
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, TuneConfig, Tuner

    name = f"{study.name}-{state['launch']}-{phase}"
    path = f"{storage}/{name}"
    res = study.resources
    if res["workers"] > 1:
        # The trial itself only coordinates; its TorchTrainer reserves the workers
        # (Train V2 inside Tune: the two must not both hold the workers' CPUs).
        fn = tune.with_resources(trainable, tune.PlacementGroupFactory([{"CPU": 0.01}]))
    else:
        fn = tune.with_resources(trainable, {"cpu": res["cpu"], "gpu": res["gpu"]})
    if resume and Tuner.can_restore(str(path)):
        echo(f"restoring Tune run {path}")
        tuner = Tuner.restore(str(path), trainable=fn, resume_unfinished=True, resume_errored=True)
    else:
        reporter = tune.CLIReporter(
            parameter_columns={"trial/cell": "cell", "trial/params/seed": "seed"},
            metric_columns={"epoch": "epoch", study.metric: study.metric}, max_report_frequency=15,
            sort_by_metric=False, max_column_length=60)
        run_config = RunConfig(
            name=name, storage_path=str(storage), callbacks=list(callback) if isinstance(callback, (list, tuple)) else [callback], verbose=verbose,
            progress_reporter=reporter,
            failure_config=FailureConfig(max_failures=study.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1))
        if phase == "search":
            tuner = _search_tuner(study, fn, run_config)
        else:
            space = {"trial": tune.grid_search([trial_dict(study, t.cell.id, t.config, "final", t.key, look=look)
                                                for t in trials])}
            tuner = Tuner(fn, param_space=space, run_config=run_config,
                          tune_config=TuneConfig(max_concurrent_trials=study.max_concurrent or None,
                                                 reuse_actors=True))
    grid, interrupted = _fit_noting_ctrl_c(tuner)
    # Tune returns normally when interrupted and reports the stopped trials as
    # TERMINATED; a final trial is over only if it errored, reported its own
    # failure or reached its last epoch ("done" alone is not enough: the result
    # carrying it may miss Tune's last snapshot).  In the search phase ASHA's
    # early stops are legitimate ends, so there only the signal counts.
    def over(r) -> bool:
        m, spec = r.metrics or {}, (r.config or {}).get("trial") or {}
        epochs = spec.get("params", {}).get("train.epochs")
        return (r.error is not None or FAILURE_KEY in m or bool(m.get("done"))
                or (epochs is not None and int(m.get("epoch", 0) or 0) >= int(epochs)))

    left = 0 if phase == "search" else max(sum(not over(r) for r in grid), len(trials) - len(grid))
    if interrupted or left > 0:
        raise LaunchInterrupted(
            f"{study.name}: {phase} phase interrupted"
            + (f" with {left} of {len(grid)} trials not finished" if left else "")
            + f" (launch {state['launch']}); finished trials are kept: rerun the same command with --resume "
              f"to run the rest")
    out = []
    for r in grid:
        if not r.config or "trial" not in r.config:
            continue                      # a trial that never started (e.g. the sweep was interrupted)
        spec = r.config["trial"]
        last = r.metrics or {}
        failed = r.error is not None or FAILURE_KEY in last
        out.append({"cell": spec["cell"], "params": spec["params"], "failed": failed,
                    "metric": None if failed else last.get(spec["metric"]),
                    "epochs": int(last.get("epoch", 0) or 0)})
    return out


class _DropMissingResultJson(logging.Filter):
    """Drops Tune's end-of-run "Failed to fetch metrics ... result.json" warning.

    The files are missing because we switched Tune's file loggers off (MLflow
    holds every result); the warning then lists every trial of a healthy sweep
    as a failure.  Other warnings of that logger still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("Failed to fetch metrics" in msg and "result.json" in msg)


def _mute_missing_result_json() -> None:
    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    if not any(isinstance(f, _DropMissingResultJson) for f in log.filters):
        log.addFilter(_DropMissingResultJson())


class _OneLineTrialErrors(logging.Filter):
    """Tune logs every failed trial attempt with a full traceback of Ray's
    internals ("Trial task failed for trial X"), even when the retry then
    succeeds.  One line is what a user can act on; the trial's own error text is
    kept in its MLflow run (``ablate.failure_reason``) when it finally fails."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and "Trial task failed" in str(record.msg):
            err = record.exc_info[1]
            err = getattr(err, "cause", None) or err        # RayTaskError wraps the trial's own exception
            text = " ".join(str(err).split())
            first = (text[:240] + "…") if len(text) > 240 else text
            record.msg = f"{record.getMessage()}: {type(err).__name__}: {first} (retried from its last " \
                         f"checkpoint while max_failures allows)"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


def _one_line_trial_errors() -> None:
    log = logging.getLogger("ray.tune.execution.tune_controller")
    if not any(isinstance(f, _OneLineTrialErrors) for f in log.filters):
        log.addFilter(_OneLineTrialErrors())


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
        scheduler = CellwiseASHA(study.search["metric"], study.search["mode"],
                                 max_t=int(study.fixed.get("train.epochs") or study.task.params["train.epochs"].default),
                                 grace_period=study.search["grace_period"],
                                 reduction_factor=study.search["reduction_factor"])
    return Tuner(fn, run_config=run_config,
                 tune_config=TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=tpc * len(base),
                                        max_concurrent_trials=study.max_concurrent or None, reuse_actors=True))
