"""What runs inside a Ray Tune trial: the function trainable, the reporter it
hands to the task (``ray.tune.report`` + a torch checkpoint, restore from
``ray.tune.get_checkpoint()``), and the data-parallel path (``resources.workers
> 1``: a TorchTrainer inside the Tune trial).

Checkpoint cadence (issue 13): a checkpoint is written, persisted and
registered with Tune after ``checkpoint.every_s`` seconds of training (0:
every epoch), at every epoch where ASHA may stop the trial (its rungs,
grace_period × reduction_factor^k, known before the trial starts) and always
after the last epoch (tasks/common.py ``fit``).  A SIGKILL therefore loses at
most the epochs since the last checkpoint: ``every_s`` plus one epoch.

Errors that will not go away (issue 19): an exception raised while the trial
builds its data or model, before training starts (the user's import error, a
constructor's TypeError / ValueError / KeyError ...), ends the trial FAILED at
once (``ablate.failure_kind=setup``) with the user's frames as the reason,
instead of being retried ``max_failures`` times like a crashed worker; after
training started every exception is retried as before.  The imports of the
sweep file (sweeps/language/imports.py) are imported first, on every worker.

Replay (``--resume``): Tune's experiment snapshot is taken every few seconds,
so a trial that ended after the last snapshot comes back as unfinished.  Its
MLflow run, written synchronously, says it ended (FINISHED, or FAILED by a
divergence; a trial that errored is retried, as ``resume_errored`` intends);
run_phase (sweeps/runner/phase.py) passes those outcomes here, and such a trial reports its recorded
result once instead of training again, so a resume reruns no finished trial
whatever the snapshot's age.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time
import uuid
from typing import Any, Dict, Iterable, Optional

# Keys the trainable adds to a Tune result for the driver's tracker (sweeps/runner/tracker.py); never metrics.
INFO_KEY = "ablate_info"           # dict of trial annotations inside a result
FAILURE_KEY = "ablate_failure"     # reason string when a trial diverged or could not be set up
FAILURE_KIND_KEY = "ablate_failure_kind"   # analysis.contract FAILURE_KINDS (diverged when absent)
# Raised while a trial builds its data or model, these are bugs or bad settings: a retry fails the same way.
SETUP_ERRORS = (ImportError, SyntaxError, TypeError, ValueError, KeyError, IndexError, AttributeError, NameError,
                AssertionError, NotImplementedError, LookupError, FileNotFoundError)
REPLAY_KEY = "ablate_replayed"     # marks a result that repeats an ended run's recorded outcome
TIME_KEY = "ablate_time"           # the worker's wall-clock time of a report (s); Tune's "timestamp" is whole seconds
RESUMED_KEY = "ablate_resumed_from"   # epoch of the checkpoint a retried or resumed attempt started from


_NODE_COMMIT: Optional[str] = None


def node_commit() -> str:
    """The git commit of the checkout this process runs (its node's copy of the project, with its
    .git as cluster.yaml syncs it); computed once per process."""
    global _NODE_COMMIT
    if _NODE_COMMIT is None:
        from .tracking import git_commit

        _NODE_COMMIT = git_commit()
    return _NODE_COMMIT


def check_gpu(spec: Dict[str, Any]) -> None:
    """A trial that asked for a GPU trains on one (issue 23): with ``train.device: auto`` torch would
    fall back to CPU without a word on a node whose torch build or driver cannot use its GPU.
    ``train.device: cpu`` runs on CPU on purpose (e.g. Ray's fake GPU nodes)."""
    if float(spec.get("gpu", 0) or 0) <= 0 or spec["params"].get("train.device", "auto") == "cpu":
        return
    import socket

    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(
            f"resources.gpu={float(spec['gpu']):g} but torch {torch.__version__} (CUDA {torch.version.cuda}) sees no "
            f"CUDA device on {socket.gethostname()} (CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')}): "
            f"a GPU trial does not fall back to CPU; install a torch build this node's driver runs, or set "
            f"train.device=cpu to run on CPU on purpose")


def same_params(params: Dict[str, Any], recorded: Dict[str, str]) -> bool:
    """Whether a trial's params are the ones an MLflow run recorded (MLflow keeps strings)."""
    return {k: str(v) for k, v in params.items()} == dict(recorded)


class TuneReporter:
    """Reporter handed to tasks inside a Tune trial: ``ray.tune.report`` every
    epoch, with a torch checkpoint whenever ``fit`` hands it one (see the module
    docstring for when), restore from ``ray.tune.get_checkpoint()``.

    Args:
        every_s: seconds of training between checkpoints; 0 = every epoch (default 0.0).
        at_epochs: epochs that always checkpoint, e.g. ASHA's rungs (default ()).
    """

    def __init__(self, every_s: float = 0.0, at_epochs: Iterable[int] = ()):
        if not isinstance(every_s, (int, float)) or isinstance(every_s, bool) or not every_s >= 0:
            raise ValueError(f"every_s must be a number of seconds >= 0 (0 = every epoch), got {every_s!r}")
        self.every_s, self.at_epochs = float(every_s), frozenset(int(e) for e in at_epochs)
        self.info: Dict[str, Any] = {}
        self._sent_info: Optional[Dict[str, Any]] = None
        self._resumed_from: Optional[int] = None
        self._since = time.monotonic()     # training's start (see restore), then the last checkpoint
        self.training_started = False      # set by restore() / the first report: setup is over

    def wants_checkpoint(self, epoch: int) -> bool:
        """Whether the report after ``epoch`` (1-based) should carry a checkpoint."""
        return (self.every_s == 0 or epoch in self.at_epochs
                or time.monotonic() - self._since >= self.every_s)

    def report(self, metrics: Dict[str, float], state: Optional[Dict[str, Any]] = None) -> None:
        import torch
        from ray import tune

        self.training_started = True
        out = {**metrics, TIME_KEY: time.time()}
        if self._sent_info != self.info:           # the first report, and whenever an annotation was added
            out[INFO_KEY] = dict(self.info)
            if self._sent_info is None and self._resumed_from is not None:
                out[RESUMED_KEY] = self._resumed_from
            self._sent_info = dict(self.info)
        if state is None:
            tune.report(out)
            return
        with tempfile.TemporaryDirectory() as d:
            torch.save(state, os.path.join(d, "state.pt"))
            tune.report(out, checkpoint=tune.Checkpoint.from_directory(d))
        self.checkpointed()

    def checkpointed(self) -> None:
        """A checkpoint was just written: the next one is due ``every_s`` from now."""
        self._since = time.monotonic()

    def restore(self) -> Optional[Dict[str, Any]]:
        """The checkpoint's state, or None.  ``fit`` calls this right before its
        first epoch, so the checkpoint clock starts with training: the set-up
        (imports, data) is redone after a crash whatever was saved."""
        import torch
        from ray import tune

        self.training_started = True
        state, ck = None, tune.get_checkpoint()
        if ck is not None:
            with ck.as_directory() as d:
                state = torch.load(os.path.join(d, "state.pt"), weights_only=False, map_location="cpu")
            self._resumed_from = int(state.get("epoch", 0))
        self.checkpointed()
        return state

    def annotate(self, **info: Any) -> None:
        import ray

        self.info.update(info)
        self.info.setdefault("node_id", ray.get_runtime_context().get_node_id())
        self.info.setdefault("hostname", __import__("socket").gethostname())
        self.info.setdefault("node_git_commit", node_commit())


def trainable(config: Dict[str, Any], replay: Optional[Dict[str, Dict[str, Any]]] = None) -> None:
    """The Tune function trainable: one trial = one ``run_trial`` call (or, with
    ``resources.workers > 1``, one data-parallel TorchTrainer run).

    ``replay``: trial key → recorded outcome of runs that already ended (only on
    ``--resume``, via ``tune.with_parameters``); such a trial reports it and returns."""
    from ray import tune

    from tasks.reporting import DivergedError

    from ..language.imports import ensure_imported
    from .trial import run_trial

    spec = config["trial"]
    rec = (replay or {}).get(spec["key"])
    if rec is not None and same_params(spec["params"], rec["params"]):
        tune.report(_replayed(spec, rec))
        return
    reporter = TuneReporter(spec.get("checkpoint_s", 0.0), spec.get("checkpoint_at", ()))
    bad = -math.inf if spec.get("mode", "max") == "max" else math.inf
    # the GPUs this trial holds (resources.gpu per worker x workers): analysis/costs.py's GPU-seconds (issue 24)
    reporter.info["gpus"] = float(spec.get("gpu", 0) or 0) * int(spec.get("workers", 1) or 1)
    reporter.cost_probe = bool(spec.get("cost_probe", True))      # tasks/cost.py FitProbe: the cell's first seed only
    try:
        if spec.get("imports"):                    # where this worker found the sweep file's own code
            reporter.info["code_from"] = json.dumps(ensure_imported(spec["imports"]))
        if int(spec.get("workers", 1)) > 1:
            _data_parallel(spec, reporter)
        else:
            check_gpu(spec)
            run_trial(spec["task"], spec["params"], reporter)
    except DivergedError as e:
        # End the trial as failed without Tune's retries: a seeded divergence
        # would only diverge again.  The callback marks the MLflow run FAILED.
        tune.report({FAILURE_KEY: str(e), spec["metric"]: bad, INFO_KEY: dict(reporter.info)})
    except SETUP_ERRORS as e:
        if reporter.training_started:
            raise                                  # during training: retried under max_failures
        tune.report({FAILURE_KEY: setup_failure(e), FAILURE_KIND_KEY: "setup", spec["metric"]: bad,
                     INFO_KEY: dict(reporter.info)})


def setup_failure(e: BaseException) -> str:
    """The reason of a trial that could not be set up: the exception and the frames of the code that raised it
    (the task's, the components', the user's), not Ray's or the runner's, innermost last."""
    import traceback
    from pathlib import Path

    here = Path(__file__).resolve().parents[1]             # sweeps/: the runner's and the language's frames
    skip = ("<frozen", "site-packages", os.sep + "lib" + os.sep + "python", str(here))
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not any(s in f.filename for s in skip)]
    where = "".join(f"\n  {f.filename}:{f.lineno} in {f.name}" + (f": {f.line}" if f.line else "")
                    for f in frames[-6:])
    return (f"{type(e).__name__}: {str(e).strip()[:2000]} (raised while the trial set up its data or model; not "
            f"retried: fix the code or the setting, then rerun){where}")


