"""Smoke runs of the CDLinear sweeps (cdlinear_block.yaml, quick.yaml) on real Ray + MLflow."""
from __future__ import annotations

import pytest

from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from tests.helpers import SWEEPS


# quick.yaml in the default suite: tests/sweeps/test_cli_cost.py (--smoke) and test_report_browser.py (make demo)
@pytest.mark.parametrize("sweep", ["cdlinear_block.yaml", pytest.param("quick.yaml", marks=pytest.mark.slow)])
def test_smoke(sweep_runner, tmp_path, sweep):
    summary, runs = sweep_runner(SWEEPS / sweep, smoke=True)
    assert summary["counts"] == {"trials": 3, "finished": 3, "failed": 0}
    assert set(runs["status"]) == {"FINISHED"}
    assert sorted(runs["n_params"]) == [1296, 2380, 8970]
    assert (runs["metrics.epoch"] == 2).all() and runs["metrics.test_acc"].between(0, 100).all()
    table = ablation_table(runs)
    assert table["baseline"].sum() == 1 and "8,970" in render(table, "md")
    assert plot_ablation(runs, table, tmp_path / "p.png").stat().st_size > 10_000
