"""Issue 13: the runner's cheaper per-trial path keeps every fault guarantee.

Checkpoints follow time (and ASHA's rungs, and the last epoch), not epochs; a
SIGKILL between two of them resumes from the last one, bit-exactly; a driver
killed long after Tune's last experiment snapshot is resumed without rerunning
a finished trial (their runs replay); search trials overlap on 2 CPUs.  Timing
targets live in benchmarks/bench_runner.py, not here."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from sweeps.runner.phase import snapshot_period, trial_dict
from sweeps.runner.trainable import TuneReporter
from sweeps.runner.search import rung_epochs
from sweeps.language.validate import validate
from sweeps.runner.trial import LocalReporter, run_trial
from tasks import get_task
from tests.helpers import assert_started_once, local_cluster, wait_for_finished
from tests.helpers import ROOT


class _Asking(LocalReporter):
    """A local reporter that wants a checkpoint only after the given epochs; it
    writes each checkpoint to ``folder`` as the Tune reporter does (torch.save)."""

    def __init__(self, want, folder: Path, state=None):
        super().__init__(state=state, echo=lambda s: None)
        self.want, self.folder, self.saved = set(want), folder, {}

    def wants_checkpoint(self, epoch):
        return epoch in self.want

    def report(self, metrics, state=None):
        if state is not None:
            path = self.folder / f"epoch{metrics['epoch']}.pt"
            torch.save(state, path)
            self.saved[int(metrics["epoch"])] = path
        super().report(metrics, state)


def _values(history):
    return [{k: v for k, v in h.items() if k != "epoch_seconds"} for h in history]


def test_fit_checkpoints_when_asked_and_after_the_last_epoch_and_resumes_bit_exactly(tmp_path):
    cfg = get_task("toy").resolve({"train.epochs": 5, "seed": 3, "optim.lr": 0.2})
    full = LocalReporter(echo=lambda s: None)                 # no wants_checkpoint: every epoch, as before
    run_trial("toy", cfg, full)
    asked = _Asking({2}, tmp_path)
    run_trial("toy", cfg, asked)
    assert sorted(asked.saved) == [2, 5]
    assert _values(asked.history) == _values(full.history)
    state = torch.load(asked.saved[2], weights_only=False)        # what a restarted trial gets back
    resumed = _Asking(set(), tmp_path, state=state)
    run_trial("toy", cfg, resumed)
    assert [h["epoch"] for h in resumed.history] == [3, 4, 5]
    assert _values(resumed.history) == _values(full.history[2:])  # every RNG came back


def test_tune_reporter_cadence_follows_time_rungs_and_validates():
    r = TuneReporter(every_s=0.2, at_epochs=[4])
    assert not r.wants_checkpoint(1)
    assert r.wants_checkpoint(4), "a rung epoch always checkpoints"
    time.sleep(0.25)
    assert r.wants_checkpoint(2)
    r.checkpointed()
    assert not r.wants_checkpoint(3)
    assert all(TuneReporter(0).wants_checkpoint(e) for e in (1, 2, 3)), "0 = every epoch"
    for bad in (-1, "10", True, float("nan")):
        with pytest.raises(ValueError, match="every_s"):
            TuneReporter(bad)


def test_rung_epochs_are_the_ones_ashas_brackets_stop_at():
    from ray.tune.schedulers.async_hyperband import _Bracket

    for max_t, g, rf in [(4, 1, 2), (25, 1, 3), (10, 2, 3), (1, 1, 3), (100, 1, 4), (3, 5, 2), (81, 1, 3)]:
        rungs = sorted(m for m, _ in _Bracket(min(g, max_t), max_t, rf, 0)._rungs)
        assert rung_epochs(max_t, g, rf) == sorted(set(rungs) | {max_t}), (max_t, g, rf)
    for kw, name in (({"max_t": 0}, "max_t"), ({"max_t": 4, "reduction_factor": 1}, "reduction_factor"),
                     ({"max_t": 4, "grace_period": 2.5}, "grace_period")):
        with pytest.raises(ValueError, match=name):
            rung_epochs(**kw)


def test_snapshot_period_and_trial_dicts_carry_the_cadence():
    assert snapshot_period(0) == snapshot_period(40) == 1.0
    assert snapshot_period(5000) == pytest.approx(25.0)
    with pytest.raises(ValueError, match="n_trials"):
        snapshot_period(-1)
    study = validate({"name": "t", "task": "toy", "metric": {"name": "score"}, "seeds": [0],
                      "fixed": {"train.epochs": 9}, "scientific": {"model.kind": ["plain"]},
                      "nuisance": {"optim.lr": {"loguniform": [0.01, 0.1]}}, "checkpoint": {"every_s": 30},
                      "search": {"trials_per_cell": 2, "scheduler": "asha", "grace_period": 1,
                                 "reduction_factor": 3}}, "<t>")
    s = trial_dict(study, "model.kind=plain", {"seed": 0}, "search", "k")
    f = trial_dict(study, "model.kind=plain", {"seed": 0}, "final", "k")
    assert s["checkpoint_s"] == f["checkpoint_s"] == 30.0
    assert s["checkpoint_at"] == [1, 3, 9] and f["checkpoint_at"] == []
    assert validate({**study.raw, "checkpoint": {}}, "<t>").checkpoint["every_s"] == 10.0


def _checkpoint_epochs(home: Path) -> dict:
    """trial id → epochs of the checkpoints Tune kept for it (read from the state files)."""
    out = {}
    for f in home.rglob("checkpoint_*/state.pt"):
        trial_dir = f.parent.parent.name
        out.setdefault(trial_dir, set()).add(int(torch.load(f, weights_only=False)["epoch"]))
    return out


def _toy(name, **kw):
    raw = {"name": name, "task": "toy", "metric": {"name": "score"}, "seeds": [0], "max_failures": 2,
           "scientific": {"model.kind": ["plain"]}, "resources": {"cpu": 1}}
    raw.update(kw)
    return validate(raw, "<t>")


def test_sigkill_between_time_based_checkpoints_resumes_from_the_last_one(sweep_runner, tmp_path):
    """6 epochs of 1 s, checkpoint every 2.5 s: checkpoints after epochs 3 and 6. The
    trial SIGKILLed in epoch 5 restarts from epoch 3 and ends exactly like the trial
    that was not killed (same seed; fault.* changes nothing else)."""
    study = _toy("tkill", fixed={"train.epochs": 6, "train.sleep": 1.0, "fault.epoch": 5,
                                 "fault.dir": str(tmp_path / "faults")},
                 scientific={"fault.kind": ["none", "kill"]}, baseline={"fault.kind": "none"},
                 checkpoint={"every_s": 2.5})
    summary, runs = sweep_runner(study)
    assert summary["counts"] == {"trials": 2, "finished": 2, "failed": 0}
    killed, clean = (runs[runs["params.fault.kind"] == k].iloc[0] for k in ("kill", "none"))
    assert killed["tags.ablate.retries"] == "1" and killed["tags.ablate.resumed_from_epoch"] == "3"
    assert len((tmp_path / "faults" / "starts.log").read_text().splitlines()) == 3
    from mlflow.tracking import MlflowClient

    c = MlflowClient(sweep_runner.uri)
    hist = {k: {r["run_id"]: [(m.step, m.value) for m in c.get_metric_history(r["run_id"], k)]
                for r in (killed, clean)} for k in ("score", "train_loss", "epoch")}
    for k, h in hist.items():
        assert [s for s, _ in h[killed["run_id"]]] == [1, 2, 3, 4, 5, 6], k
        assert h[killed["run_id"]] == h[clean["run_id"]], f"{k} differs after the resume"
    kept = _checkpoint_epochs(tmp_path / "home")
    assert sorted(map(sorted, kept.values())) == [[3, 6], [3, 6]], kept
    # acceptance 3: a run spans its trial: its duration covers the epochs it logged
    for r in (killed, clean):
        secs = sum(m.value for m in c.get_metric_history(r["run_id"], "epoch_seconds"))
        run = c.get_run(r["run_id"]).info
        assert (run.end_time - run.start_time) / 1000 >= secs >= 6.0


def test_search_trials_overlap_and_keep_a_checkpoint_where_asha_stops_them(sweep_runner, tmp_path):
    study = _toy("tsearch", fixed={"train.epochs": 4, "train.sleep": 0.5}, seeds=[0],
                 scientific={"model.kind": ["plain"]}, nuisance={"optim.lr": {"loguniform": [0.001, 0.5]}},
                 search={"trials_per_cell": 4, "scheduler": "asha", "grace_period": 1, "reduction_factor": 2},
                 checkpoint={"every_s": 3600})
    summary, _ = sweep_runner(study)
    from analysis.store import load_runs

    search = load_runs("tsearch", sweep_runner.uri, phase="search", launch=summary["launch"])
    assert len(search) == 4 and (search["metrics.epoch"] < 4).any(), "ASHA stopped none"
    spans = sorted((r.start_time.timestamp(), r.end_time.timestamp()) for r in search.itertuples())
    assert any(b0 < a1 for (a0, a1), (b0, b1) in zip(spans, spans[1:])), f"no two search trials overlapped: {spans}"
    kept = _checkpoint_epochs(tmp_path / "home")
    for _, r in search.iterrows():
        epochs = [v for d, v in kept.items() if r["tags.ablate.trial_id"] in d]
        assert len(epochs) == 1 and max(epochs[0]) == int(r["metrics.epoch"]), (r["metrics.epoch"], epochs)


def _snapshot_statuses(home: Path, name: str) -> dict:
    """trial key → status in the newest experiment snapshot Tune wrote for the sweep's final phase."""
    files = sorted(home.rglob(f"{name}-*-final/experiment_state-*.json"), key=lambda f: f.stat().st_mtime)
    out = {}
    for entry in json.loads(files[-1].read_text())["trial_data"]:
        t = json.loads(entry[0])
        out[t["config"]["trial"]["key"]] = t["status"]
    return out


