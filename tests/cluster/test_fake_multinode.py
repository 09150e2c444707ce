"""Autoscaling GPU clusters with Ray's fake_multinode provider: real Ray nodes (raylets) on this
machine that declare fake GPUs, launched and removed by Ray's real autoscaler, driven by `ablate run
--address auto` against a real MLflow store.

Node types: ``gpu1`` (CPU 8, GPU 1, like a g5.2xlarge) and ``gpu4`` (CPU 4, GPU 4), both from 0
workers; the head has no CPU, so every trial needs a worker. The trials run the toy task (or digits
for data parallelism) with ``train.device: cpu`` (there is no CUDA here: the GPUs are resources
only, and a trial that asked for a GPU under ``train.device: auto`` fails, as the last test shows).
Fake nodes join Ray's default port 6379 whatever the head's --port (the provider hard-codes it), so
these tests hold tests/cluster/hosts.port_6379 and each starts its own cluster in its own process
group, ended by group id (never `ray stop`).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.cluster import hosts
from tests.helpers import ABLATE, ROOT, ablate, cli_env, kill_matching, out, write_yaml

RAY = str(ROOT / ".venv" / "bin" / "ray")
IDLE_S = 6          # idle_timeout_minutes: 0.1

CONFIG = {
    "cluster_name": "fake", "max_workers": 4, "upscaling_speed": 4.0, "idle_timeout_minutes": IDLE_S / 60,
    "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                 "disable_launch_config_check": True},
    "auth": {"ssh_user": "ubuntu"},
    "available_node_types": {
        "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
        "gpu1": {"resources": {"CPU": 8, "GPU": 1, "object_store_memory": 150 * 2**20}, "node_config": {},
                 "min_workers": 0, "max_workers": 3},
        "gpu4": {"resources": {"CPU": 4, "GPU": 4, "object_store_memory": 150 * 2**20}, "node_config": {},
                 "min_workers": 0, "max_workers": 1},
    },
    "head_node_type": "ray.head.default",
    # every key the monitor reads (it dies with KeyError: 'file_mounts' otherwise; stack notes)
    "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
    "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [], "setup_commands": [],
    "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
    "worker_start_ray_commands": [],
}


WATCH = """
import json, sys, time, ray
ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
with open(sys.argv[1], "a") as f:
    while True:
        nodes = [{"node_id": n["NodeID"], "alive": n["Alive"], "resources": n["Resources"]} for n in ray.nodes()]
        pgs = {k: {"state": v["state"], "bundles": v["bundles"], "nodes": v["bundles_to_node_id"]}
               for k, v in ray.util.placement_group_table().items()}
        f.write(json.dumps({"t": time.time(), "nodes": nodes, "pgs": pgs}) + chr(10))
        f.flush()
        time.sleep(1)
