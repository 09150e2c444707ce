"""A launch started by the code before sweeps/ was split into rooms (issue 20) resumes after the split.

Ray Tune pickled that launch's callbacks, grid picker and trainable by their old module paths
(``sweeps.callback.MLflowTracker``, ``sweeps.phase._Pick``, ...), and its state file has the old format.  The
test checks out the last commit before the split (git archive), runs a toy sweep with it, SIGKILLs the driver
mid-sweep, and resumes with this checkout's ``ablate run --resume``: Tune restores the old state (through
the aliases in sweeps/__init__.py), no finished trial runs again, none is lost or duplicated.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, ablate, cli_env, finished_runs, kill_matching, out, toy_sweep, write_yaml

PRE_SPLIT = "419fc71"     # main before the split (its next commit, 78fb461, is the rename-only step)


def _old_checkout(dest: Path) -> Path:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and this repository's history (git archive of the commit before the split)")
    ok = subprocess.run(["git", "cat-file", "-e", f"{PRE_SPLIT}^{{commit}}"], cwd=ROOT, capture_output=True)
    if ok.returncode != 0:
        pytest.skip(f"commit {PRE_SPLIT} (main before the split) is not in this clone (a shallow clone?)")
    dest.mkdir()
    arch = subprocess.run(["git", "archive", PRE_SPLIT], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=arch, check=True)
    return dest


def test_a_launch_of_the_code_before_the_split_resumes_after_it(tmp_path):
    old = _old_checkout(tmp_path / "old")
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    sweep = toy_sweep("legacy", tmp_path, seeds=(0, 1, 2), **{"train.sleep": 0.4, "train.epochs": 3})
    f = write_yaml(tmp_path / "legacy.yaml", sweep)
    rt = tempfile.mkdtemp(prefix="rt", dir="/tmp")      # short: Ray's socket paths must stay < 107 characters
    env = cli_env(tmp_path, RAY_TMPDIR=rt)
    old_env = {**env, "PYTHONPATH": str(old)}           # the old packages shadow the installed (editable) ones
    from mlflow.tracking import MlflowClient

    Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True)
    MlflowClient(uri).search_experiments()              # the schema exists before the test polls the store
    with open(tmp_path / "old.log", "w") as log:
        p = subprocess.Popen([sys.executable, "-m", "sweeps.cli", "run", str(f), "--tracking-uri", uri, "--no-table"],
                             cwd=tmp_path, env=old_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and p.poll() is None and len(finished_runs(uri, "legacy")) < 2:
            time.sleep(0.2)
        done_before = {r.data.tags["ablate.trial_key"] for r in finished_runs(uri, "legacy")}
        assert len(done_before) >= 2 and p.poll() is None, (tmp_path / "old.log").read_text()[-3000:]
        time.sleep(1.5)                                   # Tune's experiment snapshot (every 1 s) names them
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()
        kill_matching(rt)
    assert "sweeps/runner" not in (tmp_path / "old.log").read_text()
    done_before = {r.data.tags["ablate.trial_key"] for r in finished_runs(uri, "legacy")}

    r = ablate(["run", f, "--tracking-uri", uri, "--resume", "--no-table"], tmp_path, env=env)
    kill_matching(rt)
    shutil.rmtree(rt, ignore_errors=True)
    assert r.returncode == 0, out(r)[-4000:]
    assert "restoring Tune run" in out(r), out(r)[-4000:]          # the old Tune state, not a fresh Tuner
    c = MlflowClient(uri)
    runs = [x for x in c.search_runs([c.get_experiment_by_name("legacy").experiment_id], max_results=1000)
            if x.data.tags.get("ablate.phase") == "final"]
    keys = [x.data.tags["ablate.trial_key"] for x in runs]
    assert len(keys) == len(set(keys)) == 9, sorted(keys)           # every trial once: none lost, none doubled
    assert all(x.info.status == "FINISHED" for x in runs)
    # starts.log has a line per (re)start, naming seed and kind: a trial finished before the kill started once,
    # any other at most twice (once before the kill, once after)
    starts = (tmp_path / "faults" / "starts.log").read_text().splitlines()
    for seed in (0, 1, 2):
        for kind in ("plain", "fancy"):
            mine = [k for k in keys if k.endswith(f"|seed={seed}") and f"model.kind={kind}" in k]
            allowed = sum(1 if k in done_before else 2 for k in mine)
            got = sum(f"seed={seed} kind={kind} " in ln for ln in starts)
            assert len(mine) <= got <= allowed, (seed, kind, done_before, starts)
