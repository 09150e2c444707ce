"""sweeps/cds_type.yaml at --smoke through real Ray Tune and a real MLflow store:
every cell finishes with its params, the clean and rotation-range metrics, and the
table and plot render; model.cds_settings (paper vs the authors' code, issue 25) as an
axis from the command line, and its bad values and conflicts as one-line errors (exit 2)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from tasks.complex_classification.rotations import rotation_metric_names
from tests.helpers import ablate, assert_clean_error, out

SWEEP = Path(__file__).resolve().parents[2] / "sweeps" / "cds_type.yaml"


def test_smoke_cds_type(sweep_runner, tmp_path):
    summary, runs = sweep_runner(SWEEP, smoke=True)
    assert summary["counts"] == {"trials": 12, "finished": 12, "failed": 0}
    assert len(runs) == 12 and set(runs["status"]) == {"FINISHED"}
    cells = set(zip(runs["params.model.type"], runs["params.data.encoding"]))
    assert cells == {(t, e) for t in ("type_i", "type_e", "dcn", "real") for e in ("rgb", "lab", "sliding")}
    assert set(runs["params.data.name"]) == {"digits"} and set(runs["params.train.epochs"]) == {1}
    assert set(runs["params.model.cds_settings"]) == {"paper"}          # the one-value axis (issue 25)
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
    assert table.loc[table["baseline"], "cell"].iloc[0] == "model.type=dcn,data.encoding=lab,model.cds_settings=paper"
    assert "baseline" in render(table, "md")
    rob = ablation_table(runs, metric="acc_rot_1pi")
    assert rob["mean"].notna().all()
    out = plot_ablation(runs, table, tmp_path / "cds.png", title="cds_type smoke")
    assert Path(out).stat().st_size > 5_000


def test_smoke_cds_settings_axis(sweep_runner):
    """The preset as a scientific axis (the docs' comparison, narrowed to Type E on LAB)."""
    axis = {"model.cds_settings": "[paper,reference_code]", "model.type": "type_e", "data.encoding": "lab",
            "baseline.model.type": "type_e", "baseline.model.cds_settings": "paper"}
    summary, runs = sweep_runner(SWEEP, overrides=axis, smoke=True)
    assert summary["counts"] == {"trials": 2, "finished": 2, "failed": 0}
    assert sorted(runs["params.model.cds_settings"]) == ["paper", "reference_code"]
    assert set(runs["params.model.init"]) == {"preset"}       # left to the preset, which the tag resolves
    ran = dict(zip(runs["params.model.cds_settings"], runs["tags.ablate.effective_settings"]))
    assert ran["reference_code"] == ("model.init=reference, model.omega_constraint=reference, "
                                     "model.prototype_scale=reference, optim.beta1=0.9")
    assert ran["paper"] == "model.init=fan_in, model.omega_constraint=none, model.prototype_scale=mean, optim.beta1=0.99"
    assert (runs["n_params"] == 23697).all()


def test_tasks_lists_the_settings_keys(tmp_path):
    r = ablate(["tasks", "complex_classification"], tmp_path)
    assert r.returncode == 0, out(r)
    for key in ("model.cds_settings", "model.init", "model.omega_constraint", "model.prototype_scale", "optim.beta1"):
        assert f"  {key} " in r.stdout, key
    assert "one of paper, reference_code" in r.stdout


def test_dry_run_shows_the_settings(tmp_path):
    r = ablate(["run", SWEEP, "--dry-run", "--smoke", "--verbose"], tmp_path)
    assert r.returncode == 0, out(r)
    cells = [ln for ln in r.stdout.splitlines() if ln.strip().startswith("[")]
    assert len(cells) == 12 and all("model.cds_settings=paper seed=" in ln for ln in cells)
    assert '"model.cds_settings": "paper"' in r.stdout and '"optim.beta1": "preset"' in r.stdout
    r = ablate(["run", SWEEP, "--dry-run", "--smoke", "--set", "model.cds_settings=[paper,reference_code]"], tmp_path)
    assert r.returncode == 0, out(r)
    assert "24 trials" in r.stdout and "model.type=type_e,data.encoding=lab,model.cds_settings=reference_code" in r.stdout


@pytest.mark.parametrize("sets,words", [
    (["model.cds_settings=foo"], ["model.cds_settings", "'foo'", "one of 'paper', 'reference_code'"]),
    (["model.cds_settings=reference_code", "optim.beta1=0.99"],
     ["optim.beta1=0.99 conflicts with model.cds_settings=reference_code"]),
    (["model.type=type_e", "model.prototype_scale=sum"], ["model.prototype_scale", "'sum'"]),
    (["optim.beta1=fast"], ["optim.beta1", "'fast'", "'preset'"]),
])
def test_bad_settings_exit_2_with_one_line(tmp_path, sets, words):
    r = ablate(["run", SWEEP, "--smoke", *[a for s in sets for a in ("--set", s)]], tmp_path)
    assert_clean_error(r, 2, *words)

