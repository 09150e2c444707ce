"""Real Ray Tune sweeps (local Ray, 2 CPUs) tracked in a real MLflow sqlite store."""
from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from analysis.tables import ablation_table, render
from sweeps.cli.main import main as ablate


def write(tmp_path, data, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return p


def test_digits_slice_one_finished_run_per_trial(sweep_runner, tmp_path, capsys):
    """Acceptance 2 and 3 of the platform-core issue, at a shortened schedule."""
    sweep = write(tmp_path, {
        "name": "digits-it", "task": "digits", "metric": {"name": "test_acc", "mode": "max"},
        "baseline": {"model.linear": "dense"}, "seeds": [0, 1],
        "fixed": {"train.epochs": 2, "data.train_limit": 300},
        "scientific": {"model.linear": ["dense", "cdlinear"], "model.block_size": [4, 8]},
        "resources": {"cpu": 1}, "max_failures": 1, "artifacts": {"checkpoints": True}})
    summary, runs = sweep_runner(sweep, smoke=False)
    assert summary["counts"] == {"trials": 6, "finished": 6, "failed": 0}
    # requested checkpoints and the table/plot reach the artifact store
    from mlflow.tracking import MlflowClient

    c0 = MlflowClient(sweep_runner.uri)
    for rid in runs["run_id"]:
        assert [a.path for a in c0.list_artifacts(rid, "checkpoint")] == ["checkpoint/state.pt"]
    from analysis.store import load_runs

    # the launch is one parent run holding the sweep as run, table, plot and report; every trial is its child
    parent = load_runs("digits-it", sweep_runner.uri, phase="launch", launch=summary["launch"])
    assert len(parent) == 1 and parent["status"].item() == "FINISHED"
    assert {a.path for a in c0.list_artifacts(parent["run_id"].iloc[0])} == {
        "plot.png", "table.md", "table.tex", "table.csv", "report.html", "sweep.yaml", "provenance"}
    assert (runs["tags.mlflow.parentRunId"] == parent["run_id"].item()).all()
    assert len(runs) == 6 and set(runs["status"]) == {"FINISHED"}
    assert runs["tags.ablate.trial_key"].is_unique
    # params: the flattened trial config including the seed; block_size only where it applies
    assert sorted(runs["params.seed"]) == [0, 0, 0, 1, 1, 1]
    dense = runs[runs["params.model.linear"] == "dense"]
    assert dense["params.model.block_size"].isna().all()
    assert set(runs.loc[runs["params.model.linear"] == "cdlinear", "params.model.block_size"]) == {4, 8}
    assert set(runs["params.train.epochs"]) == {2}
    for col in ("metrics.test_acc", "metrics.train_loss", "metrics.epoch_seconds"):
        assert runs[col].notna().all(), col
    for tag in ("sweep", "cell", "trial_id", "git_commit", "hostname", "n_params"):
        assert runs[f"tags.ablate.{tag}"].notna().all(), tag
    by_cell = runs.groupby("cell")["n_params"].first().to_dict()
    assert by_cell == {"model.linear=dense": 8970, "model.linear=cdlinear,model.block_size=4": 2380,
                       "model.linear=cdlinear,model.block_size=8": 1296}
    # per-epoch history: one value per epoch, no duplicates
    from mlflow.tracking import MlflowClient

    c = MlflowClient(sweep_runner.uri)
    for rid in runs["run_id"]:
        steps = [m.step for m in c.get_metric_history(rid, "test_acc")]
        assert steps == [1, 2]

    # the table's means are the runs' values
    table = ablation_table(runs)
    for _, row in table.iterrows():
        vals = runs.loc[runs["cell"] == row["cell"], "metrics.test_acc"].to_numpy(float)
        assert row["mean"] == pytest.approx(vals.mean(), abs=1e-12)
        assert row["std"] == pytest.approx(vals.std(ddof=1), abs=1e-12)
        assert row["n"] == 2
    base = table[table["baseline"]]
    assert list(base["cell"]) == ["model.linear=dense"]
    b4 = table[table["cell"] == "model.linear=cdlinear,model.block_size=4"].iloc[0]
    assert b4["delta"] == pytest.approx(b4["mean"] - base["mean"].iloc[0])
    md = render(table, "md")
    assert "8,970" in md and "2,380" in md and "1,296" in md and "baseline" in md and "**" in md
    assert r"\textbf" in render(table, "latex")
    assert render(table, "csv").splitlines()[0].startswith("model.linear,model.block_size,n,")

    # acceptance 3: `ablate trial --from-run` reproduces the recorded final accuracy exactly
    rid = runs.loc[runs["cell"] == "model.linear=cdlinear,model.block_size=8", "run_id"].iloc[0]
    capsys.readouterr()
    assert ablate(["trial", "--from-run", rid, "--tracking-uri", sweep_runner.uri]) == 0
    assert "reproduced exactly" in capsys.readouterr().out

    # table and plot through the CLI
    assert ablate(["table", "digits-it", "--tracking-uri", sweep_runner.uri]) == 0
    out = tmp_path / "p.png"
    assert ablate(["plot", "digits-it", "--tracking-uri", sweep_runner.uri, "-o", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_nuisance_search_per_cell_then_all_seeds(sweep_runner, tmp_path):
    sweep = write(tmp_path, {
        "name": "search-it", "task": "toy", "metric": {"name": "score"}, "seeds": [0, 1],
        "baseline": {"model.kind": "plain"},
        "fixed": {"train.epochs": 4},
        "scientific": {"model.kind": ["plain", "fancy"], "model.width": [8]},
        "nuisance": {"optim.lr": {"loguniform": [0.001, 0.5]}},
        "search": {"trials_per_cell": 4, "scheduler": "asha", "grace_period": 1, "reduction_factor": 2}})
    summary, runs = sweep_runner(sweep, smoke=False)
    assert summary["phases"]["search"]["trials"] == 8
    assert summary["counts"] == {"trials": 4, "finished": 4, "failed": 0}
    from analysis.store import load_runs

    search = load_runs("search-it", sweep_runner.uri, phase="search", launch=summary["launch"])
    assert len(search) == 8 and set(search["status"]) == {"FINISHED"}
    assert search.groupby("cell").size().to_dict() == {"model.kind=fancy,model.width=8": 4, "model.kind=plain": 4}
    assert set(search["params.seed"]) == {2}       # tuning seed: the smallest outside seeds: [0, 1] (issue 21)
    # ASHA stopped some search trials early (reduction factor 2 over 4 epochs)
    assert (search["metrics.epoch"] < 4).any()
    for cell, g in search.groupby("cell"):
        full = g[g["metrics.epoch"] == g["metrics.epoch"].max()]
        best_lr = full.loc[full["metrics.score"].idxmax(), "params.optim.lr"]
        final_lrs = set(runs.loc[runs["cell"] == cell, "params.optim.lr"])
        assert final_lrs == {best_lr}, (cell, final_lrs, best_lr)
    assert sorted(runs["params.seed"]) == [0, 0, 1, 1]


def test_diverged_trial_fails_with_reason_and_sweep_continues(sweep_runner, tmp_path):
    sweep = write(tmp_path, {
        "name": "nan-it", "task": "toy", "metric": {"name": "score"}, "seeds": [0, 1],
        "fixed": {"train.epochs": 3, "fault.epoch": 2},
        "scientific": {"fault.kind": ["none", "nan"]}, "baseline": {"fault.kind": "none"},
        "max_failures": 3})
    summary, runs = sweep_runner(sweep, smoke=False)
    assert summary["counts"] == {"trials": 4, "finished": 2, "failed": 2}
    bad = runs[runs["params.fault.kind"] == "nan"]
    assert set(bad["status"]) == {"FAILED"}
    assert bad["failure_reason"].str.contains("train_loss became nan at epoch 2").all()
    assert "tags.ablate.retries" not in bad or bad["tags.ablate.retries"].isna().all(), \
        "a divergence must not be retried"
    table = ablation_table(runs)
    row = table[table["cell"] == "fault.kind=nan"].iloc[0]
    assert row["failed"] == 2 and row["n"] == 0 and math.isnan(row["mean"])
    assert table[table["cell"] == "fault.kind=none"].iloc[0]["n"] == 2


# in the default suite: tests/sweeps/test_throughput.py::test_sigkill_between_time_based_checkpoints_resumes_from_the_
# last_one and tests/cluster/test_fake_multinode.py::test_a_gpu_node_killed_mid_sweep_loses_no_run
@pytest.mark.slow
def test_sigkilled_trial_resumes_from_checkpoint_without_duplicates(sweep_runner, tmp_path):
    marker_dir = tmp_path / "markers"
    sweep = write(tmp_path, {
        "name": "kill-it", "task": "toy", "metric": {"name": "score"}, "seeds": [0, 1],
        "fixed": {"train.epochs": 4, "fault.kind": "kill", "fault.epoch": 3, "fault.dir": str(marker_dir)},
        "scientific": {"model.kind": ["plain"]}, "max_failures": 2,
        "checkpoint": {"every_s": 0}})           # a checkpoint every epoch: the retry must restore one
    summary, runs = sweep_runner(sweep, smoke=False)
    assert summary["counts"] == {"trials": 2, "finished": 2, "failed": 0}
    assert len(list((marker_dir / "markers").iterdir())) == 2, "each trial was killed once"
    assert len(runs) == 2 and set(runs["status"]) == {"FINISHED"}
    assert set(runs["tags.ablate.retries"]) == {"1"}
    from mlflow.tracking import MlflowClient

    c = MlflowClient(sweep_runner.uri)
    for rid in runs["run_id"]:
        assert [m.step for m in c.get_metric_history(rid, "score")] == [1, 2, 3, 4]
    # the retry resumed from the epoch-2 checkpoint: results equal an uninterrupted run
    clean = write(tmp_path, {**yaml.safe_load(sweep.read_text()), "name": "kill-ref",
                             "fixed": {"train.epochs": 4}}, "ref.yaml")
    _, ref = sweep_runner(clean, smoke=False)
    got = runs.sort_values("seed")["metrics.score"].to_numpy()
    want = ref.sort_values("seed")["metrics.score"].to_numpy()
    np.testing.assert_array_equal(got, want)
