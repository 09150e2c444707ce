"""The Tune callback that mirrors trials into MLflow (see sweeps/tracking.py
for why it is not MLflowLoggerCallback).  Module-level so that Tune can pickle
it into its experiment state and ``Tuner.restore`` brings it back."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from mlflow.entities import Metric, Param, RunTag
from ray.tune import Callback

from .tracking import FAILURE_KEY, INFO_KEY, _metrics_of, client, find_run, git_commit


class MLflowTracker(Callback):
    def __init__(self, uri: str, experiment_id: str, base_tags: Dict[str, str], log_checkpoints: bool = False):
        self.uri, self.experiment_id, self.base_tags = uri, experiment_id, base_tags
        self.log_checkpoints = log_checkpoints
        self._c = None
        self._runs: Dict[str, str] = {}      # trial key -> run id
        self._step: Dict[str, int] = {}      # trial key -> last logged epoch
        self._tagged: set = set()
        # A fresh launch creates every run; only a callback restored from Tune's
        # experiment state (see __setstate__) must look runs up by tag first.
        self._restored = False
        self._resumed_commit = ""

    def __getstate__(self):
        # Only the configuration travels into Tune's experiment state; run ids are
        # re-discovered from MLflow tags after a restore (the source of truth).
        return {"uri": self.uri, "experiment_id": self.experiment_id, "base_tags": self.base_tags,
                "log_checkpoints": self.log_checkpoints}

    def __setstate__(self, st):
        self.__init__(st["uri"], st["experiment_id"], st["base_tags"], st.get("log_checkpoints", False))
        self._restored = True
        # A resume may run newer code than the launch: runs created from here on
        # carry the commit they run, and runs continued here say so, so no trial
        # claims a commit it did not (entirely) run.
        launched, now = self.base_tags.get("ablate.git_commit"), git_commit()
        if launched and now != launched:
            self.base_tags = {**self.base_tags, "ablate.git_commit": now, "ablate.launch_git_commit": launched}
        self._resumed_commit = now

    @property
    def c(self):
        if self._c is None:
            self._c = client(self.uri)
        return self._c

    @staticmethod
    def key(trial) -> str:
        return trial.config["trial"]["key"]

    def run_id(self, trial) -> str:
        k = self.key(trial)
        if k in self._runs:
            return self._runs[k]
        spec = trial.config["trial"]
        existing = find_run(self.c, self.experiment_id, k) if self._restored else None
        if existing is not None:
            rid = existing.info.run_id
            # "epoch" comes with every result; the study metric may not (a task can
            # report it every few epochs, e.g. physics' eval.rollout_every)
            steps = [m.step for key in ("epoch", spec["metric"]) for m in self.c.get_metric_history(rid, key)]
            self._step[k] = max(steps, default=0)
            if existing.info.status != "RUNNING":
                self.c.update_run(rid, status="RUNNING")
            if existing.data.tags.get("ablate.git_commit") != self._resumed_commit:
                self.c.set_tag(rid, "ablate.resumed_git_commit", self._resumed_commit)
        else:
            seed = spec["params"].get("seed")
            tags = {**self.base_tags, "ablate.trial_key": k, "ablate.cell": spec["cell"],
                    "ablate.phase": spec["phase"], "ablate.seed": str(seed), "ablate.task": spec["task"],
                    "ablate.trial_id": trial.trial_id,
                    "ablate.cell_index": str(spec.get("cell_index", -1))}
            run = self.c.create_run(self.experiment_id, tags=tags,
                                    run_name=f"{spec['phase']}:{spec['cell']}:seed={seed}")
            rid = run.info.run_id
            params = [Param(p, str(v)) for p, v in sorted(spec["params"].items())]
            for i in range(0, len(params), 100):
                self.c.log_batch(rid, params=params[i:i + 100])
            self._step[k] = 0
        self._runs[k] = rid
        return rid

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run_id(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        k, rid = self.key(trial), self.run_id(trial)
        tags = []
        if k not in self._tagged and isinstance(result.get(INFO_KEY), dict):
            tags = [RunTag(f"ablate.{n}", str(v)) for n, v in result[INFO_KEY].items()]
            self._tagged.add(k)
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        if FAILURE_KEY in result or step <= self._step.get(k, 0):
            if tags:
                self.c.log_batch(rid, tags=tags)
            return                                   # a failure marker, or an epoch logged before a restore
        ts = int(result.get("timestamp", 0) * 1000)
        metrics = [Metric(n, v, ts, step) for n, v in _metrics_of(result).items()]
        self.c.log_batch(rid, metrics=metrics, tags=tags)
        self._step[k] = step

    def on_trial_recover(self, iteration, trials, trial, **info):
        rid = self.run_id(trial)
        n = int(self.c.get_run(rid).data.tags.get("ablate.retries", "0")) + 1
        self.c.set_tag(rid, "ablate.retries", str(n))

    def on_trial_complete(self, iteration, trials, trial, **info):
        rid = self.run_id(trial)
        last = trial.last_result or {}
        if FAILURE_KEY in last:
            self.c.set_tag(rid, "ablate.failure_reason", str(last[FAILURE_KEY])[:4000])
            self.c.set_terminated(rid, status="FAILED")
            return
        epochs = int(trial.config["trial"]["params"].get("train.epochs", 0) or 0)
        if epochs and int(last.get("epoch", 0)) < epochs:
            self.c.set_tag(rid, "ablate.stopped_early", "true")
        if self.log_checkpoints and trial.checkpoint is not None:
            # The final checkpoint goes to the run's artifact store (a tracking
            # server's, when there is one), wherever Ray's storage is.
            with trial.checkpoint.as_directory() as d:
                self.c.log_artifacts(rid, d, artifact_path="checkpoint")
        self.c.set_terminated(rid, status="FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        rid = self.run_id(trial)
        reason = "trial errored"
        try:
            if trial.error_file and Path(trial.error_file).exists():
                reason = Path(trial.error_file).read_text()[-4000:]
        except Exception:  # noqa: BLE001 - remote storage paths may not be readable here
            pass
        self.c.set_tag(rid, "ablate.failure_reason", reason)
        self.c.set_terminated(rid, status="FAILED")
