"""Smoke run of sweeps/cfu_order.yaml (the segmentation study of
the cfu_order suite): real local Ray, real MLflow sqlite store."""
from __future__ import annotations

from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from sweeps.language.load import load_all
from tests.helpers import SWEEPS, assert_dry_run_settings

FILE = SWEEPS / "cfu_order.yaml"


def test_smoke_cfu_order_segmentation(sweep_runner):
    (study,) = load_all(str(FILE), smoke=True, only=["segmentation"])
    assert study.experiment == "cfu_order.segmentation"
    summary, runs = sweep_runner(FILE, only=["segmentation"])
    # concat baseline (order does not apply) + CFU orders 1..9, one seed each
    assert summary["counts"] == {"trials": 10, "finished": 10, "failed": 0}
    assert set(runs["status"]) == {"FINISHED"}
    concat = runs[runs["params.model.fusion"] == "concat"]
    cfu = runs[runs["params.model.fusion"] == "cfu"]
    assert len(concat) == 1 and concat["params.model.order"].isna().all()
    assert sorted(cfu["params.model.order"]) == list(range(1, 10))
    assert runs["metrics.test_dice"].between(0, 1).all() and runs["metrics.train_loss"].notna().all()
    # CFU adds exactly d + 1 parameters per skip on top of the elementwise UNet (Sec. III-C)
    sizes = cfu.set_index("params.model.order")["n_params"]
    assert all(sizes[d + 1] - sizes[d] == 2 for d in range(1, 9))   # smoke UNet: 2 skips
    table = ablation_table(runs)
    assert set(runs["params.model.backbone"]) == {"unet"} and set(cfu["params.model.fusion_form"]) == {"eq4"}
    assert len(table) == 10 and table.loc[table["baseline"], "cell"].item() == "model.fusion=concat,model.backbone=unet"
    assert "model.order" in render(table, "md")
    assert plot_ablation(runs, table, sweep_runner.tmp / "cfu_order.png").stat().st_size > 0


def test_dry_run_lists_the_paper_vs_code_settings_and_widens_them(tmp_path):
    """Issue 26: the settings where the paper's text and the authors' code differ are one-value axes,
    so --dry-run prints them in every cell; the --set of docs/reproduction.md widens them."""
    assert_dry_run_settings(tmp_path, SWEEPS / "cfu_order.yaml", cells=14,
        new_cell="model.fusion_form=bounded_additive,model.backbone=monai",
        settings=["model.fusion_form=eq4", "model.backbone=unet"],
        widen=["--smoke", "--set", "model.order=[1,4,9]", "--set", "model.fusion_form=[eq4,bounded_additive]",
               "--set", "model.backbone=[unet,monai]"],
        only=["--only", "segmentation"])
