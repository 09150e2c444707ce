"""Tests for components/fusion.py (CFU, PU, additive and concat fusion; paper 000)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev as npcheb
from numpy.polynomial import polynomial as nppoly

import components
import components.fusion_kernels as kernels
from components.fusion import FORMS, AdditiveFusion, ChebyshevFusion, ConcatFusion, PolynomialFusion
from components.fusion_formula import chebyshev_terms, poly_fusion_reference, power_terms

ORDERS = range(10)  # the paper sweeps orders 1..9; 0 is the degenerate gate


def _unit_basis(i):
    return np.eye(i + 1)[i]


@pytest.mark.parametrize("order", ORDERS)
def test_chebyshev_terms_match_numpy_on_unit_interval(order):
    x = np.linspace(-1, 1, 201)
    terms = chebyshev_terms(torch.from_numpy(x), order)
    assert isinstance(terms, list) and len(terms) == order + 1
    for i, t in enumerate(terms):
        np.testing.assert_allclose(t.numpy(), npcheb.chebval(x, _unit_basis(i)), atol=1e-12)


@pytest.mark.parametrize("order", ORDERS)
def test_power_terms_match_numpy(order):
    x = np.linspace(-1.5, 1.5, 101)
    for i, t in enumerate(power_terms(torch.from_numpy(x), order)):
        np.testing.assert_allclose(t.numpy(), nppoly.polyval(x, _unit_basis(i)), rtol=1e-12, atol=1e-12)


def _sig(z):
    return 1 / (1 + np.exp(-z))


def test_eq4_literally_against_numpy():
    """identity=False, bound='none' is Eq. (4) as printed: y = f ∘ Σ α_i σ(T_i(x)),
    checked against numpy's Chebyshev values (independent of chebyshev_terms)."""
    rng = np.random.default_rng(0)
    x, f, alpha = rng.uniform(-1.3, 1.3, (3, 7)), rng.normal(size=(3, 7)), rng.normal(size=6)
    expect = f * sum(a * _sig(npcheb.chebval(x, _unit_basis(i))) for i, a in enumerate(alpha))
    for fused in (True, False):
        m = ChebyshevFusion(order=5, bound="none", identity=False, fused=fused).double()
        with torch.no_grad():
            m.alpha.copy_(torch.from_numpy(alpha))
        y = m(torch.from_numpy(x).requires_grad_(), torch.from_numpy(f))
        np.testing.assert_allclose(y.detach().numpy(), expect, rtol=1e-10)


@pytest.mark.parametrize("cls, values", [(ChebyshevFusion, npcheb.chebval), (PolynomialFusion, nppoly.polyval)])
def test_default_is_eq4_and_forms_are_the_named_formulas(cls, values):
    """Issue 26: the constructor's defaults are Eq. (4) verbatim, y = f ∘ Σ α_i σ(P_i(x)),
    and at the default α init (gate ≡ 1) the unit passes f(x) unchanged; FORMS['bounded_additive']
    is y = x + f ∘ Σ α_i σ(P_i(tanh x)).  Formulas written here with numpy, inputs beyond [−1, 1]."""
    rng = np.random.default_rng(1)
    x, f, alpha = rng.uniform(-2.5, 2.5, (4, 6)), rng.normal(size=(4, 6)), rng.normal(size=5)
    gate = lambda u: sum(a * _sig(values(u, _unit_basis(i))) for i, a in enumerate(alpha))  # noqa: E731
    expect = {"eq4": f * gate(x), "bounded_additive": x + f * gate(np.tanh(x))}
    default = cls(order=4).double()
    assert (default.identity, default.bound) == (False, "none") and FORMS["eq4"] == dict(identity=False, bound="none")
    xt, ft = torch.from_numpy(x), torch.from_numpy(f)
    np.testing.assert_allclose(default(xt, ft).detach().numpy(), f, rtol=1e-6)  # gate ≡ 1 (float32 α_0)
    for form, want in expect.items():
        for m in ([default] if form == "eq4" else []) + [cls(order=4, **FORMS[form]).double()]:
            with torch.no_grad():
                m.alpha.copy_(torch.from_numpy(alpha))
            np.testing.assert_allclose(m(xt.requires_grad_(), ft).detach().numpy(), want, rtol=1e-10)
    assert set(FORMS) == {"eq4", "bounded_additive"}


