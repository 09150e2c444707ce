"""Adaptive seeds end to end through the CLI (issue: a sweep adds seeds only
where a comparison is still undecided).

The toy task has known answers: `model.shift` is the true effect, `eval.noise`
the seed-to-seed SD (σ = 0.01).  Cells: the baseline (shift 0), a large effect
(100 σ), a null (1e-6, i.e. 0), and a small one (1.2 σ), with `min_effect`
2.5 σ under a Pocock design over looks [3, 5, 8, 12].  Expected: the large
cell stops at look 1 as better, the null stops as equivalent before the last
look, the small one runs to the last look.  The toy's noise is a fixed function
of (seed, settings) (tasks/toy.py), so this realisation is the same on every
machine; the design itself is what the Monte Carlo tests of analysis/stats/simulate.py
check.
"""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import ABLATE, ablate, cli_env, out, write_yaml

SIGMA = 0.01
CELLS = {"baseline": 0.0, "large": 1.0, "null": 1e-6, "small": 1.2 * SIGMA}


def _sweep(name: str, tmp: Path, sleep: float = 0.0) -> dict:
    return {"name": name, "task": "toy", "metric": {"name": "score", "mode": "max"},
            "baseline": {"model.shift": 0.0}, "seeds": {"looks": [3, 5, 8, 12]},
            "fixed": {"train.epochs": 2, "eval.noise": SIGMA, "train.sleep": sleep},
            "scientific": {"model.shift": list(CELLS.values())},
            "analysis": {"alpha": 0.05, "spending": "pocock", "min_effect": 2.5 * SIGMA},
            "resources": {"cpu": 1}, "max_failures": 1}


def _table(tmp: Path, name: str, uri: str) -> pd.DataFrame:
    r = ablate(["table", name, "--format", "csv", "--tracking-uri", uri], tmp)
    assert r.returncode == 0, out(r)
    return pd.read_csv(io.StringIO(r.stdout)).set_index("model.shift")


def _runs(uri: str, name: str):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(name)
    return [r for r in c.search_runs([exp.experiment_id]) if r.data.tags.get("ablate.phase") == "final"]


