"""sweeps/cds_type.yaml at --smoke through real Ray Tune and a real MLflow store:
every cell finishes with its params, the clean and rotation-range metrics, and the
table and plot render."""
from __future__ import annotations

import math
from pathlib import Path

from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from tasks.complex_classification import rotation_metric_names

SWEEP = Path(__file__).resolve().parents[2] / "sweeps" / "cds_type.yaml"


def test_smoke_cds_type(sweep_runner, tmp_path):
    summary, runs = sweep_runner(SWEEP, smoke=True)
    assert summary["counts"] == {"trials": 12, "finished": 12, "failed": 0}
    assert len(runs) == 12 and set(runs["status"]) == {"FINISHED"}
    cells = set(zip(runs["params.model.type"], runs["params.data.encoding"]))
    assert cells == {(t, e) for t in ("type_i", "type_e", "dcn", "real") for e in ("rgb", "lab", "sliding")}
    assert set(runs["params.data.name"]) == {"digits"} and set(runs["params.train.epochs"]) == {1}
    # conditional keys only where they apply
    cds = runs["params.model.type"].isin(["type_i", "type_e"])
    assert runs.loc[cds, "params.model.metric"].notna().all()
    assert runs.loc[~cds, "params.model.metric"].isna().all()
    for m in ["test_acc", "val_acc", "train_loss", "test_acc_best_val", "rot_drop", *rotation_metric_names()]:
        assert runs[f"metrics.{m}"].notna().all(), m
    assert (runs["metrics.acc_rot_0"] == runs["metrics.test_acc"]).all()
    params = runs.groupby("params.model.type")["n_params"].max().to_dict()
    assert params["type_i"] < params["real"] < params["dcn"]
    # the invariant models are exactly phase invariant, even after one epoch
    for _, r in runs[cds].iterrows():
        accs = [r[f"metrics.{m}"] for m in rotation_metric_names()]
        assert max(accs) - min(accs) <= 0.5 and math.isclose(r["metrics.rot_drop"], 0.0, abs_tol=0.5)

    table = ablation_table(runs)
    assert len(table) == 12 and table["baseline"].sum() == 1
    assert table.loc[table["baseline"], "cell"].iloc[0] == "model.type=dcn,data.encoding=lab"
    assert "baseline" in render(table, "md")
    rob = ablation_table(runs, metric="acc_rot_1pi")
    assert rob["mean"].notna().all()
    out = plot_ablation(runs, table, tmp_path / "cds.png", title="cds_type smoke")
    assert Path(out).stat().st_size > 5_000
