"""analysis/costs.py on a hand-made runs frame: trial_s is each run's epoch_seconds summed (load_runs' train_s)
plus the probe's own time, over every run of the cell (failed ones too), and not MLflow's start-to-end span
(which holds a fresh worker's imports); ratios are to the baseline cell."""
import numpy as np
import pandas as pd

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
