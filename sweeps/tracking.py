"""MLflow tracking for sweeps: store resolution, a reachability check before
launch, and the Tune callback that keeps exactly one MLflow run per trial.

Why not ray.air.integrations.mlflow.MLflowLoggerCallback: it keys runs by the
in-memory Trial object, so a trial retried after a worker crash or resumed by
``Tuner.restore`` after a driver crash gets a second run (a duplicate row in
every table), and it cannot mark a diverged trial FAILED with a reason.  This
callback finds a trial's run by its ``ablate.trial_key`` tag, continues it,
logs each epoch once (steps already logged are skipped after a restore), and
ends every run FINISHED or FAILED.  It runs on the driver, so workers never
write tracking data to their own disks.  The callback class itself lives in
sweeps/callback.py (it subclasses a Ray class; this module stays Ray-free so
the CLI starts fast).
"""
from __future__ import annotations

import getpass
import os
import socket
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional

# Keys Tune adds to every result; everything else numeric is a task metric.
TUNE_AUTO_KEYS = {
    "time_this_iter_s", "done", "training_iteration", "timestamp", "time_total_s", "pid", "hostname",
    "node_ip", "time_since_restore", "iterations_since_restore", "checkpoint_dir_name", "trial_id",
    "date", "config", "experiment_tag", "should_checkpoint", "episodes_total", "timesteps_total",
    "timesteps_since_restore", "episode_reward_mean", "experiment_id",
}
INFO_KEY = "ablate_info"           # dict of trial annotations inside a result
FAILURE_KEY = "ablate_failure"     # reason string when a trial diverged


def default_home() -> Path:
    return Path(os.environ.get("ABLATE_HOME", Path.cwd() / "ablate_runs")).resolve()


def resolve_uri(cli_uri: Optional[str] = None, file_uri: Optional[str] = None) -> str:
    """--tracking-uri > sweep file's tracking.uri > $MLFLOW_TRACKING_URI > local sqlite."""
    uri = cli_uri or file_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    home = default_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"


def _quiet_mlflow() -> None:
    import logging

    # Alembic prints every migration step when a sqlite store is first created.
    for name in ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def client(uri: str):
    _quiet_mlflow()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before any trial starts, if the tracking store cannot be used."""
    if uri.startswith(("http://", "https://")):
        # A health probe of the user's own tracking server (MLflow answers GET /health), not a download.
        import http.client
        from urllib.parse import urlsplit

        u = urlsplit(uri)
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        try:
            conn = conn_cls(u.hostname, u.port, timeout=timeout_s)
            conn.request("GET", (u.path.rstrip("/") or "") + "/health")
            status = conn.getresponse().status
            conn.close()
            if status >= 500:
                raise OSError(f"HTTP {status}")
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise ConnectionError(f"MLflow tracking server {uri} cannot be reached ({e}); start it or pass "
                                  f"--tracking-uri / tracking.uri pointing at a running server") from None
        return
    try:
        client(uri).search_experiments(max_results=1)
    except Exception as e:  # noqa: BLE001 - any store error means "cannot track"
        raise ConnectionError(f"MLflow tracking store {uri} cannot be used: {e}") from None


def ensure_experiment(uri: str, name: str) -> str:
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    artifact = None
    if uri.startswith("sqlite:///"):
        artifact = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    try:
        return c.create_experiment(name, artifact_location=artifact)
    except Exception:  # created concurrently by another driver
        return c.get_experiment_by_name(name).experiment_id


def git_commit(path: Path | None = None) -> str:
    try:
        cwd = str(path or Path(__file__).resolve().parent)
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def find_run(c, experiment_id: str, trial_key: str):
    runs = c.search_runs([experiment_id], filter_string=f"tags.`ablate.trial_key` = '{trial_key}'",
                         max_results=5)
    return runs[0] if runs else None


def _metrics_of(result: Dict[str, Any]) -> Dict[str, float]:
    out = {}
    for k, v in result.items():
        if k in TUNE_AUTO_KEYS or k.startswith("ablate_") or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[k] = float(v)
    return out


def base_tags(study_name: str, launch: str) -> Dict[str, str]:
    return {"ablate.sweep": study_name, "ablate.launch": launch, "ablate.git_commit": git_commit(),
            "ablate.driver_host": socket.gethostname(), "ablate.user": getpass.getuser(),
            "mlflow.source.name": "ablate"}