def _launch_killed_in_the_second_look(tmp: Path, uri: str) -> dict:
    """Starts the adaptive launch, SIGKILLs its driver once a run of the second look has finished, asks
    for a resume with changed analysis settings (refused), then resumes it: what each step printed."""
    f = write_yaml(tmp / "looks.yaml", _sweep("looks", tmp, sleep=0.5))
    from mlflow.tracking import MlflowClient

    Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True)
    MlflowClient(uri).search_experiments()    # the schema exists before the test polls the store
    with open(tmp / "driver.log", "w") as log:     # a file: a pipe nobody reads would stall the driver
        p = subprocess.Popen([*ABLATE, "run", str(f), "--tracking-uri", uri, "--no-table"], cwd=tmp,
                             env=cli_env(tmp), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    in_look2 = []
    while time.time() < deadline and p.poll() is None:
        try:
            in_look2 = [x for x in _runs(uri, "looks") if x.data.tags.get("ablate.look") == "1"
                        and x.info.status == "FINISHED"]
        except Exception:  # noqa: BLE001 - the launch is still creating its experiment
            in_look2 = []
        if in_look2:
            break
        time.sleep(0.2)
    assert in_look2, f"the second look never started:\n{(tmp / 'driver.log').read_text()[-3000:]}"
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    before = len(_runs(uri, "looks"))
    refused = ablate(["run", f, "--tracking-uri", uri, "--resume", "--no-table", "--set", "analysis.alpha=0.1",
                      "--set", "analysis.spending=hsd"], tmp)
    after_refused = len(_runs(uri, "looks"))
    resumed = ablate(["run", f, "--tracking-uri", uri, "--resume", "--no-table"], tmp)
    return {"before": before, "refused": refused, "after_refused": after_refused, "resumed": resumed}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The adaptive launch through the CLI, its driver SIGKILLed in the second look and the launch resumed:
    (its folder, its store, what the kill and resumes printed).  The known-answer test below runs on this
    resumed launch; the slow test compares it with an uninterrupted one, column by column."""
    tmp = tmp_path_factory.mktemp("looks")
    uri = f"sqlite:///{tmp / 'kill' / 'mlflow.db'}"
    return tmp, uri, _launch_killed_in_the_second_look(tmp, uri)


def test_cells_stop_where_their_comparison_is_decided(finished):
    tmp_path, uri, _ = finished
    r = ablate(["run", tmp_path / "looks.yaml", "--dry-run"], tmp_path)
    assert r.returncode == 0 and "| 1 | 3 |" in r.stdout and "Pocock" in r.stdout, out(r)
    assert "Holm step-down from 0.05/3" in r.stdout and "alpha/(m - r)" in r.stdout, out(r)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("Expected (2000 simulated studies"))
    trials = [float(x) for x in re.findall(r"(\d+\.\d) \([+-]\d+ %\)", line)]
    assert len(trials) == 3 and trials[0] >= trials[2] and max(trials) <= 48 and "of at most 48" in line, line
    r = ablate(["run", tmp_path / "looks.yaml", "--dry-run", "--set", "analysis.correction=bonferroni"], tmp_path)
    assert r.returncode == 0 and "Bonferroni 0.05/3" in r.stdout and "Holm" not in r.stdout, out(r)
    r = ablate(["run", tmp_path / "looks.yaml", "--dry-run", "--set", "analysis.spending=hsd",
                "--set", "analysis.hsd_gamma=-2"], tmp_path)
    assert r.returncode == 0 and "Hwang-Shih-DeCani (gamma = -2) spending" in r.stdout, out(r)
    t = _table(tmp_path, "looks", uri)
    large, null, small = (t.loc[CELLS[k]] for k in ("large", "null", "small"))
    assert (large["verdict"], large["look"], large["n"]) == ("better", 0, 3)
    assert null["verdict"] == "equivalent" and null["look"] < 3 and null["n"] < 12
    assert small["look"] == 3 and small["n"] == 12
    assert t.loc[0.0, "n"] == 12, "the baseline runs at every look a cell reaches"
    runs = _runs(uri, "looks")
    keys = [(r.data.tags["ablate.cell"], r.data.params["seed"]) for r in runs]
    assert len(keys) == len(set(keys)) == 3 + int(null["n"]) + 12 + 12, "one run per (cell, seed) trial"
    for r in runs:                          # every run is tagged with the look that ran it
        look = int(r.data.tags["ablate.look"])
        assert int(r.data.params["seed"]) < [3, 5, 8, 12][look]
    md = ablate(["table", "looks", "--tracking-uri", uri], tmp_path).stdout
    assert "Adaptive seeds: group-sequential Welch t" in md and "RCI" in md, md


def test_a_driver_killed_in_the_second_look_resumes_and_refuses_changed_analysis_settings(finished):
    tmp_path, uri, kill = finished
    r = kill["refused"]
    assert r.returncode == 2 and "Traceback" not in out(r), out(r)[-3000:]
    assert "analysis.alpha was 0.05, now 0.1; analysis.hsd_gamma was None, now -4.0; analysis.spending was " \
           "'pocock', now 'hsd'" in out(r), out(r)[-3000:]
    assert kill["after_refused"] == kill["before"], "a refused resume ran nothing"
    assert kill["resumed"].returncode == 0, out(kill["resumed"])[-3000:]
    assert kill["before"] < len(_runs(uri, "looks")), "the kill left the launch unfinished"
    # one parent run across the kill and the resume, and every trial nested under it (the MLflow UI's tree)
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    everything = c.search_runs([c.get_experiment_by_name("looks").experiment_id], max_results=1000)
    parents = [x for x in everything if x.data.tags.get("ablate.phase") == "launch"]
    state = json.loads(next((tmp_path / "home").rglob("looks.ablate.json")).read_text())
    assert [x.info.run_id for x in parents] == [state["parent_run_id"]] and parents[0].info.status == "FINISHED"
    assert {x.data.tags.get("mlflow.parentRunId") for x in _runs(uri, "looks")} == {state["parent_run_id"]}


@pytest.mark.slow      # default suite: the two tests above check the resumed launch's known answers, one run per trial
def test_a_driver_killed_in_the_second_look_resumes_to_the_same_table(tmp_path, finished):
    _, uri, _ = finished
    ref_uri = f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}"
    r = ablate(["run", write_yaml(tmp_path / "ref.yaml", _sweep("looks", tmp_path)), "--tracking-uri", ref_uri,
                "--no-table"], tmp_path)
    assert r.returncode == 0, out(r)[-4000:]
    got, want = _table(tmp_path, "looks", uri), _table(tmp_path, "looks", ref_uri)
    from analysis.costs import COLUMNS
    measured = (set(COLUMNS) | {"epoch_s"}) - {"params", "params_x", "flops_fwd", "flops_step", "flops_x"}
    cols = [c for c in want.columns if c not in measured]        # timings and memory differ, nothing else may
    pd.testing.assert_frame_equal(got[cols], want[cols])
    keys = [(x.data.tags["ablate.cell"], x.data.params["seed"]) for x in _runs(uri, "looks")]
    assert len(keys) == len(set(keys)) == int(want["n"].sum()), "a trial was lost or run twice"
