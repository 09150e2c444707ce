"""Shared fixtures: one real local Ray instance per test session (2 CPUs) and
helpers that run a sweep against a real MLflow sqlite store in a temp dir."""
from __future__ import annotations

import os
import tempfile

import pytest

os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")



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
    session's store; the study's experiment name must be unique in the session.

    A sweep *file* runs the way users run it: ``ablate run FILE [--smoke] [--only KEY]
    [--set K=V] --tracking-uri STORE`` in a subprocess (its own local Ray); the summary
    is read from the CLI's closing line.  A Study object runs in-process via launch()."""
    monkeypatch.setenv("ABLATE_HOME", str(tmp_path / "home"))
    uri = mlflow_store

    def run(sweep, overrides=None, smoke=True, only=None, cli=True, **kw):
        from analysis.store import load_runs

        if hasattr(sweep, "task") or not cli or kw:
            from sweeps.runner.launch import launch
            from sweeps.language.load import load

            study = sweep if hasattr(sweep, "task") else load(str(sweep), overrides=overrides, smoke=smoke)
            summary = launch(study, tracking_uri=uri, echo=lambda s: None, verbose=0, **kw)
            return summary, load_runs(study.experiment, uri, launch=summary["launch"])
        summary = _cli_run(sweep, uri, tmp_path, overrides, smoke, only)
        runs = load_runs(summary["experiment"], uri, launch=summary["launch"])
        summary["experiment_id"] = runs["experiment_id"].iloc[0]
        return summary, runs

    run.uri = uri
    run.tmp = tmp_path
    return run


def _cli_run(sweep, uri, tmp_path, overrides, smoke, only):
    import re

    from tests.helpers import ablate, cli_env

    args = ["run", str(sweep), "--tracking-uri", uri, "--no-table"] + (["--smoke"] if smoke else [])
    args += [a for k in (only or []) for a in ("--only", k)]
    args += [a for k, v in (overrides or {}).items() for a in ("--set", f"{k}={v}")]
    r = ablate(args, tmp_path, env=cli_env(tmp_path), timeout=1800)
    text = r.stdout + r.stderr
    m = re.search(r"^(\S+): (\d+) final trials, (\d+) finished, (\d+) failed \(launch (\S+);", r.stdout, re.M)
    assert m and r.returncode in (0, 1) and "Traceback" not in text, f"exit {r.returncode}:\n{text[-4000:]}"
    phases = {p: {"trials": int(n), "finished": int(f), "failed": int(x)} for p, n, f, x in
              re.findall(r"^\S+: (\w+) phase: (\d+) trials, (\d+) finished, (\d+) failed$", r.stdout, re.M)}
    return {"experiment": m.group(1), "launch": m.group(5), "uri": uri, "returncode": r.returncode, "phases": phases,
            "counts": {"trials": int(m.group(2)), "finished": int(m.group(3)), "failed": int(m.group(4))},
            "output": text}
