"""Tests for components/circulant.py and circulant_extras.py (CDLinear paper, 004).

References are built independently of the code under test: the materialised
block-circulant W from its index formula, autograd Hessians, eigvalsh of
CᵀC, numpy's SVD, and Bernoulli statistics.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call

import components
from components.circulant import CDLinear
from components.circulant_extras import (ALPHA_CD, ShannonDropout, condition_number, fisher_penalty,
                                         hessian_eigenvalues, layer_condition_numbers, model_condition_number)
from tests.helpers import count_params

PATHS = ["dense", "dft", "fft"]
SHAPES = [(12, 8, 4), (8, 8, 1), (8, 8, 8), (15, 9, 3), (10, 20, 5), (6, 4, 2), (14, 21, 7), (64, 64, 4)]


def _reference_weight(c: torch.Tensor) -> torch.Tensor:
    """W from Sec. III.1 by explicit loops: (C_ij)_kl = c_ij[(k − l) mod B]."""
    k_o, k_i, b = c.shape
    w = torch.zeros(k_o * b, k_i * b, dtype=c.dtype)
    for i in range(k_o):
        for j in range(k_i):
            for k in range(b):
                for l in range(b):
                    w[i * b + k, j * b + l] = c[i, j, (k - l) % b]
    return w


@pytest.mark.parametrize("path", PATHS + ["auto"])
@pytest.mark.parametrize("n_in,n_out,b", SHAPES)
def test_forward_equals_dense_matmul(n_in, n_out, b, path):
    torch.manual_seed(0)
    m = CDLinear(n_in, n_out, b).double()
    m.path = path
    x = torch.randn(3, 5, n_in, dtype=torch.float64)
    ref = x @ _reference_weight(m.coef.detach()).T + m.bias
    torch.testing.assert_close(m(x), ref, rtol=1e-12, atol=1e-12)
    m_nb = CDLinear(n_in, n_out, b, bias=False).double()
    m_nb.path = path
    torch.testing.assert_close(m_nb(x), x @ m_nb.dense_weight().T, rtol=1e-12, atol=1e-12)


def test_float32_paths_agree():
    torch.manual_seed(1)
    m = CDLinear(256, 128, 16)
    x = torch.randn(7, 256)
    ref = x.double() @ m.dense_weight().double().T + m.bias.double()
    for path in PATHS:
        m.path = path
        y = m(x)
        assert y.dtype == torch.float32
        torch.testing.assert_close(y.double(), ref, rtol=1e-4, atol=1e-5)


def test_dense_weight_structure():
    torch.manual_seed(0)
    m = CDLinear(12, 8, 4)
    w = m.dense_weight().detach()
    assert w.shape == (8, 12)
    torch.testing.assert_close(w, _reference_weight(m.coef.detach()), rtol=0, atol=0)
    for i in range(2):
        for j in range(3):
            blk = w[4 * i:4 * i + 4, 4 * j:4 * j + 4]
            # circulant: every column is the previous one shifted down by one
            torch.testing.assert_close(blk.roll(1, 0), blk.roll(-1, 1), rtol=0, atol=0)
            torch.testing.assert_close(blk[:, 0], m.coef[i, j].detach(), rtol=0, atol=0)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("n_in,n_out,b", [(8, 12, 4), (9, 6, 3), (4, 4, 4), (6, 6, 1)])
def test_gradcheck(n_in, n_out, b, path):
    torch.manual_seed(0)
    m = CDLinear(n_in, n_out, b).double()
    m.path = path
    x = torch.randn(3, n_in, dtype=torch.float64, requires_grad=True)
    w = m.weight.detach().clone().requires_grad_()
    bias = m.bias.detach().clone().requires_grad_()
    f = lambda x, w, bias: functional_call(m, {"weight": w, "bias": bias}, (x,))
    assert torch.autograd.gradcheck(f, (x, w, bias))


def test_auto_path_choice():
    assert CDLinear(64, 64, 4)._auto_path() == "dense"
    assert CDLinear(64, 64, 8)._auto_path() == "dense"
    assert CDLinear(4096, 4096, 64)._auto_path() == "dft"
    assert CDLinear(4096, 4096, 512)._auto_path() == "fft"
    m = CDLinear(8, 8, 4)
    m.path = "spectral"
    with pytest.raises(ValueError, match="path"):
        m(torch.randn(2, 8))


@pytest.mark.parametrize("n_in,n_out,b", [(64, 64, 4), (64, 12, 4), (64, 16, 8), (30, 45, 15), (8, 8, 8)])
def test_parameter_count(n_in, n_out, b):
    assert count_params(CDLinear(n_in, n_out, b)) == n_in * n_out // b + n_out
    assert count_params(CDLinear(n_in, n_out, b, bias=False)) == n_in * n_out // b
    assert count_params(CDLinear(64, 64, 4)) == 1088


@pytest.mark.parametrize("name,b,n_last,expected", [("dense", 1, 10, 8970), ("cdlinear", 4, 12, 2380),
                                                    ("cdlinear", 8, 16, 1296)])
def test_digits_mlp_counts(name, b, n_last, expected):
    kw = {"block_size": b} if name == "cdlinear" else {}
    lin = lambda i, o: components.build("linear", name, in_features=i, out_features=o, **kw)
    model = nn.Sequential(lin(64, 64), nn.ReLU(), lin(64, 64), nn.ReLU(), lin(64, n_last))
    assert count_params(model) == expected


@pytest.mark.parametrize("kwargs,arg", [(dict(in_features=10, out_features=8, block_size=4), "in_features"),
                                        (dict(in_features=8, out_features=10, block_size=4), "out_features"),
                                        (dict(in_features=8, out_features=8, block_size=0), "block_size"),
                                        (dict(in_features=8, out_features=8, block_size=2.0), "block_size")])
def test_invalid_block_size(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        CDLinear(**kwargs)


# --- Theorem 1: Hessian spectrum ------------------------------------------------------------

def _correlated_input(n: int, n_in: int, b: int) -> torch.Tensor:
    # A component shared by all input blocks makes the blocks correlated, so the
    # off-diagonal (j, j′) Hessian blocks are far from zero.
    g = torch.Generator().manual_seed(3)
    shared = torch.randn(n, b, generator=g, dtype=torch.float64).repeat(1, n_in // b)
    return 0.8 * shared + torch.randn(n, n_in, generator=g, dtype=torch.float64)


def _autograd_hessian(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    t = torch.randn(x.shape[0], m.out_features, dtype=torch.float64)
    params = dict(m.named_parameters())

    def loss(w):
        y = functional_call(m, {**params, "weight": w}, (x,))
        return 0.5 * ((y - t) ** 2).sum()

    h = torch.autograd.functional.hessian(loss, m.weight.detach())
    p = m.weight.numel()
    return h.reshape(p, p)


@pytest.mark.parametrize("n_in,n_out,b", [(8, 8, 4), (4, 8, 4), (12, 8, 4), (9, 6, 3), (10, 5, 5),
                                          (6, 6, 1), (8, 4, 2)])
def test_hessian_eigenvalues_match_autograd(n_in, n_out, b):
    torch.manual_seed(0)
    m = CDLinear(n_in, n_out, b).double()
    x = _correlated_input(7, n_in, b)
    ref = torch.linalg.eigvalsh(_autograd_hessian(m, x))
    ours = hessian_eigenvalues(m, x)
    assert ours.shape == ref.shape == (n_in * n_out // b,)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-8)
    diag = hessian_eigenvalues(m, x, exact=False)
    if n_in == b:       # one input block: Eq. (5) is the exact spectrum
        torch.testing.assert_close(diag, ours, rtol=1e-10, atol=1e-10)
    else:               # coupled blocks: Eq. (5) is not the spectrum
        assert (diag - ours).abs().max() > 1e-2 * ours.max()


@pytest.mark.parametrize("norm, fft_norm", [("backward", "backward"), ("ortho", "ortho")])
def test_theorem1_diagonal_blocks(norm, fft_norm):
    """Each diagonal block H_(ij),(ij) has eigenvalues Σ_n |F[X_nj](k)|² (Eq. 5), F the DFT of Eq. (2)."""
    torch.manual_seed(0)
    m = CDLinear(12, 8, 4, norm=norm).double()
    x = _correlated_input(5, 12, 4)
    h = _autograd_hessian(m, x).reshape(2, 3, 4, 2, 3, 4)
    power = (torch.fft.fft(x.reshape(5, 3, 4), dim=-1, norm=fft_norm).abs() ** 2).sum(0)      # (K_i, B)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(torch.linalg.eigvalsh(h[i, j, :, i, j, :]),
                                       power[j].sort().values, rtol=1e-10, atol=1e-10)
    assert h[0, :, :, 1].abs().max() == 0      # different output blocks never couple


def test_dense_hessian_and_condition_numbers():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4).double()
    x = torch.randn(9, 6, dtype=torch.float64)
    ref = torch.linalg.eigvalsh(_autograd_hessian(lin, x))
    torch.testing.assert_close(hessian_eigenvalues(lin, x), ref, rtol=1e-8, atol=1e-8)
    s = np.linalg.svd(lin.weight.detach().numpy(), compute_uv=False)
    assert condition_number(lin) == pytest.approx((s.max() / s.min()) ** 2, rel=1e-10)
    assert condition_number(lin, x, dense="hessian") == pytest.approx((ref.max() / ref.min()).item(), rel=1e-8)
    m = CDLinear(8, 8, 4).double()
    xc = _correlated_input(7, 8, 4)
    h = torch.linalg.eigvalsh(_autograd_hessian(m, xc))
    assert condition_number(m, xc) == pytest.approx((h.max() / h.min()).item(), rel=1e-8)
    with pytest.raises(ValueError, match="x"):
        condition_number(m)
    with pytest.raises(ValueError, match="dense"):
        condition_number(lin, dense="svd")


def test_model_condition_number_uses_each_layer_input():
    torch.manual_seed(0)
    model = nn.Sequential(CDLinear(8, 8, 4), nn.ReLU(), CDLinear(8, 4, 4), nn.ReLU(), nn.Linear(4, 3)).double()
    x = torch.randn(20, 8, dtype=torch.float64)
    per = layer_condition_numbers(model, x)
    assert set(per) == {"0", "2", "4"}
    h1 = model[1](model[0](x))
    assert per["2"] == pytest.approx(condition_number(model[2], h1), rel=1e-10)
    assert per["4"] == pytest.approx(condition_number(model[4]), rel=1e-10)
    assert model_condition_number(model, x) == pytest.approx(sum(per.values()) / 3, rel=1e-12)


# --- Eq. (8): Fisher penalty ------------------------------------------------------------------

def _fisher_direct(m: CDLinear, eps: float) -> torch.Tensor:
    """Σ over blocks of Σ_k 1/(|λ_k|² + ε), |λ_k|² = eigenvalues of CᵀC (no FFT)."""
    w = m.dense_weight().detach().double()
    b = m.block_size
    total = 0.0
    for i in range(m.k_out):
        for j in range(m.k_in):
            blk = w[i * b:(i + 1) * b, j * b:(j + 1) * b]
            total += (1.0 / (torch.linalg.eigvalsh(blk.T @ blk) + eps)).sum()
    return total


def test_fisher_penalty_matches_direct_computation():
    torch.manual_seed(0)
    m = CDLinear(12, 8, 4).double()
    for eps in (1e-3, 0.5):
        torch.testing.assert_close(fisher_penalty(m, eps=eps), _fisher_direct(m, eps), rtol=1e-10, atol=0)
    one = CDLinear(5, 5, 5).double()                    # one block: Eq. (8) is tr((WᵀW + εI)⁻¹)
    w = one.dense_weight().detach()
    tr = torch.linalg.inv(w.T @ w + 1e-3 * torch.eye(5, dtype=torch.float64)).trace()
    torch.testing.assert_close(fisher_penalty(one), tr, rtol=1e-10, atol=0)
    model = nn.Sequential(m, nn.ReLU(), CDLinear(8, 6, 2).double(), nn.Linear(6, 2).double())
    torch.testing.assert_close(fisher_penalty(model), _fisher_direct(m, 1e-3) + _fisher_direct(model[2], 1e-3),
                               rtol=1e-10, atol=0)
    assert fisher_penalty(nn.Linear(3, 2)).item() == 0.0
    with pytest.raises(ValueError, match="eps"):
        fisher_penalty(m, eps=0.0)


class _Penalty(nn.Module):
    """fisher_penalty as a forward, so functional_call can substitute the weight for gradcheck."""

    def __init__(self, layer: CDLinear, eps: float) -> None:
        super().__init__()
        self.layer, self.eps = layer, eps

    def forward(self) -> torch.Tensor:
        return fisher_penalty(self.layer, eps=self.eps)


def test_fisher_penalty_gradient():
    torch.manual_seed(0)
    pen = _Penalty(CDLinear(6, 4, 2).double(), eps=0.1)
    w = pen.layer.weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda w: functional_call(pen, {"layer.weight": w}, ()), (w,))


# --- Eq. (7): Shannon dropout ------------------------------------------------------------------

@pytest.mark.parametrize("p", [ALPHA_CD, 0.3])
def test_shannon_dropout_statistics(p):
    torch.manual_seed(0)
    d = components.build("dropout", "shannon", p=p)
    n = 1_000_000
    x = torch.ones(n, dtype=torch.float64)
    y = d(x)
    dropped = (y == 0).double().mean().item()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(dropped - p) < 5 * sigma       # 5σ; a 10 % wrong rate is > 5σ off at p = 0.0118
    kept = y[y != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p)), rtol=1e-15, atol=0)
    assert abs(y.mean().item() - 1.0) < 5 * sigma / (1 - p)
    d.eval()
    z = torch.randn(10, 7)
    assert torch.equal(d(z), z)


def test_dropout_registry_and_validation():
    assert ShannonDropout().p == ALPHA_CD
    assert components.build("dropout", "standard").p == 0.5
    x = torch.randn(4, 5)
    assert torch.equal(components.build("dropout", "none", p=0.3)(x), x)
    for name in ("shannon", "standard", "none"):
        for bad in (1.0, -0.1, 1.5, float("nan"), True, "0.1"):
            with pytest.raises(ValueError, match=r"\bp\b"):
                components.build("dropout", name, p=bad)


@pytest.mark.parametrize("b", [1, 4, 8])
def test_norm_ortho_is_unitary_dft_and_backward_is_plain_convolution(b):
    """Eq. (2) with the unitary DFT = circular convolution / √B; numpy's default pair = convolution."""
    torch.manual_seed(0)
    plain = CDLinear(16, 8, b, norm="backward").double()
    ortho = CDLinear(16, 8, b, norm="ortho").double()
    ortho.load_state_dict(plain.state_dict())
    x = torch.randn(5, 16, dtype=torch.float64)
    c = plain.weight.detach()
    xb = x.reshape(5, 16 // b, b)
    conv = torch.fft.ifft(torch.fft.fft(c, dim=-1)[None] * torch.fft.fft(xb, dim=-1)[:, None], dim=-1).real.sum(2)
    torch.testing.assert_close(plain(x) - plain.bias, conv.reshape(5, 8), rtol=1e-10, atol=1e-12)
    fu = lambda t: torch.fft.fft(t, dim=-1, norm="ortho")
    unitary = torch.fft.ifft(fu(c)[None] * fu(xb)[:, None], dim=-1, norm="ortho").real.sum(2)
    torch.testing.assert_close(ortho(x) - ortho.bias, unitary.reshape(5, 8), rtol=1e-10, atol=1e-12)
    # both start at nn.Linear's scale: the effective coefficients are U(±1/√n_in)
    for m in (CDLinear(64, 64, b, norm="backward"), CDLinear(64, 64, b)):
        assert m.coef.abs().max() <= 1 / 8 + 1e-7 and m.coef.abs().max() > 0.1
    with pytest.raises(ValueError, match="norm"):
        CDLinear(16, 8, 4, norm="forward")
