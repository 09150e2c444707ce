"""Shared fixtures: one real local Ray instance per test session (2 CPUs) and
helpers that run a sweep against a real MLflow sqlite store in a temp dir."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "sweeps"


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray instance (not mocked), shared by the session's sweep tests."""
    import ray

    if not ray.is_initialized():
        # A short temp dir: Ray's socket paths must stay under ~107 characters.
        tmp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING", _temp_dir=tmp,
                 log_to_driver=False)
    yield ray
    # left running for other session tests; pytest's exit shuts it down


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory):
    """One real sqlite MLflow store per session (creating a store runs ~30 schema
    migrations, seconds each time); tests keep apart by experiment name."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture
def sweep_runner(ray_local, mlflow_store, tmp_path, monkeypatch):
    """run(path_or_study, **launch_kwargs) -> (summary, runs DataFrame) against the
    session's store; the study's experiment name must be unique in the session."""
    monkeypatch.setenv("ABLATE_HOME", str(tmp_path / "home"))
    uri = mlflow_store

    def run(sweep, overrides=None, smoke=True, **kw):
        from analysis.store import load_runs
        from sweeps.run import launch
        from sweeps.spec import load

        study = load(str(sweep), overrides=overrides, smoke=smoke) if not hasattr(sweep, "task") else sweep
        summary = launch(study, tracking_uri=uri, echo=lambda s: None, verbose=0, **kw)
        runs = load_runs(study.experiment, uri, launch=summary["launch"])
        return summary, runs

    run.uri = uri
    run.tmp = tmp_path
    return run
