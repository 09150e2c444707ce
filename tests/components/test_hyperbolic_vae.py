"""Properties of the hyperbolic VAE (paper 001, Sec. 4, Eqs. 4.1-4.2)."""
from __future__ import annotations

import pytest
import torch

from components.hyperbolic import propagate, reverse
from components.hyperbolic_vae import HyperbolicVAE


def _vae(**kw):
    torch.manual_seed(0)
    args = dict(in_channels=1, size=8, units=3, depth=2, h=0.5)
    args.update(kw)
    return HyperbolicVAE(**args).double()


@pytest.mark.parametrize("coarsen", ["dwt", "learnable_dwt"])
@pytest.mark.parametrize("units", [0, 1, 3])
def test_identity_projection_is_an_exact_autoencoder_with_both_states(coarsen, units):
    """Sec. 4: "if we choose P = I the AE is exact" — F is invertible when the code keeps the pair."""
    m = _vae(coarsen=coarsen, units=units, latent="both_states")
    x = torch.randn(4, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        recon, z = m(x)
    assert z.shape == (4, m.latent_dim) == (4, 128)
    torch.testing.assert_close(recon, x, rtol=0, atol=1e-10)
    if units:
        assert not torch.allclose(m.F(x)[:, 64:], x.flatten(1)), "F must not be the identity at h = 0.5"


@pytest.mark.parametrize("size, units, dim", [(32, 5, 1024), (8, 3, 64)])
def test_final_state_latent_is_the_papers_size_and_nearly_exact(size, units, dim):
    """Default latent (issue 26): the final state only, C·S² = 1024 for MNIST at 32×32 (Sec. 6.2.1),
    decoded from the pair (Ẑ, Ẑ) (zero final velocity).  At the paper's h = 1e-2 and 3 layers per
    unit, P = I reconstructs within 0.5 % relative error (measured 0.22 % / 0.11 %); with no
    layers it is exact."""
    m = _vae(size=size, units=units, depth=3, h=1e-2)
    assert m.latent == "final_state" and m.latent_dim == dim and m.P.shape == (dim, dim)
    x = torch.randn(8, 1, size, size, dtype=torch.float64)
    with torch.no_grad():
        recon, z = m(x)
        y_prev, y = propagate(m.ops, (x, x))
    assert z.shape == (8, dim)
    torch.testing.assert_close(z, y.flatten(1))                      # Ẑ = Iᵀ F(X) = Y_N
    assert 0 < (recon - x).norm() / x.norm() < 5e-3
    with torch.no_grad():
        torch.testing.assert_close(reverse(m.ops, (y, y))[1], recon)
    flat = _vae(size=size, units=0)
    with torch.no_grad():
        torch.testing.assert_close(flat(x)[0], x, rtol=0, atol=0)


def test_dropping_columns_of_p_equals_truncating_the_code():
    m = _vae()
    with torch.no_grad():
        m.P.add_(0.05 * torch.randn_like(m.P))
        m.P[:, 10:].mul_(1e-4)                      # all entries of these columns < tol
    keep = m.active()
    assert keep.sum() == 10 and keep[:10].all()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        z = m.encode(x)
        got = m.decode(m.truncated(z))
        P = m.P[:, keep]                            # the rectangular P of Sec. 6.2.1
        want = m.F_inv((m.F(x) @ P) @ P.T)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("groups", ["rows", "columns"])
def test_group_norm_groups_rows_by_default_or_columns(groups):
    """‖P‖_c = Σ_i ‖P[i, :]‖ (rows: Eq. 4.2's "very few non-zero rows", the default) or
    Σ_j ‖P[:, j]‖ (columns: Sec. 6.2.1's removal); either way one non-zero row or column
    leaves one latent dimension (min(rows kept, columns kept))."""
    m = _vae(groups=groups) if groups == "columns" else _vae()
    assert m.groups == groups
    n = m.latent_dim
    with torch.no_grad():
        m.P.zero_()
        m.P[:, 3] = 2.0                             # one coordinate of Ẑ in use
    assert m.group_norm().item() == pytest.approx(2.0 * n ** 0.5 if groups == "columns" else 2.0 * n)
    assert m.active().sum() == 1 and m.kept_rows().sum() == n and m.latent_dims() == 1
    with torch.no_grad():
        m.P.zero_()
        m.P[3, :] = 2.0                             # one coordinate of F(X) in use
    assert m.group_norm().item() == pytest.approx(2.0 * n if groups == "columns" else 2.0 * n ** 0.5)
    assert m.active().sum() == n and m.kept_rows().sum() == 1 and m.latent_dims() == 1


@pytest.mark.parametrize("gauss", ["moments", "kl"])
def test_gaussianity_is_zero_for_standard_normal_codes_and_skips_removed_dims(gauss):
    m = _vae(gauss=gauss)
    g = torch.Generator().manual_seed(0)
    z = torch.randn(20000, m.latent_dim, generator=g, dtype=torch.float64)
    assert m.gaussianity(z).item() < 0.05 * m.latent_dim ** 0.5
    assert m.gaussianity(2.0 * z + 1.0).item() > m.latent_dim     # KL of N(1, 4): 1.31 per dimension
    with torch.no_grad():
        m.P[:, 5:] = 0.0
    shifted = z.clone()
    shifted[:, 5:] += 50.0                          # removed dimensions do not count
    assert m.gaussianity(shifted).item() == pytest.approx(_eps(z[:, :5], gauss), rel=1e-9)


def _eps(z, gauss):
    mu, var = z.mean(0), z.var(0, unbiased=False)
    if gauss == "kl":
        return float(0.5 * (var + 1e-8 + mu * mu - 1.0 - (var + 1e-8).log()).sum())
    return float(0.5 * (mu * mu + 0.5 * (var - 1.0) ** 2).sum())


def test_reversible_encoder_gradients_match_autograd():
    x = torch.randn(2, 1, 8, 8, dtype=torch.float64)
    grads = []
    for rev in (True, False):
        m = _vae(reversible=rev, coarsen="learnable_dwt")
        with torch.no_grad():
            m.P.add_(0.1 * torch.randn(m.P.shape, generator=torch.Generator().manual_seed(1), dtype=m.P.dtype))
        recon, z = m(x)
        loss = (recon - x).pow(2).sum() + m.gaussianity(z) + 0.1 * m.group_norm()
        grads.append(torch.autograd.grad(loss, list(m.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_sample_and_bad_input():
    m = _vae()
    with torch.no_grad():
        m.P[:, 8:] = 0.0
    out = m.sample(5, torch.Generator().manual_seed(0))
    assert out.shape == (5, 1, 8, 8) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match=r"\(N, 1, 8, 8\)"):
        m(torch.randn(2, 1, 16, 16, dtype=torch.float64))


@pytest.mark.parametrize("groups", ["rows", "columns"])
def test_prox_step_is_group_soft_thresholding(groups):
    """P_g ← P_g max(0, 1 − step/‖P_g‖) for the groups g (rows or columns), written out here."""
    m = _vae(groups=groups)
    with torch.no_grad():
        m.P.add_(0.1 * torch.randn(m.P.shape, generator=torch.Generator().manual_seed(2), dtype=m.P.dtype))
        scale = torch.linspace(0.1, 2.0, m.latent_dim, dtype=m.P.dtype)
        m.P.mul_(scale[:, None] if groups == "rows" else scale[None, :])     # group norms spread 0.1 .. 2
    before = m.P.detach().clone()
    m.prox_group_norm_(0.5)
    Pg, Bg = (m.P, before) if groups == "rows" else (m.P.T, before.T)        # one group per row of Pg
    norms = Bg.norm(dim=1)
    gone = norms <= 0.5
    assert (Pg[gone] == 0).all() and gone.any() and not gone.all()
    kept = (m.kept_rows() if groups == "rows" else m.active())
    assert not kept[gone].any() and kept[~gone].all()
    torch.testing.assert_close(Pg[~gone], Bg[~gone] * (1 - 0.5 / norms[~gone])[:, None])
