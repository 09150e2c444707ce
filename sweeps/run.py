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
import logging
import math
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import tracking
from .expand import baseline_cell, cells, final_trials
from .spec import Study
from .errors import LaunchError, LaunchInterrupted, TrialsFailed, UsageError  # noqa: F401  (re-exported)
from .tracking import FAILURE_KEY, INFO_KEY

STATE_SUFFIX = ".ablate.json"




class TuneReporter:
    """Reporter handed to tasks inside a Tune trial: ray.tune.report with a
    torch checkpoint every epoch, restore from ray.tune.get_checkpoint()."""

    def __init__(self):
        self.info: Dict[str, Any] = {}
        self._sent_info = False

    def report(self, metrics: Dict[str, float], state: Optional[Dict[str, Any]] = None) -> None:
        import torch
        from ray import tune

        out = dict(metrics)
        if not self._sent_info:
            out[INFO_KEY] = dict(self.info)
            self._sent_info = True
        if state is None:
            tune.report(out)
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, os.path.join(d, "state.pt"))
            tune.report(out, checkpoint=tune.Checkpoint.from_directory(d))

    def restore(self) -> Optional[Dict[str, Any]]:
        import torch
        from ray import tune

        ck = tune.get_checkpoint()
        if ck is None:
            return None
        with ck.as_directory() as d:
            return torch.load(os.path.join(d, "state.pt"), weights_only=False, map_location="cpu")

    def annotate(self, **info: Any) -> None:
        import ray

        self.info.update(info)
        self.info.setdefault("node_id", ray.get_runtime_context().get_node_id())
        self.info.setdefault("hostname", __import__("socket").gethostname())


def trainable(config: Dict[str, Any]) -> None:
    """The Tune function trainable: one trial = one ``run_trial`` call (or, with
    ``resources.workers > 1``, one data-parallel TorchTrainer run)."""
    from ray import tune

    from .trial import run_trial
    from tasks.reporting import DivergedError

    spec = config["trial"]
    reporter = TuneReporter()
    try:
        if int(spec.get("workers", 1)) > 1:
            _data_parallel(spec, reporter)
        else:
            run_trial(spec["task"], spec["params"], reporter)
    except DivergedError as e:
        # End the trial as failed without Tune's retries: a seeded divergence
        # would only diverge again.  The callback marks the MLflow run FAILED.
        bad = -math.inf if spec.get("mode", "max") == "max" else math.inf
        tune.report({FAILURE_KEY: str(e), spec["metric"]: bad, INFO_KEY: dict(reporter.info)})


class _WorkerReporter:
    """Reporter inside a Ray Train worker: every rank joins ray.train.report (a
    collective in Train V2); rank 0 also relays metrics + checkpoint state to the
    Tune trial through a Ray queue, so the Tune side keeps per-epoch reporting,
    checkpoints (and so retries/resume) and ASHA, exactly as for one worker."""

    def __init__(self, queue, state):
        self.queue, self.state, self.info = queue, state, {}

    def report(self, metrics, state=None):
        import io

        import ray.train
        import torch

        if ray.train.get_context().get_world_rank() == 0:
            blob = None
            if state is not None:
                buf = io.BytesIO()
                torch.save(state, buf)
                blob = buf.getvalue()
            self.queue.put((dict(metrics), blob, dict(self.info)))
        ray.train.report(dict(metrics))

    def restore(self):
        return self.state

    def annotate(self, **info):
        import ray

        self.info.update(info)
        self.info.setdefault("node_id", ray.get_runtime_context().get_node_id())


def _worker_loop(cfg: Dict[str, Any]) -> None:
    import io

    import torch

    from .trial import run_trial

    state = torch.load(io.BytesIO(cfg["state"]), weights_only=False) if cfg.get("state") else None
    run_trial(cfg["task"], cfg["params"], _WorkerReporter(cfg["queue"], state))


