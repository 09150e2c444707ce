"""Smoke run of sweeps/hyperbolic_pooling.yaml: real local Ray, real MLflow sqlite store."""
from __future__ import annotations

from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from tests.helpers import SWEEPS, assert_dry_run_settings


def test_smoke_hyperbolic_pooling(sweep_runner):
    summary, runs = sweep_runner(SWEEPS / "hyperbolic_pooling.yaml", smoke=True)
    # 4 coarsenings x 3 depths, one seed each
    assert summary["counts"] == {"trials": 12, "finished": 12, "failed": 0}
    assert set(runs["status"]) == {"FINISHED"}
    assert {(c, d) for c, d in zip(runs["params.model.coarsen"], runs["params.model.depth"])} == \
        {(c, d) for c in ("dwt", "learnable_dwt", "avgpool", "maxpool") for d in (2, 4, 8)}
    # reversible only where the coarsening is invertible: no invalid pooling cells
    pool = runs["params.model.coarsen"].isin(["avgpool", "maxpool"])
    assert runs.loc[pool, "params.model.reversible"].isna().all()
    assert runs.loc[~pool, "params.model.reversible"].astype(str).str.lower().eq("true").all()
    for m in ("test_dice", "test_iou", "test_miou"):
        assert runs[f"metrics.{m}"].between(0, 1).all()
    assert runs["metrics.train_loss"].notna().all() and (runs["metrics.epoch_seconds"] > 0).all()
    # Table 1 / Sec. 5: reversible memory is flat in depth, the pooling net's grows with it
    mem = runs.set_index("cell")["metrics.peak_mem_mb"]
    assert set(runs["params.model.layout"]) == {"reference"} and set(runs["params.model.bias"].astype(str)) == {"False"}
    assert set(runs.loc[~pool, "params.model.wavelet_scale"]) == {"orthonormal"}

    def cell(coarsen, depth):
        scale = ",model.wavelet_scale=orthonormal" if coarsen in ("dwt", "learnable_dwt") else ""
        return f"model.coarsen={coarsen},model.depth={depth},model.layout=reference,model.bias=False{scale}"

    assert (mem > 0).all()
    assert abs(mem[cell("dwt", 8)] - mem[cell("dwt", 2)]) < 1e-9
    assert mem[cell("avgpool", 8)] > 3 * mem[cell("avgpool", 2)]
    assert mem[cell("dwt", 8)] < 0.2 * mem[cell("avgpool", 8)]
    table = ablation_table(runs)
    assert len(table) == 12 and table.loc[table["baseline"], "cell"].item() == cell("avgpool", 4)
    assert "| learnable_dwt" in render(table, "md")
    mem_table = ablation_table(runs, metric="peak_mem_mb", mode="min")
    assert mem_table.loc[mem_table["best"], "model.coarsen"].item() in ("dwt", "learnable_dwt")
    assert plot_ablation(runs, table, sweep_runner.tmp / "hyperbolic.png").stat().st_size > 0


def test_dry_run_lists_the_paper_vs_code_settings_and_widens_them(tmp_path):
    """Issue 26: the settings where the paper's text and the authors' code differ are one-value axes,
    so --dry-run prints them in every cell; the --set of docs/reproduction.md widens them."""
    assert_dry_run_settings(tmp_path, SWEEPS / "hyperbolic_pooling.yaml", cells=24,
        new_cell="model.layout=learned_opening,model.bias=True,model.wavelet_scale=reference",
        settings=["model.layout=reference", "model.bias=False", "model.wavelet_scale=orthonormal"],
        widen=["--smoke", "--set", "model.depth=[2]", "--set", "model.layout=[reference,learned_opening]", "--set",
               "model.bias=[false,true]", "--set", "model.wavelet_scale=[orthonormal,reference]", "--set",
               "baseline.model.depth=2", "--set", "baseline.model.coarsen=dwt"])
