"""Hyperbolic VAE task (paper 001, Sec. 4 / 6.2.1): schema checks, an exact
auto-encoder through the whole task when nothing moves P, and truncation."""
from __future__ import annotations


import pytest

from sweeps.runner.trial import LocalReporter, run_trial
from tasks import get_task

SPEC = get_task("hyperbolic_vae")


def run(**over):
    cfg = SPEC.resolve({**SPEC.smoke, **over})
    rep = LocalReporter(echo=lambda s: None)
    return run_trial("hyperbolic_vae", cfg, rep), rep


def test_too_many_units_fail_the_check_naming_the_key():
    errs = SPEC.check_config(SPEC.resolve({"data.size": 8, "model.units": 4}))
    assert errs and errs[0][0] == "model.units" and "log2(data.size) = 3" in errs[0][1]
    assert SPEC.check_config(SPEC.resolve({"data.size": 16, "model.units": 4})) == []


def test_nothing_moving_p_keeps_the_autoencoder_exact():
    """α = β = 0 and lr_P tiny: P stays ≈ I, so the reconstruction is F⁻¹(F(X)) = X: exactly with
    both leapfrog states as the code (128 at 8×8), to the zero-final-velocity error with the final
    state (the default, C·S² = 64 at 8×8; 1024 at the paper's 32×32)."""
    d = SPEC.resolve({})
    assert (d["data.size"], d["model.units"], d["model.latent"], d["model.groups"], d["model.bias"]) == \
        (32, 5, "final_state", "rows", False)
    both, _ = run(**{"loss.alpha": 0.0, "loss.beta": 0.0, "optim.lr_p": 1e-8, "seed": 1,
                     "model.latent": "both_states"})
    assert both["latent_dims"] == 128 and both["test_recon_mse"] < 1e-8
    out, rep = run(**{"loss.alpha": 0.0, "loss.beta": 0.0, "optim.lr_p": 1e-8, "seed": 1})
    assert out["latent_dims"] == 64 and out["test_recon_mse"] < 1e-4
    assert len(rep.history) == 2 and set(out) >= {"test_recon_mse", "test_recon_mse_full", "latent_dims",
                                                   "test_gauss", "train_loss"}


@pytest.mark.parametrize("groups", ["rows", "columns"])
def test_large_group_norm_weight_removes_latent_dimensions(groups):
    out, _ = run(**{"loss.alpha": 30.0, "loss.beta": 0.0, "train.epochs": 3, "model.groups": groups})
    assert out["latent_dims"] < 64
    assert out["test_recon_mse"] >= out["test_recon_mse_full"] - 1e-9


def test_runs_are_reproducible():
    a, _ = run(seed=3)
    b, _ = run(seed=3)
    assert a["test_recon_mse"] == pytest.approx(b["test_recon_mse"], rel=0, abs=0)


def test_wavelet_cells_of_one_seed_share_split_and_batches():
    from tasks.hyperbolic_vae.train import data_order

    from ._pairing import assert_paired

    a = SPEC.resolve({**SPEC.smoke, "model.coarsen": "dwt", "seed": 6})
    b = SPEC.resolve({**SPEC.smoke, "model.coarsen": "learnable_dwt", "model.depth": 2, "seed": 6})
    reps = assert_paired("hyperbolic_vae", a, b, data_order)
    order = data_order(a)
    assert reps["a"].info["n_train"] == len(order.split["train"]) == 1437 and len(order.split["test"]) == 360
    assert [len(x) for x in order.batches[0]] == [256] * 5 + [157]