def _data_parallel(spec: Dict[str, Any], reporter: "TuneReporter") -> None:
    """Run the task on ``workers`` Ray Train workers (gloo on CPU, nccl on GPU)."""
    import io
    import queue as _q
    import threading

    import torch
    from ray.train import RunConfig as TrainRunConfig
    from ray.train import ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Empty, Queue

    from tasks.reporting import DivergedError

    state, blob = reporter.restore(), None
    if state is not None:
        buf = io.BytesIO()
        torch.save(state, buf)
        blob = buf.getvalue()
    q = Queue(actor_options={"num_cpus": 0})   # inside the trial's 0.01-CPU placement group
    n, cpu, gpu = int(spec["workers"]), float(spec["cpu"]), float(spec["gpu"])
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={"task": spec["task"], "params": spec["params"], "queue": q, "state": blob},
        scaling_config=ScalingConfig(num_workers=n, use_gpu=gpu > 0,
                                     resources_per_worker={"CPU": cpu * 0.99, **({"GPU": gpu} if gpu else {})}),
        run_config=TrainRunConfig(name=f"dp-{uuid.uuid4().hex[:8]}",
                                  storage_path=os.path.join(tempfile.gettempdir(), "ablate-train")))
    outcome: Dict[str, Any] = {}
    th = threading.Thread(target=lambda: outcome.update(result=_safe(trainer.fit)), daemon=True)
    th.start()
    while th.is_alive() or not q.empty():
        try:
            metrics, blob, info = q.get(timeout=0.5)
        except (Empty, _q.Empty):
            continue
        reporter.info.update(info)
        reporter.report(metrics, torch.load(io.BytesIO(blob), weights_only=False) if blob else None)
    err = outcome.get("result")
    if isinstance(err, BaseException):
        if "DivergedError" in repr(err) or "became nan" in str(err) or "became inf" in str(err):
            raise DivergedError(str(err).splitlines()[-1][:2000])
        raise err


def _safe(fn):
    try:
        fn()
        return None
    except BaseException as e:  # noqa: BLE001 - re-raised in the trial's thread
        return e


def _state_path(storage: Path, name: str) -> Path:
    return storage / f"{name}{STATE_SUFFIX}"


def _trial_dict(study: Study, cell_id: str, params: Dict[str, Any], phase: str, key: str) -> Dict[str, Any]:
    order = [c.id for c in cells(study)]
    res = study.resources
    return {"task": study.task.name, "params": params, "cell": cell_id, "phase": phase, "key": key,
            "workers": res["workers"], "cpu": res["cpu"], "gpu": res["gpu"],
            "cell_index": order.index(cell_id) if cell_id in order else -1,
            "metric": study.search["metric"] if phase == "search" else study.metric,
            "mode": study.search["mode"] if phase == "search" else study.mode}


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
            "best_nuisance": {}, "sweep_file": study.file, "smoke": study.smoke, "suite_launch": suite_launch}


def _tune_environment() -> None:
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
    exp_id = tracking.ensure_experiment(uri, study.experiment)
    storage = storage_of(study)
    sfile = state_file(study)
    if resume:
        state = read_state(study)
        if state is None:
            raise UsageError(f"--resume: no earlier launch of {study.name!r} (no {sfile}); run without --resume")
        echo(f"resuming launch {state['launch']} of {study.name} (phases done: {state.get('done', [])})")
    else:
        state = _new_state(study, suite_launch)
    summary = {"launch": state["launch"], "experiment_id": exp_id, "uri": uri, "phases": {},
               "storage": str(storage), "complete_before": all(p in state["done"] for p in _phases(study))}
    if summary["complete_before"]:
        summary["counts"] = state.get("counts", {})
        return summary
    save = lambda: sfile.write_text(json.dumps(state, indent=1, default=str))
    save()
    _tune_environment()
    from .cluster import connect

    connect(address, verbose)
    _check_fits(study, local=address is None)
    tags = _launch_tags(study, state["launch"])
    _run_phases(study, state, save, storage, uri, exp_id, tags, resume, echo, verbose, summary)
    summary["counts"] = summary["phases"].get("final", {})
    state["counts"] = summary["counts"]
    save()
    if study.artifacts["summary"]:
        _log_summary(study, uri, exp_id, tags, echo)
    return summary