def test_shortcut_makes_the_terms_and_current_is_gated():
    """fusion(shortcut=x, current=f(x)): the output is affine in f(x) (Eq. 4 is linear
    in f), and only the shortcut enters the polynomial."""
    torch.manual_seed(0)
    x, f = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    for form, skip in (("eq4", 0), ("bounded_additive", 1)):
        m = ChebyshevFusion(order=4, **FORMS[form]).double()
        with torch.no_grad():
            m.alpha.normal_()
        torch.testing.assert_close(m(x, 3 * f) - skip * x, 3 * (m(x, f) - skip * x))
        assert not torch.allclose(m(3 * x, f) - 3 * skip * x, 3 * (m(x, f) - skip * x))


@pytest.mark.parametrize("cls", [ChebyshevFusion, PolynomialFusion])
@pytest.mark.parametrize("order", ORDERS)
def test_parameter_count_is_order_plus_one(cls, order):
    m = cls(order=order, channels=64)
    assert sum(p.numel() for p in m.parameters()) == order + 1


def test_baseline_parameter_counts_and_registry():
    assert components.available("fusion") == ["add", "cfu", "concat", "pu"]
    for name in components.available("fusion"):  # uniform signature: order and channels everywhere
        components.build("fusion", name, order=9, channels=16)
    assert sum(p.numel() for p in AdditiveFusion(order=3, channels=8).parameters()) == 0
    assert sum(p.numel() for p in ConcatFusion(channels=8).parameters()) == 2 * 8 * 8 + 8


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("cls", [ChebyshevFusion, PolynomialFusion])
@pytest.mark.parametrize("sigma", ["sigmoid", "softmax", "tanh", "identity"])
def test_gradients_reach_every_alpha(cls, sigma, fused):
    torch.manual_seed(0)
    m = cls(order=9, sigma=sigma, fused=fused)  # additive init: α_1..α_9 start at 0
    x, f = torch.randn(2, 3, 8, 8, requires_grad=True), torch.randn(2, 3, 8, 8)
    (m(x, f) ** 2).sum().backward()
    assert torch.isfinite(m.alpha.grad).all()
    assert (m.alpha.grad.abs() > 0).all(), m.alpha.grad


@pytest.mark.parametrize("bound", ["tanh", "clamp", "none"])
@pytest.mark.parametrize("cls", [ChebyshevFusion, PolynomialFusion])
def test_order9_is_finite_on_inputs_of_magnitude_10(cls, bound):
    torch.manual_seed(0)
    m = cls(order=9, bound=bound, identity=True)
    with torch.no_grad():
        m.alpha.normal_()
    x = (10 * torch.sign(torch.randn(4, 8, 6, 6))).requires_grad_()
    f = torch.randn(4, 8, 6, 6, requires_grad=True)
    y = m(x, f)
    y.square().sum().backward()
    assert torch.isfinite(y).all()
    for t in (x.grad, f.grad, m.alpha.grad):
        assert torch.isfinite(t).all()
    if bound != "none":  # bounded: the gate never exceeds Σ|α_i| (σ ∈ (−1, 1) or (0, 1))
        gate = (y - x) / f
        assert gate.abs().max() <= m.alpha.abs().sum() + 1e-4