"""


class FakeCluster:
    """A head started with the fake provider's autoscaler, and a watcher process (a Ray driver) that
    writes what Ray says every second: nodes (ray.nodes) and placement groups (their nodes per bundle).
    The dashboard here is Ray's minimal one (no ray[default]), so there is no state API."""

    def __init__(self, tmp: Path):
        self.tmp, self.log = tmp, tmp / "watch.jsonl"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "MLFLOW_"))}
        self.env.update(RAY_FAKE_CLUSTER="1", RAY_TMPDIR=str(tmp / "rt"), RAY_AUTH_MODE="disabled",
                        RAY_USAGE_STATS_ENABLED="0")
        (tmp / "rt").mkdir()
        cfg = write_yaml(tmp / "autoscaler.yaml", CONFIG)
        self.proc = subprocess.Popen(
            [RAY, "start", "--head", "--block", "--port=6379", f"--autoscaling-config={cfg}", "--num-cpus=0",
             "--include-dashboard=false", "--disable-usage-stats"],
            env=self.env, stdout=open(tmp / "head.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
        self.watcher = None
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((tmp / "head.log").read_text()[-3000:])
            if self.watcher is None and list((tmp / "rt").glob("ray/ray_current_cluster")):
                self.watcher = subprocess.Popen([str(ROOT / ".venv/bin/python"), "-c", WATCH, str(self.log)],
                                                env=self.env, stdout=open(tmp / "watch.log", "w"),
                                                stderr=subprocess.STDOUT, start_new_session=True)
            if self.snapshots():
                return
            if self.watcher is not None and self.watcher.poll() is not None:
                raise RuntimeError((tmp / "watch.log").read_text()[-3000:])
            time.sleep(1)
        raise RuntimeError(f"the fake cluster did not come up in 120 s: {(tmp / 'head.log').read_text()[-2000:]}")

    def snapshots(self) -> list:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.endswith("}")]

    def nodes(self) -> list:
        """GPU worker nodes alive now: [{'node_id', 'resources'}]."""
        time.sleep(1.5)                         # a snapshot taken after this call
        last = self.snapshots()[-1]
        return [n for n in last["nodes"] if n["alive"] and n["resources"].get("GPU", 0) > 0]

    def seen_gpu_nodes(self, since: float = 0.0) -> dict:
        """node id -> resources of every GPU node alive at some snapshot after ``since``."""
        return {n["node_id"]: n["resources"] for s in self.snapshots() if s["t"] >= since for n in s["nodes"]
                if n["alive"] and n["resources"].get("GPU", 0) > 0}

    def run(self, tmp: Path, sweep: dict, timeout: float = 240, **kw) -> subprocess.CompletedProcess:
        f = write_yaml(tmp / f"{sweep['name']}.yaml", sweep)
        return ablate(["run", f, "--address", "auto", "--tracking-uri", self.uri(tmp), "--no-table"], tmp,
                      env=self.driver_env(tmp), timeout=timeout, **kw)

    def driver_env(self, tmp: Path) -> dict:
        return {**cli_env(tmp), "RAY_TMPDIR": self.env["RAY_TMPDIR"], "RAY_AUTH_MODE": "disabled"}

    @staticmethod
    def uri(tmp: Path) -> str:
        return f"sqlite:///{tmp / 'mlflow.db'}"

    def stop(self) -> None:
        # `ray start --block` takes over 10 s to leave on SIGTERM with fake nodes attached; the tests have
        # read what they need by now, and the cluster's files live in its own temp dir: 2 s, then SIGKILL
        for proc in (self.watcher, self.proc):
            if proc is not None:
                hosts.end_group(proc, grace=2.0)
        kill_matching(str(self.tmp / "rt"))     # fake nodes started by the monitor (their own sessions)


@pytest.fixture
def cluster():
    why = hosts.missing("pgrep")
    if why:
        pytest.skip(why)
    tmp = Path(tempfile.mkdtemp(prefix="fk", dir="/tmp"))   # short: Ray's socket paths stay < 107 chars
    with hosts.port_6379():
        c = FakeCluster(tmp)
        try:
            yield c
        finally:
            c.stop()


def _sweep(name: str, tmp: Path, seeds, resources: dict, sleep: float, epochs: int = 3, **fixed) -> dict:
    return {"name": name, "task": "toy", "metric": {"name": "score", "mode": "max"},
            "baseline": {"model.kind": "plain"}, "seeds": list(seeds),
            "fixed": {"train.epochs": epochs, "train.sleep": sleep, "train.device": "cpu",
                      "fault.dir": str(tmp / "faults"), **fixed},
            "scientific": {"model.kind": ["plain", "fancy"]}, "resources": resources, "max_failures": 2}


def _runs(tmp: Path, name: str) -> list:
    from mlflow.tracking import MlflowClient

    c = MlflowClient(FakeCluster.uri(tmp))
    exp = c.get_experiment_by_name(name)
    return [r for r in c.search_runs([exp.experiment_id], max_results=1000)
            if r.data.tags.get("ablate.phase") == "final"]


def _max_concurrent(intervals) -> int:
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    now = best = 0
    for _, d in edges:
        now += d
        best = max(best, now)
    return best


def test_gpu_nodes_start_for_a_sweep_pack_four_quarter_gpu_trials_and_stop_when_idle(cluster, tmp_path):
    """8 trials with resources {cpu: 1, gpu: 0.25}: no GPU node before, the autoscaler starts GPU
    nodes for them, a node never runs more than 4 of them at once and does run 4 (a gpu1 node has
    8 CPUs: the quarter GPU is what limits it), and the nodes are gone once idle."""
    assert cluster.nodes() == [], "a GPU node before any work"
    t0 = time.time()
    r = cluster.run(tmp_path, _sweep("pack", tmp_path, range(4), {"cpu": 1, "gpu": 0.25}, sleep=4.0))
    took = time.time() - t0
    seen = cluster.seen_gpu_nodes(since=t0)
    assert r.returncode == 0, out(r)[-4000:]
    assert "8 final trials, 8 finished, 0 failed" in r.stdout, out(r)[-3000:]
    assert seen and all(res.get("GPU", 0) >= 1 for res in seen.values()), seen
    runs = _runs(tmp_path, "pack")
    by_node: dict = {}
    for run in runs:
        by_node.setdefault(run.data.tags["ablate.node_id"], []).append((run.info.start_time, run.info.end_time))
    assert set(by_node) <= set(seen), "a trial ran on a node that is not a GPU worker"
    per_node = {n: _max_concurrent(iv) for n, iv in by_node.items()}
    assert max(per_node.values()) == 4 and all(v <= 4 for v in per_node.values()), per_node
    t1 = time.time()
    while cluster.nodes() and time.time() - t1 < 120:
        time.sleep(2)
    assert cluster.nodes() == [], "idle GPU nodes were not stopped"
    gpu_alive = [s["t"] for s in cluster.snapshots() if s["t"] >= t0 and any(
        n["alive"] and n["resources"].get("GPU", 0) > 0 for n in s["nodes"])]
    last_trial = max(r.info.end_time for r in runs) / 1000
    print(f"\nfake_multinode: {len(seen)} GPU nodes; the first alive {gpu_alive[0] - t0:.0f} s after `ablate run` "
          f"started, the last gone {gpu_alive[-1] - last_trial:.0f} s after the last trial ended (idle_timeout "
          f"{IDLE_S} s); sweep {took:.0f} s; most trials at once per node {per_node}")


def test_two_workers_of_a_data_parallel_trial_run_on_two_nodes(cluster, tmp_path):
    """workers: 2 with {cpu: 3, gpu: 1} per worker: no node type holds two such workers (gpu1 has one
    GPU, gpu4 four CPUs), so Ray Train places them on two nodes; gloo's all-reduce crosses them."""
    sweep = {"name": "dp", "task": "digits", "metric": {"name": "test_acc"}, "seeds": [0],
             "fixed": {"train.epochs": 2, "data.train_limit": 256, "train.device": "cpu"},
             "resources": {"cpu": 3, "gpu": 1, "workers": 2}, "max_failures": 0}
    r = cluster.run(tmp_path, sweep)
    assert r.returncode == 0, out(r)[-4000:]
    assert "1 final trials, 1 finished, 0 failed" in r.stdout, out(r)[-3000:]
    (run,) = _runs(tmp_path, "dp")
    assert run.data.tags["ablate.world_size"] == "2"
    # Ray Train's placement group: one bundle per worker, {CPU: 2.97, GPU: 1} each, as Ray placed them
    groups = {k: g for s in cluster.snapshots() for k, g in s["pgs"].items()
              if len(g["bundles"]) == 2 and all(b.get("GPU") == 1 for b in g["bundles"].values())
              and len(g["nodes"]) == 2}
    assert len(groups) == 1, groups
    (group,) = groups.values()
    nodes = set(group["nodes"].values())
    assert len(nodes) == 2, group
    assert set(nodes) <= set(cluster.seen_gpu_nodes())
    assert run.data.tags["ablate.node_id"] in nodes        # rank 0's node, as the run records it


def test_a_gpu_node_killed_mid_sweep_loses_no_run(cluster, tmp_path):
    """SIGKILL every process of the node running the most trials while they train (its raylet, its
    trials' workers, its agents; a machine lost): its trials are retried elsewhere (a surviving node or one the autoscaler starts) and continue their runs; every
    trial ends FINISHED in exactly one run."""
    sweep = _sweep("kill", tmp_path, range(4), {"cpu": 1, "gpu": 0.25}, sleep=3.0, epochs=4)
    log = tmp_path / "driver.log"
    f = write_yaml(tmp_path / "kill.yaml", sweep)
    driver = subprocess.Popen([*ABLATE, "run", str(f), "--address", "auto", "--tracking-uri", cluster.uri(tmp_path),
                               "--no-table"], cwd=tmp_path, env=cluster.driver_env(tmp_path), stdout=open(log, "w"),
                              stderr=subprocess.STDOUT)
    try:
        victim, victims = _node_with_running_trials(tmp_path, "kill", driver, log)
        pids = [p for p in _pids_of_node(victim)]
        assert pids, f"no raylet found for node {victim}"
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        driver.wait(timeout=280)
    finally:
        if driver.poll() is None:
            driver.kill()
    text = log.read_text()
    assert driver.returncode == 0, text[-4000:]
    runs = _runs(tmp_path, "kill")
    keys = [r.data.tags["ablate.trial_key"] for r in runs]
    assert len(runs) == 8 and len(set(keys)) == 8, "lost or duplicated runs"
    assert {r.info.status for r in runs} == {"FINISHED"}
    starts = (tmp_path / "faults" / "starts.log").read_text().splitlines()
    moved = [r for r in runs if r.data.tags["ablate.trial_key"] in victims]
    assert len(moved) == len(victims) >= 2
    for r in moved:
        mine = [s for s in starts if s.startswith(f"seed={r.data.params['seed']} kind={r.data.params['model.kind']} ")]
        assert len(mine) >= 2, f"a trial of the killed node did not start again: {starts}"
        assert r.data.tags["ablate.node_id"] != victim, "the run does not name the node it finished on"
    from mlflow.tracking import MlflowClient

    c = MlflowClient(cluster.uri(tmp_path))
    for run in runs:
        assert [m.step for m in c.get_metric_history(run.info.run_id, "epoch")] == [1, 2, 3, 4]


def _node_with_running_trials(tmp: Path, name: str, driver: subprocess.Popen, log: Path):
    """(node id, trial keys) of the node with the most RUNNING trials, once 3 trials reported their node."""
    from mlflow.tracking import MlflowClient

    from filelock import FileLock, Timeout

    deadline = time.time() + 180
    db = tmp / "mlflow.db"
    while time.time() < deadline and driver.poll() is None:
        if db.exists():
            try:
                # never alongside the launch's schema creation (under <db>.lock), as tests/helpers.finished_runs
                with FileLock(str(db) + ".lock", timeout=0.1):
                    pass
                c = MlflowClient(FakeCluster.uri(tmp))
                exp = c.get_experiment_by_name(name)
                running = [r for r in c.search_runs([exp.experiment_id]) if r.info.status == "RUNNING"
                           and r.data.tags.get("ablate.node_id")] if exp else []
                if len(running) >= 3:
                    counts: dict = {}
                    for r in running:
                        counts[r.data.tags["ablate.node_id"]] = counts.get(r.data.tags["ablate.node_id"], 0) + 1
                    node = max(counts, key=counts.get)
                    return node, {r.data.tags["ablate.trial_key"] for r in running if r.data.tags["ablate.node_id"] == node}
            except Timeout:
                pass
        time.sleep(0.5)
    raise AssertionError(f"no trials running on a node: {log.read_text()[-3000:]}")


def _pids_of_node(node_id: str) -> list:
    """Every process of a fake node, as if its machine went away: its raylet (its command line carries
    the node id), the raylet's descendants (the trials' worker processes) and its agents (from /proc)."""
    cmd, parent = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd[int(d.name)] = (d / "cmdline").read_bytes().decode(errors="replace").split("\0")
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    mine = {pid for pid, c in cmd.items() if any(node_id in part for part in c)}
    raylets = {pid for pid in mine if "raylet" in cmd[pid][0]}
    grown = True
    while grown:                                   # the raylets' descendants
        more = {pid for pid, pp in parent.items() if pp in raylets | mine and pid not in mine}
        grown = bool(more - mine)
        mine |= more
    return sorted(mine) if raylets else []


def test_a_gpu_trial_on_a_node_whose_torch_sees_no_gpu_fails_with_the_reason(cluster, tmp_path):
    """train.device: auto (the default) on a fake GPU node: torch has no CUDA, so the trial is an
    error naming resources.gpu and train.device=cpu, not a CPU run that looks like a GPU one."""
    sweep = _sweep("nocuda", tmp_path, [0], {"cpu": 1, "gpu": 0.5}, sleep=0.0, epochs=1)
    del sweep["fixed"]["train.device"]
    sweep.update(scientific={"model.kind": ["plain"]}, max_failures=0)
    r = cluster.run(tmp_path, sweep)
    assert r.returncode == 1, out(r)[-3000:]
    (run,) = _runs(tmp_path, "nocuda")
    assert run.info.status == "FAILED"
    reason = run.data.tags["ablate.failure_reason"]
    assert "resources.gpu=0.5" in reason and "sees no CUDA device" in reason and "train.device=cpu" in reason
