"""Smoke run of sweeps/cfu_order.yaml (the physics studies of the
cfu_order suite): real local Ray, real MLflow sqlite store."""
from __future__ import annotations

import pytest

from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from sweeps.language.load import load_all
from tests.helpers import SWEEPS

FILE = SWEEPS / "cfu_order.yaml"
METRICS = ("test_traj_mse", "test_energy_mse", "test_loss", "train_loss")


def test_suite_validates_every_study():
    studies = load_all(str(FILE), only=["two_body", "three_body", "pendulum", "bouncing_ball"])
    assert [s.experiment for s in studies] == [f"cfu_order.{k}" for k in ("two_body", "three_body", "pendulum", "bouncing_ball")]
    for s in studies:
        assert s.metric == "test_traj_mse" and s.mode == "min" and s.seeds == [0, 1, 2]
        assert s.scientific == {"model.fusion": ["none", "add", "cfu"], "model.order": list(range(1, 10)),
                                "model.fusion_form": ["eq4"]}


@pytest.mark.parametrize("key", ["pendulum"])
def test_smoke_cfu_order_physics(sweep_runner, key):
    (study,) = load_all(str(FILE), smoke=True, only=[key])
    assert study.experiment == f"cfu_order.{key}"
    summary, runs = sweep_runner(FILE, only=[key])
    # none (the reference HNN) + add + CFU orders 1..9, one seed each
    assert summary["counts"] == {"trials": 11, "finished": 11, "failed": 0}
    assert set(runs["status"]) == {"FINISHED"}
    fusion = runs["params.model.fusion"]
    assert sorted(fusion.value_counts().items()) == [("add", 1), ("cfu", 9), ("none", 1)]
    assert runs.loc[fusion != "cfu", "params.model.order"].isna().all()
    cfu = runs[fusion == "cfu"]
    assert sorted(cfu["params.model.order"]) == list(range(1, 10)) and set(cfu["params.model.fusion_form"]) == {"eq4"}
    for m in METRICS:
        assert runs[f"metrics.{m}"].notna().all() and (runs[f"metrics.{m}"] >= 0).all()
    # CFU adds exactly d + 1 parameters to the MLP (Sec. III-C); none and add have the same count
    sizes = cfu.set_index("params.model.order")["n_params"]
    assert all(sizes[d + 1] - sizes[d] == 1 for d in range(1, 9))
    base = runs.loc[fusion == "none", "n_params"].item()
    assert runs.loc[fusion == "add", "n_params"].item() == base and sizes[4] == base + 5
    table = ablation_table(runs)
    assert len(table) == 11 and table.loc[table["baseline"], "cell"].item() == "model.fusion=none"
    assert "model.order" in render(table, "md")
    assert plot_ablation(runs, table, sweep_runner.tmp / f"cfu_order_{key}.png").stat().st_size > 0
