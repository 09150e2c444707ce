"""Coarsening operators of "Fully Hyperbolic CNNs" (components/wavelets.py):
Haar DWT vs pywt, exact inverses, orthogonality of the learnable wavelet for
any angles (Eq. 3.8a), Haar and D4 as special cases, pooling baselines."""
from __future__ import annotations

import math

import numpy as np
import pytest
import pywt
import torch
import torch.nn.functional as F

from components import build
from components.wavelets import LearnableDWT, _analysis_1d, dwt, idwt, wavelet_filters

D64 = torch.float64


def _learnable(channels, dims, theta, phi):
    m = LearnableDWT(channels, dims).to(D64)
    with torch.no_grad():  # set in float64, not float32-rounded by the constructor
        m.theta.fill_(theta)
        m.phi.fill_(phi)
    return m


@pytest.mark.parametrize("dims", [2, 3])
def test_haar_roundtrip_and_energy(dims):
    x = torch.randn(2, 3, *([6, 4, 8][-dims:]), dtype=D64)
    y = build("coarsen", "dwt", channels=3, dims=dims)(x)
    assert y.shape == (2, 3 * 2 ** dims, *[s // 2 for s in x.shape[2:]])
    torch.testing.assert_close(build("coarsen", "dwt", channels=3, dims=dims).inverse(y), x, atol=1e-6, rtol=0)
    torch.testing.assert_close(y.pow(2).sum(), x.pow(2).sum(), atol=1e-9, rtol=1e-12)


def test_haar_float32_roundtrip():
    x = torch.randn(1, 2, 8, 8)
    assert (idwt(dwt(x)) - x).abs().max() < 1e-6


def test_haar_equals_pywt_dwt2():
    x = torch.randn(2, 3, 8, 6, dtype=D64)
    cA, (cH, cV, cD) = pywt.dwt2(x.numpy(), "haar", mode="periodization")
    # Subband-major, k = 2*highpass_H + highpass_W: (cA, cV, cH, cD), same signs and scale.
    np.testing.assert_allclose(dwt(x).numpy(), np.concatenate([cA, cV, cH, cD], axis=1), atol=1e-12)


def test_haar_3d_equals_pywt_dwtn():
    x = torch.randn(1, 2, 4, 6, 8, dtype=D64)
    coeffs = pywt.dwtn(x.numpy(), "haar", mode="periodization", axes=(2, 3, 4))
    keys = ["".join("ad"[(k >> (2 - i)) & 1] for i in range(3)) for k in range(8)]
    np.testing.assert_allclose(dwt(x, 3).numpy(), np.concatenate([coeffs[k] for k in keys], axis=1),
                               atol=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_filters_satisfy_eq_3_8a_for_any_angles(seed):
    g_ = torch.Generator().manual_seed(seed)
    theta, phi = (torch.rand(2, generator=g_, dtype=D64) * 2 - 1) * math.pi
    c, g = wavelet_filters(theta, phi)
    assert abs(float(c.pow(2).sum()) - 1) < 1e-12
    assert abs(float(c[2] * c[0] + c[3] * c[1])) < 1e-12
    assert abs(float(g.pow(2).sum()) - 1) < 1e-12


@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("seed", range(3))
def test_learnable_roundtrip_energy_random_angles(dims, seed):
    torch.manual_seed(seed)
    theta, phi = (torch.rand(2, dtype=D64) * 2 - 1) * math.pi
    m = _learnable(2, dims, float(theta), float(phi))
    x = torch.randn(2, 2, *([4, 6, 8][-dims:]), dtype=D64)
    y = m(x)
    assert y.shape == (2, 2 * 2 ** dims, *[s // 2 for s in x.shape[2:]])
    assert (m.inverse(y) - x).abs().max() < 1e-6
    torch.testing.assert_close(y.pow(2).sum(), x.pow(2).sum(), atol=1e-9, rtol=1e-12)


def test_learnable_matrix_is_orthogonal():
    """Materialise W for a 1-channel 6x8 image: W W^T = I (periodic boundaries)."""
    m = _learnable(1, 2, 0.7, -1.3)
    eye = torch.eye(48, dtype=D64).reshape(48, 1, 6, 8)
    w = m(eye).reshape(48, 48)
    torch.testing.assert_close(w @ w.T, torch.eye(48, dtype=D64), atol=1e-12, rtol=0)


def test_learnable_at_haar_angles_equals_haar():
    x = torch.randn(2, 3, 8, 6, dtype=D64)
    torch.testing.assert_close(_learnable(3, 2, 0.0, math.pi / 4)(x), dwt(x), atol=1e-12, rtol=0)
    x3 = torch.randn(1, 2, 4, 4, 6, dtype=D64)
    torch.testing.assert_close(_learnable(2, 3, 0.0, math.pi / 4)(x3), dwt(x3, 3), atol=1e-12, rtol=0)


def test_learnable_at_d4_angles_gives_daubechies4():
    c, _ = wavelet_filters(torch.tensor(math.pi / 12, dtype=D64), torch.tensor(math.pi / 3, dtype=D64))
    np.testing.assert_allclose(c.numpy(), pywt.Wavelet("db2").rec_lo, atol=1e-12)
    np.testing.assert_allclose(c.numpy(), [0.48296, 0.83652, 0.22414, -0.12941], atol=1e-5)
    # Eq. (3.8b) (approximation conditions) hold only at D4.
    assert abs(float(c[3] - c[2] + c[1] - c[0])) < 1e-12
    assert abs(float(-c[2] + 2 * c[1] - 3 * c[0])) < 1e-12
    # As a transform: pywt's periodized db2 up to a one-sample shift of the
    # signal (low band) and one more coarse sample for the detail band.
    x = np.random.default_rng(0).standard_normal(16)
    cA, cD = pywt.dwt(x, "db2", mode="periodization")
    a, d = _analysis_1d(torch.tensor(np.roll(x, 1))[None], 1, *wavelet_filters(
        torch.tensor(math.pi / 12, dtype=D64), torch.tensor(math.pi / 3, dtype=D64)))
    np.testing.assert_allclose(a[0].numpy(), cA, atol=1e-12)
    np.testing.assert_allclose(np.roll(d[0].numpy(), -1), cD, atol=1e-12)


def test_learnable_gradcheck_input_and_angles():
    m = _learnable(1, 2, 0.3, 0.9)
    x = torch.randn(1, 1, 4, 4, dtype=D64, requires_grad=True)

    def fn(x, theta, phi):
        c, g = wavelet_filters(theta, phi)
        return dwt(x, 2, c, g), idwt(dwt(x, 2, c, g) * 1.5, 2, c, g)

    assert torch.autograd.gradcheck(fn, (x, m.theta, m.phi))


@pytest.mark.parametrize("name", ["dwt", "learnable_dwt", "avgpool", "maxpool"])
def test_odd_or_wrong_shapes_raise(name):
    m = build("coarsen", name, channels=2)
    with pytest.raises(ValueError, match="even"):
        m(torch.randn(1, 2, 5, 4))
    with pytest.raises(ValueError, match="shape"):
        m(torch.randn(1, 3, 4, 4))
    with pytest.raises(ValueError, match="shape"):
        m.inverse(torch.randn(1, 2, 4, 4))


@pytest.mark.parametrize("dims", [2, 3])
def test_avgpool_refine_projects_onto_piecewise_constant(dims):
    m = build("coarsen", "avgpool", channels=2, dims=dims)
    assert not m.invertible and build("coarsen", "dwt", channels=2).invertible
    coarse = torch.randn(1, 2, *([3] * dims), dtype=D64)
    x = coarse
    for d in range(dims):  # nearest upsampling by 2 along every axis
        x = x.repeat_interleave(2, dim=2 + d)
    y = m(x)
    assert y.shape == (1, 2 * 2 ** dims, *([3] * dims))
    torch.testing.assert_close(y[:, :2], coarse)
    torch.testing.assert_close(y[:, -2:], coarse)  # channel repetition, block-wise
    torch.testing.assert_close(m.inverse(y), x)
    # ... but not invertible in general
    z = torch.randn(1, 2, *([6] * dims), dtype=D64)
    assert (m.inverse(m(z)) - z).abs().max() > 1e-2


def test_maxpool_blocks_and_linear_refine():
    x = torch.randn(2, 3, 8, 8)
    m = build("coarsen", "maxpool", channels=3, interp="linear")
    y = m(x)
    for k in range(4):
        torch.testing.assert_close(y[:, 3 * k:3 * k + 3], F.max_pool2d(x, 2))
    torch.testing.assert_close(m.inverse(y), F.interpolate(F.max_pool2d(x, 2), scale_factor=2,
                                                           mode="bilinear", align_corners=False))


@pytest.mark.parametrize("name", ["dwt", "learnable_dwt"])
def test_reference_scale_is_the_authors_haar_with_taps_one_half(name):
    """scale='reference' (issue 26): the authors' Haar2D/Haar3D filter each axis with
    (1, ±1)/2, so a 2x2 block (a b; c d) gives LL = (a+b+c+d)/4 (orthonormal: /2) and
    HH = (a−b−c+d)/4; a 2x2x2 block's LLL = sum/8 (orthonormal: /(2 sqrt 2)).  The
    inverse undoes it exactly, and ||W x||² = 2^−dims ||x||²."""
    def make(**kw):
        m = build("coarsen", name, channels=1, **kw).to(D64)
        if name == "learnable_dwt":          # Haar angles in float64, not float32-rounded
            with torch.no_grad():
                m.phi.fill_(math.pi / 4)
        return m

    x2 = torch.randn(1, 1, 2, 2, dtype=D64)
    a, b, c, d = x2.flatten().tolist()
    ref, ortho = make(dims=2, scale="reference"), make(dims=2)
    assert ortho.scale == "orthonormal"
    want = torch.tensor([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], dtype=D64)
    torch.testing.assert_close(ref(x2).flatten(), want / 4, atol=1e-12, rtol=0)
    torch.testing.assert_close(ortho(x2).flatten(), want / 2, atol=1e-12, rtol=0)
    x3 = torch.randn(1, 1, 2, 2, 2, dtype=D64)
    ref3 = make(dims=3, scale="reference")
    torch.testing.assert_close(ref3(x3)[0, 0].flatten(), x3.sum().reshape(1) / 8, atol=1e-12, rtol=0)
    for dims, m in ((2, ref), (3, ref3)):
        x = torch.randn(2, 1, *([4] * dims), dtype=D64)
        torch.testing.assert_close(m.inverse(m(x)), x, atol=1e-12, rtol=0)
        torch.testing.assert_close(m(x).pow(2).sum(), x.pow(2).sum() / 2 ** dims, atol=1e-10, rtol=1e-12)
    with pytest.raises(ValueError, match="scale"):
        build("coarsen", name, channels=1, scale="half")
