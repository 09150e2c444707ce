"""Smoke run of sweeps/hyperbolic_vae.yaml: real local Ray, real MLflow sqlite store."""
from __future__ import annotations

from analysis.plots import plot_ablation
from analysis.tables import ablation_table, render
from tests.helpers import SWEEPS, assert_dry_run_settings


def test_smoke_hyperbolic_vae(sweep_runner):
    summary, runs = sweep_runner(SWEEPS / "hyperbolic_vae.yaml", smoke=True)
    assert summary["counts"] == {"trials": 8, "finished": 8, "failed": 0}
    assert {(float(a), c) for a, c in zip(runs["params.loss.alpha"], runs["params.model.coarsen"])} == \
        {(a, c) for a in (0.0, 0.03, 0.1, 0.3) for c in ("dwt", "learnable_dwt")}
    # smoke: 8x8 images, 3 units; the final state (the paper's latent) has 64 numbers
    assert (runs["metrics.latent_dims"] <= 64).all() and (runs["metrics.test_recon_mse"] >= 0).all()
    assert set(runs["params.model.latent"]) == {"final_state"} and set(runs["params.model.groups"]) == {"rows"}
    table = ablation_table(runs)
    assert len(table) == 8 and table.loc[table["baseline"], "cell"].item() == (
        "loss.alpha=0.0,model.coarsen=dwt,model.latent=final_state,model.groups=rows,model.bias=False,"
        "model.wavelet_scale=orthonormal")
    assert "learnable_dwt" in render(table, "md")
    assert "latent_dims" in render(ablation_table(runs, metric="latent_dims"), "md")
    assert plot_ablation(runs, table, sweep_runner.tmp / "vae.png").stat().st_size > 0


def test_dry_run_lists_the_paper_vs_code_settings_and_widens_them(tmp_path):
    """Issue 26: the settings where the paper's text and the authors' code differ are one-value axes,
    so --dry-run prints them in every cell; the --set of docs/reproduction.md widens them."""
    assert_dry_run_settings(tmp_path, SWEEPS / "hyperbolic_vae.yaml", cells=8,
        new_cell="model.latent=both_states,model.groups=columns,model.bias=True",
        settings=["model.latent=final_state", "model.groups=rows", "model.bias=False",
                  "model.wavelet_scale=orthonormal"],
        widen=["--smoke", "--set", "loss.alpha=[0.1]", "--set", "model.coarsen=[dwt]", "--set",
               "baseline.loss.alpha=0.1", "--set", "model.latent=[final_state,both_states]", "--set",
               "model.groups=[rows,columns]", "--set", "model.bias=[false,true]"])