def _replayed(spec: Dict[str, Any], rec: Dict[str, Any]) -> Dict[str, Any]:
    out = {**rec["metrics"], REPLAY_KEY: True}
    if "epoch" in out:
        out["epoch"] = int(out["epoch"])
    if rec.get("failure") is not None:
        out[FAILURE_KEY] = rec["failure"]
        out[FAILURE_KIND_KEY] = rec.get("kind") or "diverged"
        out[spec["metric"]] = -math.inf if spec.get("mode", "max") == "max" else math.inf
    return out


class _WorkerReporter:
    """Reporter inside a Ray Train worker: every rank joins ray.train.report (a
    collective in Train V2); rank 0 also relays metrics + checkpoint state to the
    Tune trial through a Ray queue, so the Tune side keeps per-epoch reporting,
    checkpoints (and so retries/resume) and ASHA, exactly as for one worker.
    Rank 0 keeps the trial's checkpoint cadence (the other ranks' state would be
    dropped, so they build none).

    Args:
        queue: the Ray queue to the Tune trial.
        state: the checkpoint state to resume from, or None.
        every_s, at_epochs: the cadence, as for TuneReporter (default 0.0, ()).
    """

    def __init__(self, queue, state, every_s: float = 0.0, at_epochs: Iterable[int] = ()):
        self.queue, self.state, self.info = queue, state, {}
        self._cadence = TuneReporter(every_s, at_epochs)

    def wants_checkpoint(self, epoch: int) -> bool:
        import ray.train

        return ray.train.get_context().get_world_rank() == 0 and self._cadence.wants_checkpoint(epoch)

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
                self._cadence.checkpointed()
            self.queue.put((dict(metrics), blob, dict(self.info)))
        ray.train.report(dict(metrics))

    def restore(self):
        return self.state

    def annotate(self, **info):
        import ray

        self.info.update(info)
        self.info.setdefault("node_id", ray.get_runtime_context().get_node_id())
        self.info.setdefault("node_git_commit", node_commit())


