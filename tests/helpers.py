"""The test suite's shared helpers, in one place: the repository's paths, running the ``ablate`` console
script the way a user does (a subprocess, the installed entry point ``.venv/bin/ablate``, a fresh working
directory), sweep files, free ports, local Ray clusters, MLflow servers and store pollers, parameter counts.
Fixtures live in conftest.py; test modules import what they need from here."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import yaml

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "sweeps"
_SCRIPT = Path(sys.executable).parent / "ablate"
ABLATE: List[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sweeps.cli"]


def cli_env(tmp_path: Path, **extra: str) -> Dict[str, str]:
    """The user's environment, with the run directory and Ray's temp dir inside
    the test's own directory (short: Ray's socket paths must stay < 107 chars)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_URI", "RAY_ADDRESS"))}
    env.update(ABLATE_HOME=str(tmp_path / "home"), PYTHONPATH=str(ROOT), TUNE_GLOBAL_CHECKPOINT_S="1")
    env.update(extra)
    return env


def ablate(args: List[str], cwd: Path, env: Optional[Dict[str, str]] = None, timeout: float = 600,
           **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*ABLATE, *map(str, args)], cwd=cwd, env=env or cli_env(Path(cwd)),
                          capture_output=True, text=True, timeout=timeout, **kw)


def out(r: subprocess.CompletedProcess) -> str:
    return (r.stdout or "") + (r.stderr or "")


