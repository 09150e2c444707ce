"""Smoke run of sweeps/hyperconv_kernel.yaml: real local Ray, real MLflow sqlite store."""
from __future__ import annotations

from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from tests.helpers import SWEEPS, assert_dry_run_settings


def test_smoke_hyperconv_kernel(sweep_runner):
    summary, runs = sweep_runner(SWEEPS / "hyperconv_kernel.yaml", smoke=True)
    # 3 standard cells (kernel 3, 5, 7) + 9 hyper cells (kernel x N_L), one seed each
    assert summary["counts"] == {"trials": 12, "finished": 12, "failed": 0}
    assert set(runs["status"]) == {"FINISHED"}
    std = runs[runs["params.model.conv"] == "standard"]
    hyp = runs[runs["params.model.conv"] == "hyper"]
    assert len(std) == 3 and std["params.model.n_l"].isna().all()
    assert sorted(std["params.model.kernel_size"]) == [3, 5, 7]
    assert {(k, n) for k, n in zip(hyp["params.model.kernel_size"], hyp["params.model.n_l"])} == \
        {(k, n) for k in (3, 5, 7) for n in (2, 4, 8)}
    for m in ("test_dice", "train_loss", "dice_gaussian_0.1", "dice_saltpepper_0.05", "dice_speckle_0.2"):
        assert runs[f"metrics.{m}"].between(0, 1).all() if m != "train_loss" else runs[f"metrics.{m}"].notna().all()
    # the authors' (Hyper-)UNet, He-normal hyper-convs, their dropout placement (one-value axes)
    assert set(runs["params.model.backbone"]) == {"unet"} and set(runs["params.model.dropout_at"]) == {"reference"}
    assert set(hyp["params.model.hyper_init"]) == {"he_normal"} and std["params.model.hyper_init"].isna().all()
    # Eq. (3): a hyper-UNet's size does not depend on its kernel size, a standard UNet's does
    by_cell = runs.set_index("cell")["n_params"]
    tail = "model.backbone=unet,model.hyper_init=he_normal,model.dropout_at=reference,model.up_kernel_size=0"
    for n in (2, 4, 8):
        sizes = {by_cell[f"model.conv=hyper,model.kernel_size={k},model.n_l={n},{tail}"] for k in (3, 5, 7)}
        assert len(sizes) == 1
    assert len(set(std["n_params"])) == 3
    table = ablation_table(runs)
    assert len(table) == 12 and table["baseline"].sum() == 1
    assert table.loc[table["baseline"], "cell"].item() == ("model.conv=standard,model.kernel_size=3,"
                                                           "model.backbone=unet,model.dropout_at=reference,"
                                                           "model.up_kernel_size=0")
    assert "| hyper" in render(table, "md")
    assert plot_ablation(runs, table, sweep_runner.tmp / "hyperconv.png").stat().st_size > 0


def test_dry_run_lists_the_paper_vs_code_settings_and_widens_them(tmp_path):
    """Issue 26: the settings where the paper's text and the authors' code differ are one-value axes,
    so --dry-run prints them in every cell; the --set of docs/reproduction.md widens them."""
    assert_dry_run_settings(tmp_path, SWEEPS / "hyperconv_kernel.yaml", cells=12,
        new_cell="model.backbone=monai,model.hyper_init=conv_default",
        settings=["model.backbone=unet", "model.hyper_init=he_normal", "model.dropout_at=reference",
                  "model.up_kernel_size=0"],
        widen=["--smoke", "--set", "model.kernel_size=[3,5]", "--set", "model.n_l=[4]", "--set",
               "model.backbone=[unet,monai]", "--set", "model.hyper_init=[he_normal,conv_default]"])
