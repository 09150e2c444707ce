"""Issue 5: a real two-node Ray cluster on this machine (ray.cluster_utils.Cluster),
node loss, driver loss with --resume, an unreachable tracking server, and
data-parallel (TorchTrainer) trials.  Every fault is injected for real; the
assertions count MLflow runs so that nothing is lost or duplicated."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import assert_started_once, local_cluster, wait_for_finished
from tests.helpers import ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TUNE_GLOBAL_CHECKPOINT_S": "1", "RAY_AIR_NEW_OUTPUT": "0"}


def write(tmp_path, data, name="s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def toy(name, tmp_path, seeds, **fixed):
    return {"name": name, "task": "toy", "metric": {"name": "score"}, "seeds": list(seeds),
            "fixed": {"train.epochs": 3, "fault.dir": str(tmp_path / "faults"), **fixed},
            "scientific": {"model.kind": ["plain"]}, "max_failures": 3, "resources": {"cpu": 1}}


def ablate(args, tmp_path, **kw):
    return subprocess.run([sys.executable, "-m", "sweeps.cli", *args], cwd=tmp_path, env=ENV,
                          capture_output=True, text=True, **kw)


def runs_of(uri, name):
    from analysis.store import load_runs

    return load_runs(name, uri, launch=None)


@pytest.fixture
def two_nodes(tmp_path):
    """A head and a second node, each with 1 CPU, started in their own processes."""
    cluster = local_cluster(1, "rc")
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster, worker
    cluster.shutdown()


def test_unreachable_tracking_server_fails_before_any_trial(tmp_path):
    f = write(tmp_path, toy("unreach", tmp_path, [0]))
    t0 = time.perf_counter()
    r = ablate(["run", str(f), "--tracking-uri", "http://127.0.0.1:9"], tmp_path, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "http://127.0.0.1:9" in r.stderr and "cannot be reached" in r.stderr
    assert time.perf_counter() - t0 < 30
    assert not (tmp_path / "faults" / "starts.log").exists(), "a trial started"


@pytest.mark.slow      # in the default suite: tests/sweeps/test_own_code.py (two-node cluster) and test_cluster_cli.py
def test_two_node_sweep_uses_both_nodes_one_store(two_nodes, tmp_path):
    cluster, _ = two_nodes
    uri = f"sqlite:///{tmp_path / 'central.db'}"
    f = write(tmp_path, toy("two-nodes", tmp_path, range(4), **{"train.sleep": 1.0}))
    r = ablate(["run", str(f), "--address", cluster.address, "--tracking-uri", uri, "--no-table"], tmp_path,
               timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    runs = runs_of(uri, "two-nodes")
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"}
    assert runs["tags.ablate.trial_key"].is_unique
    assert runs["tags.ablate.node_id"].nunique() == 2, "trials ran on one node only"


# in the default suite: tests/cluster/test_fake_multinode.py::test_a_gpu_node_killed_mid_sweep_loses_no_run
@pytest.mark.slow
def test_node_removed_mid_sweep_trials_rescheduled(two_nodes, tmp_path):
    cluster, worker = two_nodes
    uri = f"sqlite:///{tmp_path / 'central.db'}"
    f = write(tmp_path, {**toy("node-loss", tmp_path, range(4), **{"train.sleep": 1.5, "train.epochs": 4}),
                         "checkpoint": {"every_s": 0}})    # the lost node's trials restart from checkpoints
    p = subprocess.Popen([sys.executable, "-m", "sweeps.cli", "run", str(f), "--address", cluster.address,
                          "--tracking-uri", uri, "--no-table"], cwd=tmp_path, env=ENV,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    starts = tmp_path / "faults" / "starts.log"
    deadline = time.time() + 180
    while time.time() < deadline and (not starts.exists() or len(starts.read_text().splitlines()) < 2):
        time.sleep(0.5)
    time.sleep(2.0)                       # both nodes are mid-epoch now
    cluster.remove_node(worker)
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out[-4000:]
    runs = runs_of(uri, "node-loss")
    assert len(runs) == 4, "a run was lost or duplicated"
    assert set(runs["status"]) == {"FINISHED"}
    assert (runs["metrics.epoch"] == 4).all()
    assert len(starts.read_text().splitlines()) > 4, "no trial was rescheduled after the node went away"


# in the default suite: tests/sweeps/test_looks.py, test_throughput.py, test_report_browser.py (driver SIGKILL, resume)
@pytest.mark.slow
def test_driver_killed_then_resume_finishes_only_unfinished(tmp_path):
    cluster = local_cluster(2, "rd")
    try:
        uri = f"sqlite:///{tmp_path / 'central.db'}"
        f = write(tmp_path, toy("resume", tmp_path, range(6), **{"train.sleep": 1.0}))
        args = ["run", str(f), "--address", cluster.address, "--tracking-uri", uri, "--no-table"]
        from mlflow.tracking import MlflowClient

        c = MlflowClient(uri)
        c.search_experiments()             # create the store's schema before two processes use it
        log = open(tmp_path / "driver.log", "w")
        p = subprocess.Popen([sys.executable, "-m", "sweeps.cli", *args], cwd=tmp_path, env=ENV,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_finished(uri, "resume", 2, p, tmp_path / "driver.log")
        exp = c.get_experiment_by_name("resume")
        time.sleep(1.5)                    # let Tune snapshot its experiment state
        os.killpg(p.pid, signal.SIGKILL)   # the driver dies mid-sweep
        p.wait()
        finished_before = {r.data.tags["ablate.trial_key"] for r in
                           c.search_runs([exp.experiment_id]) if r.info.status == "FINISHED"}
        assert 2 <= len(finished_before) < 6
        r = ablate(args + ["--resume"], tmp_path, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        runs = runs_of(uri, "resume")
        assert len(runs) == 6 and runs["tags.ablate.trial_key"].is_unique, "lost or duplicated runs"
        assert set(runs["status"]) == {"FINISHED"}
        assert_started_once(tmp_path / "faults" / "starts.log", finished_before)
    finally:
        cluster.shutdown()


# in the default suite: tests/sweeps/test_cli.py::test_suite_ctrl_c_resume_then_plot_table_and_report_per_study
@pytest.mark.slow
def test_ctrl_c_leaves_the_launch_resumable_and_says_so(tmp_path):
    """Ctrl-C: Tune stops and returns normally; the launch must not then pass
    for complete (exit 0, phase marked done, a summary of the finished few),
    or --resume would skip the trials that never ran."""
    cluster = local_cluster(2, "ri")
    try:
        uri = f"sqlite:///{tmp_path / 'central.db'}"
        f = write(tmp_path, toy("intr", tmp_path, range(6), **{"train.sleep": 1.0}))
        args = ["run", str(f), "--address", cluster.address, "--tracking-uri", uri, "--no-table"]
        from mlflow.tracking import MlflowClient

        c = MlflowClient(uri)
        c.search_experiments()
        p = subprocess.Popen([sys.executable, "-m", "sweeps.cli", *args], cwd=tmp_path, env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             start_new_session=True)
        deadline, done = time.time() + 300, []
        while time.time() < deadline and p.poll() is None:
            exp = c.get_experiment_by_name("intr")
            if exp:
                done = [r for r in c.search_runs([exp.experiment_id]) if r.info.status == "FINISHED"]
                if done:
                    break
            time.sleep(0.5)
        assert done, "the sweep did not get going"
        os.killpg(p.pid, signal.SIGINT)    # what Ctrl-C in the terminal sends
        out, _ = p.communicate(timeout=180)
        assert p.returncode == 130, out[-3000:]
        assert "interrupted" in out and "--resume" in out, out[-3000:]
        state = json.loads(next(tmp_path.rglob("intr.ablate.json")).read_text())
        assert state["done"] == [], state
        summaries = [r for r in c.search_runs([exp.experiment_id]) if r.data.tags.get("ablate.phase") == "summary"]
        assert not summaries, "an interrupted launch logged a summary as if complete"
        finished_before = {r.data.tags["ablate.trial_key"] for r in
                           c.search_runs([exp.experiment_id]) if r.info.status == "FINISHED"}
        assert 1 <= len(finished_before) < 6
        r = ablate(args + ["--resume"], tmp_path, timeout=600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        # Tune's file loggers are off on purpose; its "result.json not found" list of
        # every trial must not read like a failure report of a healthy sweep
        assert "Failed to fetch metrics" not in r.stdout + r.stderr
        runs = runs_of(uri, "intr")
        assert len(runs) == 6 and runs["tags.ablate.trial_key"].is_unique, "lost or duplicated runs"
        assert set(runs["status"]) == {"FINISHED"}
        assert_started_once(tmp_path / "faults" / "starts.log", finished_before)
    finally:
        cluster.shutdown()


# in the default suite: tests/cluster/test_fake_multinode.py::test_two_workers_of_a_data_parallel_trial_run_on_two_nodes
@pytest.mark.slow
def test_data_parallel_trial_two_workers(sweep_runner, tmp_path):
    sweep = write(tmp_path, {
        "name": "dp", "task": "digits", "metric": {"name": "test_acc"}, "seeds": [0],
        "fixed": {"train.epochs": 2, "data.train_limit": 256, "model.linear": "cdlinear"},
        "resources": {"cpu": 0.9, "workers": 2}, "max_failures": 0})
    summary, runs = sweep_runner(sweep, smoke=False)
    assert summary["counts"] == {"trials": 1, "finished": 1, "failed": 0}
    run = runs.iloc[0]
    assert run["tags.ablate.world_size"] == "2"
    assert run["metrics.epoch"] == 2
    # Synchronous data parallelism with equal shards and averaged gradients is the
    # same optimisation as one worker on the global batch: the accuracies agree
    # (to one test image), which a missing all-reduce or unsharded batches would break.
    from sweeps.runner.trial import LocalReporter, run_trial
    from tasks import get_task

    cfg = get_task("digits").resolve({"train.epochs": 2, "data.train_limit": 256, "model.linear": "cdlinear",
                                      "seed": 0})
    single = run_trial("digits", cfg, LocalReporter(echo=lambda s: None))
    assert abs(run["metrics.test_acc"] - single["test_acc"]) <= 100 / 360 + 1e-9
