"""The cluster path exactly as the README documents it, with real `ray start`
processes on this machine.

cluster.yaml's own commands are run in a shell whose HOME is the test's: the
setup_commands' ~/.bashrc lines, head_start_ray_commands and
worker_start_ray_commands, beside an MLflow server on sqlite (the head's own,
docs/cluster/tracking-server.sh on PostgreSQL, runs in tests/cluster/test_ray_up.py
with `ray up` itself, and tests/cluster/test_postgres_tracking.py); then the driver as the
README's `ray exec` line runs it (`bash --login -i` reading ~/.bashrc, then
`cd ~/ablate && ablate run … --address auto --tracking-uri http://127.0.0.1:PORT`),
then `ablate table` against the head's tracking server.

What differs from AWS, and why: one machine plays head and worker (Ray tells the
nodes apart by node id); ports are free ones instead of 6379/8076/5000 (other
Ray instances may run here); `ray stop` is skipped (it would stop every Ray
process of this user, other tests' too); the head gets --num-cpus=0 as the
launcher's `resources: {CPU: 0}` does; no autoscaler config and no dashboard;
~/ablate-venv and ~/ablate are links to this checkout's .venv and tree.
A token file exists in the driver's HOME, as after any earlier local run:
that is what made the documented path fail before (Ray then turned tokens on
in the driver while the nodes ran without).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import (ROOT, ablate, assert_clean_error, cli_env, free_port, kill_matching,
                               start_mlflow_server, stop_group, out)

CFG = yaml.safe_load((ROOT / "cluster.yaml").read_text())


def _home(tmp: Path) -> Path:
    home = tmp / "h"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("f" * 64)   # left behind by an earlier local run
    (home / "ablate-venv").symlink_to(ROOT / ".venv")
    (home / "ablate").symlink_to(ROOT)
    (home / ".bashrc").write_text("")
    for cmd in CFG["setup_commands"]:
        if ".bashrc" in cmd:                     # the lines that shape the shell of every `ray exec`
            subprocess.run(["bash", "-c", cmd], env={**os.environ, "HOME": str(home)}, check=True)
    return home


def _node_cmd(cmd: str, gcs_port: int, om_port: int, cpus: int) -> str:
    cmd = cmd.replace("--port=6379", f"--port={gcs_port}").replace(":6379", f":{gcs_port}")
    cmd = cmd.replace("--object-manager-port=8076", f"--object-manager-port={om_port}")
    cmd = re.sub(r"--autoscaling-config=\S+", "", cmd).replace("--dashboard-host=127.0.0.1", "")
    head = " --include-dashboard=false" if "--head" in cmd else ""
    return cmd + f" --num-cpus={cpus} --disable-usage-stats{head}"


def _shell(cmd: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """A login + interactive bash reading ~/.bashrc, as `ray exec` runs commands."""
    return subprocess.run(["bash", "--login", "-i", "-c", f"source ~/.bashrc; {cmd}"], env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def cluster_home(tmp_path):
    """HOME, env and ports of a head + worker started by cluster.yaml's commands."""
    tmp = Path(tempfile.mkdtemp(prefix="cl", dir="/tmp"))   # short: Ray's socket paths < 107 chars
    home = _home(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS", "MLFLOW_"))}
    env.update(HOME=str(home), RAY_TMPDIR=str(tmp / "rt"), PYTHONPATH=str(ROOT), TUNE_GLOBAL_CHECKPOINT_S="1")
    (tmp / "rt").mkdir(exist_ok=True)
    yield tmp, home, env
    kill_matching(str(tmp / "rt"))
    shutil.rmtree(tmp, ignore_errors=True)


def _start_nodes(env: dict, head_cmds, worker_cmds, gcs_port: int) -> None:
    for cmd in head_cmds:
        if "ray stop" in cmd:
            continue
        r = _shell(_node_cmd(cmd, gcs_port, free_port(), cpus=0), env)
        assert r.returncode == 0, out(r)[-3000:]
    head_ip = (Path(env["RAY_TMPDIR"]) / "ray" / "ray_current_cluster").read_text().split(":")[0]
    for cmd in worker_cmds:
        if "ray stop" in cmd:
            continue
        r = _shell(_node_cmd(cmd, gcs_port, free_port(), cpus=2), {**env, "RAY_HEAD_IP": head_ip})
        assert r.returncode == 0, out(r)[-3000:]


def test_documented_cluster_path_head_worker_driver_table(cluster_home):
    tmp, home, env = cluster_home
    port = free_port()
    server = start_mlflow_server(tmp / "store", port, tmp / "mlflow.log")
    try:
        _start_nodes(env, CFG["head_start_ray_commands"], CFG["worker_start_ray_commands"], free_port())
        uri = f"http://127.0.0.1:{port}"
        t0 = time.time()
        r = _shell(f"cd ~/ablate && ablate run sweeps/quick.yaml --smoke --address auto --tracking-uri {uri} "
                   f"--no-table", env, timeout=600)
        text = out(r)
        assert r.returncode == 0, text[-4000:]
        assert "3 final trials, 3 finished, 0 failed" in text, text[-3000:]
        assert "Traceback" not in text
        r = _shell(f"cd ~/ablate && ablate table quick --tracking-uri {uri} --format csv", env)
        assert r.returncode == 0, out(r)[-3000:]
        rows = [ln for ln in r.stdout.splitlines() if ln.startswith(("dense", "cdlinear"))]
        assert len(rows) == 3, r.stdout
        assert time.time() - t0 < 600
    finally:
        stop_group(server)


def test_driver_with_a_different_auth_mode_fails_in_one_line(cluster_home, tmp_path):
    tmp, home, env = cluster_home
    _start_nodes(env, CFG["head_start_ray_commands"], [], free_port())
    (tmp_path / "home").mkdir()
    t0 = time.time()
    r = ablate(["run", ROOT / "sweeps/quick.yaml", "--smoke", "--address", "auto", "--no-table"], tmp_path,
               env={**cli_env(tmp_path), "HOME": str(home), "RAY_TMPDIR": env["RAY_TMPDIR"],
                    "RAY_AUTH_MODE": "token"}, timeout=300)
    line = assert_clean_error(r, 3, "RAY_AUTH_MODE=disabled", "RAY_AUTH_MODE=token")
    assert "cluster" in line
    assert time.time() - t0 < 60, "the mismatch must be reported at once, not after retries"


def test_token_head_adopted_by_a_driver_without_auth_mode(cluster_home, tmp_path):
    """A plain `ray start --head` (token auth: Ray's default once ~/.ray/auth_token
    exists) and a driver with RAY_AUTH_MODE unset: the driver follows the cluster;
    with RAY_AUTH_MODE=disabled it is told, in one line, that they disagree."""
    tmp, home, env = cluster_home
    gcs = free_port()
    r = subprocess.run([str(ROOT / ".venv/bin/ray"), "start", "--head", f"--port={gcs}", "--num-cpus=2",
                        "--include-dashboard=false", "--disable-usage-stats"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, out(r)[-2000:]
    denv = {**cli_env(tmp_path), "HOME": str(home), "RAY_TMPDIR": env["RAY_TMPDIR"]}
    denv.pop("RAY_AUTH_MODE", None)
    r = ablate(["run", ROOT / "sweeps/quick.yaml", "--smoke", "--address", "auto", "--no-table"], tmp_path, env=denv, timeout=600)
    assert r.returncode == 0, out(r)[-4000:]
    assert "3 finished, 0 failed" in r.stdout
    r = ablate(["run", ROOT / "sweeps/quick.yaml", "--smoke", "--address", "auto", "--no-table"], tmp_path,
               env={**denv, "RAY_AUTH_MODE": "disabled"}, timeout=300)
    assert_clean_error(r, 3, "RAY_AUTH_MODE=token", "RAY_AUTH_MODE=disabled")