def test_driver_killed_long_after_the_last_snapshot_reruns_no_finished_trial(tmp_path):
    """Tune snapshots once an hour here, so the snapshot a resume restores predates every
    trial's end; the trials whose MLflow run ended replay their recorded result instead of
    training again (one start each in the trial start log), and none is lost or doubled."""
    from mlflow.tracking import MlflowClient

    from analysis.store import load_runs

    cluster = local_cluster(2, "rs")
    try:
        uri = f"sqlite:///{tmp_path / 'central.db'}"
        sweep = tmp_path / "s.yaml"
        sweep.write_text(yaml.safe_dump({
            "name": "stale", "task": "toy", "metric": {"name": "score"}, "seeds": list(range(4)),
            "fixed": {"train.epochs": 2, "train.sleep": 1.0, "fault.dir": str(tmp_path / "faults")},
            "scientific": {"model.kind": ["plain"]}, "max_failures": 3, "resources": {"cpu": 1}}))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ABLATE_HOME": str(tmp_path / "home"),
               "TUNE_GLOBAL_CHECKPOINT_S": "3600", "RAY_AIR_NEW_OUTPUT": "0"}
        args = [sys.executable, "-m", "sweeps.cli", "run", str(sweep), "--address", cluster.address,
                "--tracking-uri", uri, "--no-table"]
        c = MlflowClient(uri)
        c.search_experiments()             # create the store's schema before two processes use it
        with open(tmp_path / "driver.log", "w") as log:
            p = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        wait_for_finished(uri, "stale", 2, p, tmp_path / "driver.log")
        exp = c.get_experiment_by_name("stale")
        os.killpg(p.pid, signal.SIGKILL)   # no grace: right after the runs ended
        p.wait()
        finished = {r.data.tags["ablate.trial_key"] for r in c.search_runs([exp.experiment_id])
                    if r.info.status == "FINISHED" and r.data.tags.get("ablate.phase") == "final"}
        stale = _snapshot_statuses(tmp_path / "home", "stale")
        assert any(stale.get(k) != "TERMINATED" for k in finished), "the snapshot was not stale; nothing tested"
        r = subprocess.run(args + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        runs = load_runs("stale", uri, launch=None)
        assert len(runs) == 4 and runs["tags.ablate.trial_key"].is_unique, "lost or duplicated runs"
        assert set(runs["status"]) == {"FINISHED"}
        assert_started_once(tmp_path / "faults" / "starts.log", finished)
        for rid in runs["run_id"]:
            assert [m.step for m in c.get_metric_history(rid, "epoch")] == [1, 2]
    finally:
        cluster.shutdown()