@pytest.mark.parametrize("cls", [ChebyshevFusion, PolynomialFusion])
@pytest.mark.parametrize("sigma", ["sigmoid", "softmax", "tanh", "identity"])
def test_initialisation_is_exactly_additive(cls, sigma):
    """Design promise (module docstring): with alpha_init='additive' the gate is 1 at
    initialisation, for every order and σ: the unit is f(x) (Eq. 4, the default) and
    x + f(x) with identity=True."""
    torch.manual_seed(0)
    x, f = 3 * torch.randn(2, 4, 5, 5), torch.randn(2, 4, 5, 5)
    for order in ORDERS:
        torch.testing.assert_close(cls(order=order, sigma=sigma)(x, f), f, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(cls(order=order, sigma=sigma, identity=True)(x, f), x + f,
                                   atol=1e-6, rtol=1e-6)
    uniform = cls(order=4, alpha_init="uniform")
    torch.testing.assert_close(uniform.alpha.detach(), torch.full((5,), 0.2))


CASES = list(itertools.product(["chebyshev", "power"], ["sigmoid", "tanh", "identity"],
                               ["tanh", "clamp", "none"], [True, False]))


@pytest.mark.parametrize("basis,sigma,bound,identity", CASES)
def test_fused_path_equals_reference(monkeypatch, basis, sigma, bound, identity):
    """The hand-written Function (several chunks, a padded last chunk) gives the
    reference formula's values and gradients, for every subset of inputs needing grad."""
    monkeypatch.setattr(kernels, "CHUNK_PER_THREAD", 17)
    g = torch.Generator().manual_seed(0)
    x0 = 1.5 * torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    f0 = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    a0 = torch.randn(8, generator=g, dtype=torch.float64)
    gy = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    spec = (basis, sigma, bound, identity)
    for need in [(1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 0, 1)]:
        ins_r = [t.clone().requires_grad_(bool(r)) for t, r in zip((x0, f0, a0), need)]
        ins_f = [t.clone().requires_grad_(bool(r)) for t, r in zip((x0, f0, a0), need)]
        y_r = poly_fusion_reference(*ins_r, *spec)
        y_f = kernels.FusedPolyGate.apply(*ins_f, *spec)
        torch.testing.assert_close(y_f, y_r)
        used = [i for i, r in enumerate(need) if r]
        g_r = torch.autograd.grad(y_r, [ins_r[i] for i in used], gy)
        g_f = torch.autograd.grad(y_f, [ins_f[i] for i in used], gy)
        for a, b in zip(g_f, g_r):
            torch.testing.assert_close(a, b)
    with torch.no_grad():  # inference path skips the derivative and the σ rows
        y_n = kernels.fused_forward(x0, f0, a0, *spec, need_h=False, need_rows=False)[0]
    torch.testing.assert_close(y_n, poly_fusion_reference(x0, f0, a0, *spec))


@pytest.mark.parametrize("cls", [ChebyshevFusion, PolynomialFusion])
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_float64(cls, fused):
    torch.manual_seed(0)
    m = cls(order=5, fused=fused).double()
    with torch.no_grad():
        m.alpha.normal_()
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    f = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    a = m.alpha.detach().clone().requires_grad_()

    def fn(x, f, a):
        return torch.func.functional_call(m, {"alpha": a}, (x, f))

    assert torch.autograd.gradcheck(fn, (x, f, a))
    if fused:  # HNN differentiates ∂y/∂x again: the fused path must support it
        assert torch.autograd.gradgradcheck(fn, (x, f, a))


@pytest.mark.parametrize("shape", [(5, 4), (2, 4, 7), (2, 4, 3, 5), (1, 4, 2, 3, 3)])
def test_concat_is_a_linear_map_over_channels(shape):
    torch.manual_seed(0)
    m = ConcatFusion(channels=4).double()
    x, f = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    z = torch.cat([x, f], 1).movedim(1, -1)
    expect = (z @ m.weight.T + m.bias).movedim(-1, 1)
    torch.testing.assert_close(m(x, f), expect)


def test_additive_is_the_sum():
    x, f = torch.randn(3, 4), torch.randn(3, 4)
    torch.testing.assert_close(AdditiveFusion(order=7)(x, f), x + f)


@pytest.mark.parametrize("kwargs,name", [
    (dict(order=-1), "order"), (dict(order=21), "order"), (dict(order=True), "order"),
    (dict(order=3.0), "order"), (dict(sigma="relu"), "sigma"), (dict(bound="scale"), "bound"),
    (dict(alpha_init="zero"), "alpha_init"), (dict(identity=1), "identity"), (dict(fused=None), "fused")])
@pytest.mark.parametrize("cls", [ChebyshevFusion, PolynomialFusion])
def test_invalid_arguments(cls, kwargs, name):
    with pytest.raises(ValueError, match=name):
        cls(**kwargs)


def test_concat_requires_channels():
    with pytest.raises(ValueError, match="channels"):
        ConcatFusion(order=3)


def test_fused_path_with_create_graph_when_current_depends_on_shortcut():
    """An HNN differentiates the fusion with create_graph=True and f = f(x): the fused
    path must give the same first and second derivatives as the reference formula."""
    import components

    torch.manual_seed(0)
    x0 = torch.randn(6, 5, dtype=torch.float64)
    outs = []
    for fused in (True, False):
        fus = components.build("fusion", "cfu", order=3, fused=fused).double()
        with torch.no_grad():
            fus.alpha.copy_(torch.linspace(0.2, 1.0, 4, dtype=torch.float64))
        x = x0.clone().requires_grad_()
        y = fus(x, torch.tanh(1.3 * x)).sum()
        (gx,) = torch.autograd.grad(y, x, create_graph=True)
        (ggx,) = torch.autograd.grad(gx.square().sum(), x)
        outs.append((gx.detach(), ggx))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(outs[0][1], outs[1][1], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("basis,sigma,bound,identity", CASES)
def test_second_order_gradients_equal_reference(basis, sigma, bound, identity):
    """The closed-form backward of the first-order gradients (PolyGateGrad) gives
    the reference formula's second derivatives w.r.t. x, f, α and the upstream
    gradient, as an HNN uses them (f depends on x, loss on ∂y/∂x and ∂y/∂α)."""
    g = torch.Generator().manual_seed(1)
    x0 = 1.5 * torch.randn(4, 6, generator=g, dtype=torch.float64)
    a0 = torch.randn(6, generator=g, dtype=torch.float64)
    gy0 = torch.randn(4, 6, generator=g, dtype=torch.float64)
    spec = (basis, sigma, bound, identity)
    results = []
    for fn in (kernels.FusedPolyGate.apply, poly_fusion_reference):
        x, a, gy = (t.clone().requires_grad_() for t in (x0, a0, gy0))
        y = fn(x, torch.tanh(1.3 * x), a, *spec)
        gx, ga = torch.autograd.grad(y, (x, a), gy, create_graph=True)
        loss = (gx * gx.detach().cos()).sum() + (ga * torch.arange(6.0, dtype=ga.dtype)).sum()
        results.append(torch.autograd.grad(loss, (x, a, gy)))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_third_order_falls_back_exactly():
    torch.manual_seed(2)
    x0 = torch.randn(3, 4, dtype=torch.float64)
    outs = []
    for fused in (True, False):
        import components

        fus = components.build("fusion", "cfu", order=4, fused=fused).double()
        with torch.no_grad():
            fus.alpha.normal_(generator=torch.Generator().manual_seed(3))
        x = x0.clone().requires_grad_()
        (g1,) = torch.autograd.grad(fus(x, torch.sin(x)).sum(), x, create_graph=True)
        (g2,) = torch.autograd.grad(g1.square().sum(), x, create_graph=True)
        (g3,) = torch.autograd.grad(g2.sum(), x)
        outs.append(g3)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-9, atol=1e-11)