def assert_clean_error(r: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """Exit ``code``, no traceback, and one ``ablate: error:`` line (or a sweep-file
    problem line) that contains every word."""
    text = out(r)
    assert r.returncode == code, f"exit {r.returncode}, wanted {code}:\n{text[-3000:]}"
    assert "Traceback" not in text, text[-3000:]
    lines = [ln for ln in r.stderr.splitlines() if "error" in ln or ": " in ln]
    hit = [ln for ln in lines if all(w in ln for w in words)]
    assert hit, f"no error line containing {words}:\n{r.stderr[-3000:]}"
    return hit[0]


def write_yaml(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def toy_sweep(name: str, tmp_path: Path, seeds=(0, 1), **fixed) -> dict:
    """A toy sweep (milliseconds per trial): plain vs fancy (width 2, 4)."""
    return {"name": name, "task": "toy", "metric": {"name": "score", "mode": "max"},
            "baseline": {"model.kind": "plain"}, "seeds": list(seeds),
            "fixed": {"train.epochs": 2, "fault.dir": str(tmp_path / "faults"), **fixed},
            "scientific": {"model.kind": ["plain", "fancy"], "model.width": [2, 4]},
            "resources": {"cpu": 1}, "max_failures": 1}


def toy_study(tmp_path: Path, **over):
    """A validated toy Study (plain vs fancy width 2, 4; seeds 0..2; 2 epochs; no summary artifacts) for launch()
    with a fake phase runner; ``over`` replaces sweep-file keys."""
    from sweeps.language.load import load

    raw = {"name": "fake", "task": "toy", "metric": {"name": "score", "mode": "max"},
           "baseline": {"model.kind": "plain"}, "seeds": [0, 1, 2], "fixed": {"train.epochs": 2},
           "scientific": {"model.kind": ["plain", "fancy"], "model.width": [2, 4]},
           "artifacts": {"summary": False}, "storage": str(tmp_path / "ray"), **over}
    return load(str(write_yaml(tmp_path / "s.yaml", raw)))


def count_params(module) -> int:
    """Number of parameters of a torch module (every tensor in ``module.parameters()``)."""
    return sum(p.numel() for p in module.parameters())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mlflow_server(store_dir: Path, port: int, log: Path) -> subprocess.Popen:
    """An MLflow tracking server as cluster.yaml's head_setup_commands start one."""
    mlflow = Path(sys.executable).parent / "mlflow"
    store_dir.mkdir(parents=True, exist_ok=True)
    p = subprocess.Popen([str(mlflow) if mlflow.exists() else "mlflow", "server", "--backend-store-uri",
                          f"sqlite:///{store_dir / 'mlflow.db'}", "--artifacts-destination",
                          str(store_dir / "artifacts"), "--serve-artifacts", "--host", "127.0.0.1",
                          "--port", str(port)],
                         env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
                         stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 90
    import urllib.request

    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return p
        except OSError:
            if p.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)
    p.kill()
    raise RuntimeError(f"mlflow server did not answer in 90 s:\n{log.read_text()[-2000:]}")


def stop_group(p: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_matching(fragment: str) -> None:
    """SIGKILL every process whose command line contains ``fragment`` (a test's
    own temp path): ``ray stop`` would stop every Ray process of the user."""
    pgrep = shutil.which("pgrep")
    if not pgrep or not fragment:
        return
    r = subprocess.run([pgrep, "-f", fragment], capture_output=True, text=True)
    for pid in r.stdout.split():
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), 9)
            except ProcessLookupError:
                pass


def local_cluster(num_cpus: int, prefix: str):
    """A Ray head in its own processes (``ray.cluster_utils.Cluster``), not connected
    to this process, with a short temp dir (Ray's socket paths must stay under 107
    characters, which pytest's tmp_path would exceed)."""
    from ray._common.utils import get_default_ray_temp_dir
    from ray.cluster_utils import Cluster

    # Cluster() records the head's address in <system tmp>/ray/ray_current_cluster and
    # fails on a fresh machine where nothing has created that directory yet.
    os.makedirs(get_default_ray_temp_dir(), exist_ok=True)
    return Cluster(initialize_head=True, connect=False,
                   head_node_args={"num_cpus": num_cpus, "include_dashboard": False,
                                   "temp_dir": f"/tmp/{prefix}{os.getpid() % 10000}"})


def finished_runs(uri: str, name: str) -> list:
    """FINISHED final-phase runs of experiment ``name`` in the sqlite store ``uri``, safe to poll while a
    launch is creating that store: [] until the launch has made it. A plain MlflowClient would create the
    store itself and run MLflow's schema migrations alongside the launch's, which breaks the launch (it does
    them under ``<db>.lock``, as `ablate table` waits for)."""
    from filelock import FileLock, Timeout
    from mlflow.tracking import MlflowClient

    db = uri[len("sqlite:///"):]
    if not Path(db).exists():
        return []
    try:
        with FileLock(db + ".lock", timeout=0.1):
            pass
    except Timeout:
        return []
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        return []
    return [r for r in c.search_runs([exp.experiment_id], max_results=5000)
            if r.info.status == "FINISHED" and r.data.tags.get("ablate.phase") == "final"]


def wait_for_finished(uri: str, name: str, n: int, proc: subprocess.Popen, log: Path,
                      timeout: float = 300) -> list:
    """Poll the store until experiment ``name`` has ``n`` FINISHED final-phase runs
    (then return them), failing with the driver's log if it exits or times out first
    (polled with ``finished_runs``, so it never races the launch's schema creation)."""
    done: list = []
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        done = finished_runs(uri, name)
        if len(done) >= n:
            return done
        time.sleep(0.2)
    raise AssertionError(f"{len(done)} of {n} runs finished before the driver exited ({proc.poll()}) "
                         f"or {timeout:.0f} s passed:\n{Path(log).read_text()[-3000:]}")


def assert_started_once(starts_log: Path, trial_keys) -> None:
    """Each of these finished trials started exactly once (the toy task's fault.dir
    start log has a ``seed=S …`` line per start): a resume reran none of them."""
    starts = Path(starts_log).read_text().splitlines()
    for key in trial_keys:
        seed = key.split("seed=")[1]
        assert sum(line.startswith(f"seed={seed} ") for line in starts) == 1, f"finished trial {key} was rerun"


def assert_dry_run_settings(tmp_path: Path, sweep: Path, cells: int, new_cell: str, settings: List[str],
                            widen: List[str], only: List[str] = ()) -> None:
    """``ablate run SWEEP --dry-run`` names each paper-vs-code ``settings`` value (a one-value axis, in every cell);
    with the ``widen`` flags (the --set of docs/reproduction.md) the plan has ``cells`` cells, a baseline and
    ``new_cell`` among them.  ``only``: flags that pick a study of a suite, given to both runs."""
    r = ablate(["run", sweep, "--dry-run", *only], tmp_path, timeout=120)
    assert r.returncode == 0, out(r)
    for setting in settings:
        assert setting in r.stdout, setting
    r = ablate(["run", sweep, "--dry-run", *only, *widen], tmp_path, timeout=120)
    assert r.returncode == 0, out(r)
    assert f"final phase: {cells} cells" in r.stdout and "(baseline)" in r.stdout, r.stdout[-2000:]
    assert new_cell in r.stdout, new_cell
