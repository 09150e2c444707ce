"""What runs inside a Ray Tune trial: the function trainable, the reporter it
hands to the task (``ray.tune.report`` + a torch checkpoint, restore from
``ray.tune.get_checkpoint()``), and the data-parallel path (``resources.workers
> 1``: a TorchTrainer inside the Tune trial)."""
from __future__ import annotations

import math
import os
import tempfile
import uuid
from typing import Any, Dict, Optional

from .tracking import FAILURE_KEY, INFO_KEY


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
