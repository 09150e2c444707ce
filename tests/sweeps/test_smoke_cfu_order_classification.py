"""Smoke run of sweeps/cfu_order.yaml (the classification
studies of the cfu_order suite) through real local Ray and a real MLflow
sqlite store (PCNN's full 19-cell grid); the ResNet18 and MobileNetV2 studies
expand and run one trial in-process, to stay within the time budget."""
from __future__ import annotations

from analysis.paper import comparison
from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from sweeps.language.expand import final_trials
from sweeps.language.load import load_all
from sweeps.runner.trial import LocalReporter, run_trial
from tests.helpers import SWEEPS

FILE = SWEEPS / "cfu_order.yaml"
# fusion units at the smoke width (MobileNetV2's 8-channel floor makes more blocks shape-preserving)
UNITS = {"pcnn": 4, "resnet18": 8, "mobilenetv2": 12}


def _check_runs(runs, orders, arch):
    assert set(runs["status"]) == {"FINISHED"}
    assert set(runs["params.model.arch"]) == {arch} and set(runs["params.data.name"]) == {"digits"}
    add = runs[runs["params.model.fusion"] == "add"]
    assert len(add) == 1 and add["params.model.order"].isna().all()       # order does not multiply add
    for kind in ("cfu", "pu"):
        sub = runs[runs["params.model.fusion"] == kind]
        assert sorted(sub["params.model.order"].astype(int)) == orders
        # Sec. III-C: each unit adds exactly d + 1 parameters to the additive network
        extra = (sub["n_params"].astype(int) - int(add["n_params"].iloc[0])).tolist()
        assert extra == [UNITS[arch] * (int(d) + 1) for d in sub["params.model.order"]]
        assert (sub["tags.ablate.n_fusion_units"].astype(int) == UNITS[arch]).all()
    for m in ("test_acc", "train_loss", "train_acc"):
        assert runs[f"metrics.{m}"].notna().all(), m
    assert runs["metrics.test_acc"].between(0, 100).all()


def test_smoke_cfu_order_classification(sweep_runner):
    (pcnn,) = load_all(str(FILE), smoke=True, only=["pcnn"])
    assert pcnn.experiment == "cfu_order.pcnn" and pcnn.baseline == {"model.fusion": "add"}
    summary, runs = sweep_runner(FILE, only=["pcnn"])
    assert summary["counts"] == {"trials": 19, "finished": 19, "failed": 0}
    _check_runs(runs, list(range(1, 10)), "pcnn")
    table = ablation_table(runs)
    assert len(table) == 19 and table.loc[table["baseline"], "cell"].item() == "model.fusion=add"
    assert "model.order" in render(table, "md")
    assert plot_ablation(runs, table, sweep_runner.tmp / "pcnn.png").stat().st_size > 0
    # Table IV's CIFAR-100 rows are listed but never set beside these digits runs
    cmp = comparison("cfu_order.pcnn", table, runs)
    assert len(cmp) == 19 and cmp["ours"].isna().all() and set(cmp["source"]) == {"Table IV"}


def test_residual_backbone_studies_expand_and_run_one_trial():
    """ResNet18 / MobileNetV2 studies: the smoke grid expands to the same 19 cells
    with the backbone fixed, and their order-9 CFU trial runs in-process (the
    Ray + MLflow path is the PCNN test's; two more launches would double the time)."""
    for study in load_all(str(FILE), smoke=True, only=["resnet18", "mobilenetv2"]):
        arch = study.experiment.split(".")[1]
        trials = final_trials(study)
        assert len(trials) == 19 and {t.config["model.arch"] for t in trials} == {arch}
        assert all(t.config["model.stem"] == "cifar" for t in trials)
        assert [t.config.get("model.order") for t in trials if t.config["model.fusion"] == "add"] == [None]
        (cfu9,) = [t for t in trials if t.config["model.fusion"] == "cfu" and t.config["model.order"] == 9]
        rep = LocalReporter(echo=lambda s: None)
        out = run_trial(study.task.name, cfu9.config, rep)
        assert 0 <= out["test_acc"] <= 100 and out["epoch"] == 1
        assert rep.info["n_fusion_units"] == UNITS[arch] and rep.info["n_fusion_params"] == UNITS[arch] * 10
