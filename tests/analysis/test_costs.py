"""analysis/costs.py on a hand-made runs frame: trial_s is each run's epoch_seconds summed (load_runs' train_s)
plus the probe's own time, over every run of the cell (failed ones too), and not MLflow's start-to-end span
(which holds a fresh worker's imports); ratios are to the baseline cell."""
import numpy as np
import pandas as pd
import pytest

from analysis import contract as C
from analysis.costs import add_costs


def test_trial_seconds_and_ratios():
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    runs = pd.DataFrame({
        "cell": ["a", "a", "b"], "status": ["FINISHED", "FAILED", "FINISHED"],
        "train_s": [1.5, 0.25, 2.0],
        C.column("ablate.cost_s"): ["0.1", None, "0.2"],
        C.column(C.FLOPS_FWD): ["100", None, "400"], C.column(C.LATENCY_MS_B1): ["1.0", None, "3.0"],
        "start_time": [t0] * 3, "end_time": [t0 + pd.Timedelta(seconds=33)] * 3})
    table = pd.DataFrame({"cell": ["a", "b"], "baseline": [True, False], "params": [10, 5],
                          "epoch_s": [0.5, 1.0]})
    got = add_costs(table, runs).set_index("cell")
    assert np.isclose(got.loc["a", "trial_s"], 1.5 + 0.1 + 0.25)      # the failed run's epochs count too
    assert np.isclose(got.loc["b", "trial_s"], 2.2)
    assert got.loc["b", "flops_x"] == 4.0 and got.loc["b", "lat_b1_x"] == 3.0 and got.loc["b", "params_x"] == 0.5
    assert got.loc["b", "epoch_x"] == 2.0 and got.loc["a", "flops_x"] == 1.0
    no_history = add_costs(table.copy(), runs.drop(columns="train_s"))
    assert no_history["trial_s"].isna().all()                        # not the start-to-end span


def _write(c, exp, cell, seed, phase, seconds, gpus=None, cost_s=0.5, status="FINISHED"):
    """One run as sweeps/runner/tracker.py writes it: tags, an epoch_seconds history, the probe's time."""
    from mlflow.entities import Metric

    tags = {"ablate.cell": cell, "ablate.seed": str(seed), "ablate.launch": "L1", "ablate.phase": phase,
            "ablate.metric": "score", "ablate.mode": "max", "ablate.baseline_cell": "m=a", "ablate.cost_s": str(cost_s)}
    if gpus is not None:
        tags["ablate.gpus"] = str(gpus)
    r = c.create_run(exp, tags=tags)
    now = 0
    metrics = [Metric("epoch_seconds", s, now, e + 1) for e, s in enumerate(seconds)] + [Metric("score", 0.5 + seed / 10,
                                                                                                 now, len(seconds))]
    c.log_batch(r.info.run_id, metrics=metrics)
    c.set_terminated(r.info.run_id, status)


def test_compute_seconds_with_gpus_and_search(mlflow_store):
    """Through a real MLflow store: trial_s / gpu_s over the final runs (a failed retry too), search_s /
    search_gpu_s over the search trials with the same cell tag, totals; a cell without a search has 0."""
    from mlflow.tracking import MlflowClient

    from analysis.store import load_runs
    from analysis.tables import ablation_table, csv_columns

    c = MlflowClient(mlflow_store)
    exp = c.create_experiment("costs_gpu")
    for seed in (0, 1, 2):                                   # m=a: 0.5 GPU per trial; m=b: 2 GPUs
        _write(c, exp, "m=a", seed, "final", [1.0, 2.0], gpus=0.5)
        _write(c, exp, "m=b", seed, "final", [3.0], gpus=2.0)
    _write(c, exp, "m=b", 3, "final", [4.0], gpus=2.0, status="FAILED")     # counted: it ran
    for i in range(4):                                       # m=a was tuned by 4 search trials, m=b by none
        _write(c, exp, "m=a", 0, "search", [0.25 * (i + 1)], gpus=0.5, cost_s=0.0)
    runs = load_runs("costs_gpu", mlflow_store)
    assert set(runs["cell"]) == {"m=a", "m=b"} and len(runs) == 7       # the search runs are not rows
    t = ablation_table(runs).set_index("cell")
    assert t.loc["m=a", "trial_s"] == pytest.approx(3 * (3.0 + 0.5))
    assert t.loc["m=a", "gpu_s"] == pytest.approx(0.5 * 3 * 3.5)
    assert t.loc["m=b", "trial_s"] == pytest.approx(3 * 3.5 + 4.5)
    assert t.loc["m=b", "gpu_s"] == pytest.approx(2.0 * (3 * 3.5 + 4.5))
    assert t.loc["m=a", "search_n"] == 4 and t.loc["m=a", "search_s"] == pytest.approx(0.25 * 10)
    assert t.loc["m=a", "search_gpu_s"] == pytest.approx(0.5 * 2.5)
    assert t.loc["m=b", "search_n"] == 0 and t.loc["m=b", "search_s"] == 0.0
    assert t.loc["m=a", "total_s"] == pytest.approx(10.5 + 2.5)
    assert t.loc["m=a", "total_gpu_s"] == pytest.approx(0.5 * 13.0)
    assert {"trial_s", "gpu_s", "search_s", "search_gpu_s", "total_s", "total_gpu_s"} <= set(csv_columns(t))
    from analysis.costs import render_cost

    md = render_cost(t.reset_index(), "md")
    assert "search-s" in md and "GPU-s" in md and "| 2.5 " in md and "| 6.5 " in md


def test_gpu_seconds_unknown_without_the_tag():
    """Runs from before trainable annotated ablate.gpus: GPU-seconds NaN (unknown), not 0."""
    runs = pd.DataFrame({"cell": ["a"], "status": ["FINISHED"], "train_s": [2.0]})
    table = pd.DataFrame({"cell": ["a"], "baseline": [True], "params": [1], "epoch_s": [1.0]})
    got = add_costs(table, runs)
    assert got.loc[0, "trial_s"] == 2.0 and np.isnan(got.loc[0, "gpu_s"]) and np.isnan(got.loc[0, "total_gpu_s"])
    assert got.loc[0, "search_s"] == 0.0 and got.loc[0, "total_s"] == 2.0