def _launch_tags(study: Study, launch_id: str) -> Dict[str, str]:
    tags = tracking.base_tags(study.name, launch_id)
    base = baseline_cell(study, cells(study))
    tags.update({"ablate.metric": study.metric, "ablate.mode": study.mode,
                 "ablate.baseline_cell": base.id if base else "", "ablate.smoke": str(study.smoke).lower(),
                 "ablate.plot": json.dumps(study.plot), "ablate.metric_modes": json.dumps(study.task.metrics)})
    return tags


def _run_phases(study, state, save, storage, uri, exp_id, tags, resume, echo, verbose, summary) -> None:
    from .callback import MLflowTracker

    tracker = lambda: MLflowTracker(uri, exp_id, tags, study.artifacts["checkpoints"])
    if study.nuisance and "search" not in state["done"]:
        results = _run_phase(study, "search", state, storage, tracker(), resume, echo, verbose)
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
        summary["phases"]["search"] = _counts(results)
        for cid, vals in state["best_nuisance"].items():
            echo(f"best nuisance for [{cid}]: {vals}")
    if "final" not in state["done"]:
        results = _run_phase(study, "final", state, storage, tracker(), resume, echo, verbose)
        state["done"].append("final")
        save()
        summary["phases"]["final"] = _counts(results)


def _log_summary(study: Study, uri: str, exp_id: str, tags: Dict[str, str], echo) -> None:
    """One ``summary`` run per launch holding the ablation table (md, LaTeX,
    CSV) and plot as artifacts, so they sit in the artifact store beside the runs."""
    from analysis.plots import plot_ablation
    from analysis.store import load_runs
    from analysis.tables import ablation_table, render

    try:
        runs = load_runs(study.experiment, uri, launch=tags["ablate.launch"])
    except LookupError:
        return
    table = ablation_table(runs)
    c = tracking.client(uri)
    run = c.create_run(exp_id, tags={**tags, "ablate.phase": "summary"}, run_name=f"summary:{tags['ablate.launch']}")
    with tempfile.TemporaryDirectory() as d:
        for fmt, ext in (("md", "md"), ("latex", "tex"), ("csv", "csv")):
            Path(d, f"table.{ext}").write_text(render(table, fmt) + "\n")
        try:
            plot_ablation(runs, table, Path(d, "plot.png"), title=study.name)
        except Exception as e:  # the trials are done and recorded; a figure must not turn that into a crash
            echo(f"warning: could not draw the summary plot ({type(e).__name__}: {e}); "
                 f"the table is logged, retry with `ablate plot {study.experiment}`")
        c.log_artifacts(run.info.run_id, d)
    c.set_terminated(run.info.run_id, "FINISHED")


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


def _counts(results: List[Dict[str, Any]]) -> Dict[str, int]:
    return {"trials": len(results), "finished": sum(not r["failed"] for r in results),
            "failed": sum(bool(r["failed"]) for r in results)}


def _run_phase(study: Study, phase: str, state: Dict[str, Any], storage: Any, callback, resume: bool,
               echo, verbose: int) -> List[Dict[str, Any]]:
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
            name=name, storage_path=str(storage), callbacks=[callback], verbose=verbose,
            progress_reporter=reporter,
            failure_config=FailureConfig(max_failures=study.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=1))
        if phase == "search":
            tuner = _search_tuner(study, fn, run_config)
        else:
            trials = final_trials(study, state.get("best_nuisance"))
            space = {"trial": tune.grid_search([_trial_dict(study, t.cell.id, t.config, "final", t.key)
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

    left = sum(not over(r) for r in grid) if phase == "final" else 0
    if phase == "final":
        left = max(left, len(final_trials(study, state.get("best_nuisance"))) - len(grid))
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
        base[c.id] = _trial_dict(study, c.id, params, "search", f"{c.id}|seed={study.search['seed']}")
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