def _worker_loop(cfg: Dict[str, Any]) -> None:
    import io

    import torch

    from ..language.imports import ensure_imported
    from .trial import run_trial

    ensure_imported(cfg.get("imports"))
    check_gpu(cfg)
    state = torch.load(io.BytesIO(cfg["state"]), weights_only=False) if cfg.get("state") else None
    run_trial(cfg["task"], cfg["params"], _WorkerReporter(cfg["queue"], state, cfg.get("checkpoint_s", 0.0),
                                                          cfg.get("checkpoint_at", ())))


def _data_parallel(spec: Dict[str, Any], reporter: "TuneReporter") -> None:
    """Run the task on ``workers`` Ray Train workers (gloo on CPU, nccl on GPU)."""
    import io
    import queue as _q
    import threading

    import torch
    from ray.train import RunConfig as TrainRunConfig
    from ray.train import ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer
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
        train_loop_config={"task": spec["task"], "params": spec["params"], "queue": q, "state": blob,
                           "imports": spec.get("imports"),
                           "checkpoint_s": reporter.every_s, "checkpoint_at": sorted(reporter.at_epochs), "gpu": gpu},
        scaling_config=ScalingConfig(num_workers=n, use_gpu=gpu > 0,
                                     resources_per_worker={"CPU": cpu * 0.99, **({"GPU": gpu} if gpu else {})}),
        # Ray Train picks nccl whenever the workers hold GPUs; a trial that trains on CPU on purpose
        # (train.device: cpu, e.g. on fake GPU nodes) needs gloo.
        torch_config=TorchConfig(backend="gloo" if spec["params"].get("train.device") == "cpu" or not gpu else "nccl"),
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
