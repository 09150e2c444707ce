"""Your own layer and your own task, as the README's "Your own layer in 4 steps" shows them (issue 19): the files
of docs/examples/own_layer copied to a directory outside the checkout, run through ``ablate`` in a subprocess
against real Ray and a real MLflow store.

1. the low-rank layer on digits: 3 cells, every trial FINISHED, the table's parameter counts, the report's cells;
2. a rank larger than the layer: exit 2 before Ray starts or any MLflow run exists, naming key, value, message;
3. the same sweep on a two-node Ray cluster whose worker never saw the user's files (ray start head + worker);
4. a task registered from an imported file runs with its own metric and mode, and `ablate tasks` lists it;
5. a layer whose module needs a file the sweep does not ship: one FAILED run per trial, not retried, its frame
   in the reason;
6. `ablate trial --from-run` reproduces a plugin trial exactly, and names the layer file once it is edited.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.helpers import ROOT, ablate, cli_env, free_port, kill_matching, out

EXAMPLE = ROOT / "docs" / "examples" / "own_layer"


@pytest.fixture(scope="module")
def elsewhere(tmp_path_factory):
    """The example's files in a directory outside the checkout (the user's own project)."""
    d = tmp_path_factory.mktemp("mylab")
    for f in EXAMPLE.iterdir():
        if f.is_file():
            shutil.copy(f, d / f.name)
    return d


def _runs(uri: str, name: str):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(name)
    return [r for r in c.search_runs([exp.experiment_id], max_results=1000) if r.data.tags.get("ablate.phase") == "final"]


def _lowrank_params(width: int, rank: int) -> int:
    """LowRankLinear's count over digits' three layers 64 -> w -> w -> 10: r(in + out) + out each."""
    return sum(rank * (i + o) + o for i, o in ((64, width), (width, width), (width, 10)))


SMALL = ["--set", "train.epochs=2", "--set", "data.train_limit=200", "--set", "seeds=[0]"]


@pytest.fixture(scope="module")
def lowrank_launch(elsewhere):
    """The README's sweep (lowrank.yaml), shortened, from the user's directory."""
    uri = f"sqlite:///{elsewhere / 'store' / 'mlflow.db'}"
    r = ablate(["run", "lowrank.yaml", "--tracking-uri", uri, *SMALL], elsewhere, env=cli_env(elsewhere))
    return r, uri


def test_your_own_layer_runs_every_cell_with_its_parameter_count(lowrank_launch, elsewhere):
    r, uri = lowrank_launch
    assert r.returncode == 0, out(r)[-4000:]
    assert "3 final trials, 3 finished, 0 failed" in r.stdout
    runs = _runs(uri, "lowrank_digits")
    cells = sorted(x.data.tags["ablate.cell"] for x in runs)
    assert cells == ["model.linear=dense", "model.linear=lowrank,model.linear.rank=2",
                     "model.linear=lowrank,model.linear.rank=8"]
    assert all(x.info.status == "FINISHED" for x in runs)
    table = ablate(["table", "lowrank_digits", "--tracking-uri", uri, "--format", "csv"], elsewhere,
                   env=cli_env(elsewhere))
    import csv
    import io

    rows = {(row["model.linear"], row.get("model.linear.rank") or ""): row
            for row in csv.DictReader(io.StringIO(table.stdout))}
    assert int(float(rows[("dense", "")]["params"])) == 8970                 # the paper's dense count
    for rank in (2, 8):
        row = next(v for (lin, rk), v in rows.items() if lin == "lowrank" and rk and int(float(rk)) == rank)
        assert int(float(row["params"])) == _lowrank_params(64, rank)
    for row in rows.values():                  # issue 24: the user's layer is costed like a shipped one
        assert all(float(row[c] or "nan") > 0 for c in ("flops_fwd", "flops_step", "mem_mb", "lat_b1_ms",
                                                       "lat_batch_ms", "trial_s", "flops_x")), row
    report = Path(re.search(r"^report: (\S+)", r.stdout, re.M).group(1)).read_text()
    assert "model.linear.rank" in report and "lowrank" in report
    # provenance: the run names the file it imported and where the worker found it (shipped by py_modules)
    tags = next(x for x in runs if "lowrank" in x.data.tags["ablate.cell"]).data.tags
    rec = json.loads(tags["ablate.imports"])[0]
    assert rec["module"] == "lowrank" and rec["files"] == {"lowrank.py": _sha(elsewhere / "lowrank.py")}
    assert "lowrank" in json.loads(tags["ablate.code_from"])


def _sha(p: Path) -> str:
    import hashlib

    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_a_rank_larger_than_the_layer_is_refused_before_anything_starts(elsewhere, tmp_path):
    home, rt = tmp_path / "home", tmp_path / "rt"
    env = cli_env(tmp_path, RAY_TMPDIR=str(rt), ABLATE_HOME=str(home))
    t0 = time.perf_counter()
    r = ablate(["run", elsewhere / "lowrank.yaml", "--set", "model.linear.rank=[2,128]"], tmp_path, env=env)
    seconds = time.perf_counter() - t0
    assert r.returncode == 2, out(r)[-3000:]
    line = next(ln for ln in r.stderr.splitlines() if "model.linear.rank" in ln)
    assert "scientific.model.linear.rank" in line and "rank=128" in line and "rank 128 is larger" in line, line
    assert "Traceback" not in out(r)
    assert not home.exists() and not rt.exists(), "a store or a Ray instance was created"
    print(f"refused in {seconds:.1f} s")


def test_your_own_task_runs_with_its_metric_and_ablate_tasks_lists_it(elsewhere):
    r = ablate(["tasks", "--import", "regression_task.py"], elsewhere, env=cli_env(elsewhere))
    assert r.returncode == 0 and re.search(r"^diabetes: ", r.stdout, re.M), out(r)
    r = ablate(["tasks", "diabetes", "--import", "lowrank.py", "--import", "regression_task.py"], elsewhere,
               env=cli_env(elsewhere))
    assert "test_mse (min)" in r.stdout and "model.linear.rank" in r.stdout, out(r)
    uri = f"sqlite:///{elsewhere / 'task' / 'mlflow.db'}"
    r = ablate(["run", "diabetes.yaml", "--smoke", "--tracking-uri", uri], elsewhere, env=cli_env(elsewhere))
    assert r.returncode == 0, out(r)[-4000:]
    assert "4 final trials, 4 finished, 0 failed" in r.stdout
    assert "test_mse ↓" in r.stdout                                      # its own metric, lower is better
    runs = _runs(uri, "lowrank_diabetes")
    assert {x.data.tags["ablate.task"] for x in runs} == {"diabetes"}
    assert all("test_mse" in x.data.metrics for x in runs)


def test_from_run_reproduces_a_plugin_trial_and_names_an_edited_layer(lowrank_launch, elsewhere):
    _, uri = lowrank_launch
    rid = next(x.info.run_id for x in _runs(uri, "lowrank_digits") if x.data.tags["ablate.cell"].endswith("rank=8"))
    r = ablate(["trial", "--from-run", rid, "--tracking-uri", uri], elsewhere / "store", env=cli_env(elsewhere))
    assert r.returncode == 0 and "reproduced exactly" in r.stdout, out(r)[-3000:]
    assert "unchanged" in r.stderr
    edited = elsewhere / "lowrank.py"
    edited.write_text(edited.read_text().replace("return y + self.bias", "return 0.5 * y + self.bias"))
    r = ablate(["trial", "--from-run", rid, "--tracking-uri", uri], elsewhere / "store", env=cli_env(elsewhere))
    assert r.returncode == 0 and "reproduced exactly" in r.stdout, out(r)[-3000:]    # with the recorded copy
    assert f"{edited} (sha256" in r.stderr and "recorded copies" in r.stderr, r.stderr[-2000:]


def _needy(elsewhere: Path, tmp_path: Path) -> Path:
    """A layer whose module needs a file that is on the driver's path only (a PYTHONPATH folder), not listed in
    imports: it imports, validates and passes the pre-flight on the driver, and fails on a worker node."""
    (tmp_path / "driver_only").mkdir()
    (tmp_path / "driver_only" / "lowrank_helpers.py").write_text("SCALE = 1.0\n")
    (tmp_path / "needy.py").write_text((elsewhere / "lowrank.py").read_text().replace(
        "from components.registry import Range, register",
        "from components.registry import Range, register\nimport lowrank_helpers  # noqa: F401").replace(
        '"lowrank")', '"needy")'))
    sweep = (elsewhere / "lowrank.yaml").read_text().replace("[lowrank.py]", "[needy.py]").replace(
        "[dense, lowrank]", "[dense, needy]").replace("name: lowrank_digits", "name: needy_digits")
    return Path(write_text(tmp_path / "needy.yaml", sweep))


def write_text(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


def test_the_sweep_runs_on_a_two_node_cluster_whose_worker_never_saw_the_files(elsewhere, tmp_path):
    """Acceptance 3 and 5: the plugin sweep on a real two-node cluster (ray start head + worker), the worker
    started elsewhere with only the checkout on its path; then a layer that needs a driver-only file fails each
    trial once, with the reason, and is not retried."""
    rt = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))     # short: Ray's socket paths < 107 characters
    env = {k: v for k, v in cli_env(tmp_path).items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="disabled", RAY_TMPDIR=str(rt))
    port, ray = free_port(), shutil.which("ray") or str(Path(os.sys.executable).parent / "ray")
    try:
        head = subprocess.run([ray, "start", "--head", "--num-cpus=0", f"--port={port}", "--include-dashboard=false",
                               f"--temp-dir={rt}"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert head.returncode == 0, out(head)[-3000:]
        # the worker starts in another directory, with the checkout (not the user's folder) on its path
        worker_env = {**env, "PYTHONPATH": str(ROOT)}
        wk = subprocess.run([ray, "start", f"--address=127.0.0.1:{port}", "--num-cpus=2"], env=worker_env, cwd="/",
                            capture_output=True, text=True, timeout=180)
        assert wk.returncode == 0, out(wk)[-3000:]
        uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
        r = ablate(["run", elsewhere / "lowrank.yaml", "--address", f"127.0.0.1:{port}", "--tracking-uri", uri,
                    *SMALL], tmp_path, env=env)
        assert r.returncode == 0, out(r)[-4000:]
        runs = _runs(uri, "lowrank_digits")
        assert len(runs) == 3 and all(x.info.status == "FINISHED" for x in runs)
        plugin = [x for x in runs if "lowrank" in x.data.tags["ablate.cell"]]
        for x in plugin:              # imported on the worker from Ray's copy (py_modules), not the user's folder
            where = json.loads(x.data.tags["ablate.code_from"])["lowrank"]
            assert str(elsewhere) not in where and "runtime_resources" in where, where

        needy = _needy(elsewhere, tmp_path)
        uri2 = f"sqlite:///{tmp_path / 'store2' / 'mlflow.db'}"
        denv = {**env, "PYTHONPATH": f"{ROOT}:{tmp_path / 'driver_only'}"}
        r = ablate(["run", needy, "--address", f"127.0.0.1:{port}", "--tracking-uri", uri2, *SMALL], tmp_path / "store",
                   env=denv)
        assert r.returncode == 1, out(r)[-4000:]
        runs = _runs(uri2, "needy_digits")
        failed = [x for x in runs if x.info.status == "FAILED"]
        # every trial imports the sweep file's code first, the baseline's too: one FAILED run per trial
        assert len(runs) == len(failed) == 3, [(x.data.tags["ablate.cell"], x.info.status) for x in runs]
        for x in failed:              # not retried, the user's module named with the fix
            t = x.data.tags
            assert t["ablate.failure_kind"] == "setup" and "ablate.retries" not in t, t
            assert "lowrank_helpers" in t["ablate.failure_reason"] and "needy.py" in t["ablate.failure_reason"]
    finally:
        kill_matching(str(rt))
        shutil.rmtree(rt, ignore_errors=True)


def test_a_suite_study_may_import_its_own_code(elsewhere, tmp_path):
    """imports: at the top of a suite, in its defaults or in one study: imported before that study validates."""
    shutil.copy(elsewhere / "lowrank.py", tmp_path / "lowrank.py")
    (tmp_path / "suite.yaml").write_text(
        "name: suite_own\ndefaults:\n  task: digits\n  metric: {name: test_acc, mode: max}\n"
        "  baseline: {model.linear: dense}\n  fixed: {train.epochs: 1, data.train_limit: 100}\nstudies:\n"
        "  a:\n    imports: [lowrank.py]\n    scientific: {model.linear: [dense, lowrank]}\n"
        "  b:\n    scientific: {model.linear: [dense, cdlinear]}\n")
    r = ablate(["run", "suite.yaml", "--dry-run"], tmp_path, env=cli_env(tmp_path))
    assert r.returncode == 0, out(r)
    assert "model.linear=lowrank seed=0" in r.stdout and "component model.linear=lowrank" in r.stdout
    (tmp_path / "bad.yaml").write_text((tmp_path / "suite.yaml").read_text().replace("[lowrank.py]", "[nope.py]"))
    r = ablate(["run", "bad.yaml", "--dry-run"], tmp_path, env=cli_env(tmp_path))
    assert r.returncode == 2 and "studies.a.imports[0]" in r.stderr and "nope.py" in r.stderr, out(r)
