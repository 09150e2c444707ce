"""Fast path of the polynomial fusion units (CFU / PU) of components/fusion.py.

Paper: "Parameter-Efficient Cross-Layer Feature Fusion via Chebyshev Polynomial
Unit" (shared/seeds/000_74f9e9f97bcca099.txt), Eqs. (3)–(4).

Why hand-written: autograd through the Eq. (3) recursion keeps ~3(d+1)
full-size intermediates per unit and replays ~6 kernels per order in
backward; at order 9 that costs more than the conv block around it (see
benchmarks/bench_fusion.py).  No library provides a fused Chebyshev gate, and
torch.compile needs ~40 s of compilation per shape on CPU.  This module
computes exactly the same function as ``fusion_formula.poly_fusion_reference`` (tests
compare values, gradients and gradcheck) with three tricks:

* chunking: the d rows of one chunk live in a bounded scratch buffer;
* signed rows Z_k = ε_k T_k (ε = +, +, −, −, … by k mod 4) turn
  T_{k+1} = 2u T_k − T_{k−1} into Z_{k+1} = Z_{k−1} ± 2u Z_k, one fused
  addcmul per order; σ(−z) = 1 − σ(z) (sigmoid) or −σ(z) (odd σ) folds the
  signs into α;
* α is constant between forward and backward, so forward also evaluates the
  gate's derivative h = Σ_k α_k σ'(T_k) T_k'(u) u'(x), T_k' = k U_{k−1} by the
  same recursion; backward is then elementwise products plus one contraction
  for ∂/∂α_k = Σ w σ(T_k) (σ rows kept only when α needs a gradient).

Second-order gradients (HNN training differentiates ∂y/∂x) fall back to
autograd through the reference formula inside backward, so they stay exact.
"""
from __future__ import annotations

from typing import Tuple

import torch

from .fusion_formula import SIGMA_OF_ONE, poly_fusion_reference

# Elements per chunk and per CPU thread.  Chunking bounds the scratch to
# 2 × d × width values (L3-sized) whatever the feature size.  Measured on a
# 2-core Xeon: 32k–512k chunks are within ±5 % single-threaded, but every op
# is an OpenMP region and small chunks multiply them, which costs up to 2× on
# a loaded machine; hence large chunks.
CHUNK_PER_THREAD = 1 << 18

_ACT_OUT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}
_BOUND_OUT = {"tanh": lambda x, out: torch.tanh(x, out=out),
              "clamp": lambda x, out: torch.clamp(x, -1.0, 1.0, out=out),
              "none": lambda x, out: out.copy_(x)}


def _signs(d: int, basis: str, like: torch.Tensor) -> torch.Tensor:
    """ε_1..ε_d: +1 for k mod 4 ∈ {0, 1}, −1 otherwise (Chebyshev); all +1 (power)."""
    if basis == "power":
        return torch.ones(d, dtype=like.dtype, device=like.device)
    k = torch.arange(1, d + 1, device=like.device)
    return 1.0 - 2.0 * ((k % 4) >= 2).to(like.dtype)


def _signed_rows(rows, first, up, um, basis: str) -> None:
    """rows[i] ← ε_{i+1} Y_{i+1} with Y_0 = 1, Y_1 = ``first`` and
    Y_{k+1} = 2u Y_k − Y_{k−1} (``up`` = 2u, ``um`` = −2u); power: Y_{k+1} = u Y_k."""
    rows[0].copy_(first)
    for i in range(1, len(rows)):
        if basis == "power":
            torch.mul(rows[i - 1], up, out=rows[i])
        elif i == 1:
            torch.mul(um, rows[0], out=rows[1]).add_(1.0)
        else:
            torch.addcmul(rows[i - 2], up if i % 2 == 0 else um, rows[i - 1], out=rows[i])


def fused_forward(x, f, alpha, basis: str, sigma: str, bound: str, identity: bool,
                  need_h: bool, need_rows: bool) -> Tuple[torch.Tensor, ...]:
    """y = [x +] f ∘ g(x); also g, h = dg/dx (if ``need_h``) and the chunk-major
    σ rows (if ``need_rows``).  Elementwise σ and order ≥ 1 only."""
    d, xf = alpha.numel() - 1, x.reshape(-1)
    n_all = xf.numel()
    eps = _signs(d, basis, x)
    co = alpha[1:] * eps
    const = alpha[0] * SIGMA_OF_ONE[sigma]
    if sigma == "sigmoid":
        const = const + (alpha[1:] * (eps < 0)).sum()
    order = torch.arange(1, d + 1, dtype=x.dtype, device=x.device)
    hco = alpha[1:] * order * torch.cat([eps[:1], eps[:-1]])  # k α_k ε_{k−1}
    # On GPUs launches, not cache, dominate: one chunk.
    per = CHUNK_PER_THREAD * torch.get_num_threads() if x.device.type == "cpu" else n_all
    width = max(1, min(n_all, per))
    n_chunks = -(-n_all // width)
    rows = x.new_empty(n_chunks if need_rows else 1, d, width)
    qbuf = x.new_empty(d, width) if need_h else None
    ub, up, um = x.new_empty(width), x.new_empty(width), x.new_empty(width)
    g = x.new_empty(n_all)
    h = x.new_empty(n_all) if need_h else None
    two = 2.0 if basis == "chebyshev" else 1.0
    for c in range(n_chunks):
        a, n = c * width, min(width, n_all - c * width)
        u, upn, umn, s = ub[:n], up[:n], um[:n], rows[c if need_rows else 0, :, :n]
        _BOUND_OUT[bound](xf[a:a + n], u)
        torch.mul(u, two, out=upn)
        torch.mul(u, -two, out=umn)
        _signed_rows(s.unbind(0), u, upn, umn, basis)
        if sigma != "identity":
            _ACT_OUT[sigma](s, out=s)
        torch.mv(s.t(), co, out=g[a:a + n])
        if need_h:
            q = qbuf[:, :n]          # q[k] ← ε_k U_k (or u^k), then × σ'
            q[0].fill_(1.0)
            if d > 1:
                _signed_rows(q[1:].unbind(0), upn, upn, umn, basis)
            # q ← q σ'(z) from s = σ(z) in one pass: ATen's own σ-backward
            # kernels (σ' = s(1 − s) and 1 − s² are even in the sign of z).
            if sigma == "sigmoid":
                torch.ops.aten.sigmoid_backward(q, s, grad_input=q)
            elif sigma == "tanh":
                torch.ops.aten.tanh_backward(q, s, grad_input=q)
            hn = h[a:a + n]
            torch.mv(q.t(), hco, out=hn)
            if bound == "tanh":
                hn.mul_(1.0 - u * u)
            elif bound == "clamp":   # torch.clamp's subgradient: 1 on [−1, 1]
                hn.mul_((xf[a:a + n] >= -1) & (xf[a:a + n] <= 1))
    if need_rows and n_all % width:
        rows[-1, :, n_all % width:].zero_()  # the padding meets zero-padded w in backward
    g = g.add_(const).view(x.shape)
    y = torch.addcmul(x, f, g) if identity else f * g
    return y, g, (h.view(x.shape) if need_h else None), (rows if need_rows else None)


class FusedPolyGate(torch.autograd.Function):
    """autograd wrapper of :func:`fused_forward`; same values and gradients as
    the reference formula (first order by hand, higher orders by autograd)."""

    @staticmethod
    def forward(ctx, x, f, alpha, basis, sigma, bound, identity):
        need_x, need_a = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
        y, g, h, rows = fused_forward(x, f, alpha, basis, sigma, bound, identity, need_x, need_a)
        ctx.save_for_backward(x, f, alpha, g, h, rows)
        ctx.spec = (basis, sigma, bound, identity)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, f, alpha, g, h, rows = ctx.saved_tensors
        basis, sigma, bound, identity = ctx.spec
        if torch.is_grad_enabled():
            # create_graph=True (an HNN differentiates ∂y/∂x again): the first-order
            # gradients as a Function that knows its own derivatives.
            gx, gf, ga = PolyGateGrad.apply(x, f, alpha, gy, basis, sigma, bound, identity)
            need = ctx.needs_input_grad
            return (gx if need[0] else None, gf if need[1] else None, ga if need[2] else None,
                    None, None, None, None)
        w = gy * f
        gx = ga = gf = None
        if ctx.needs_input_grad[2]:
            n_chunks, d, width = rows.shape
            wp = w.reshape(-1)
            if wp.numel() != n_chunks * width:
                wp = torch.cat([wp, wp.new_zeros(n_chunks * width - wp.numel())])
            eps = _signs(d, basis, x)
            ws = w.sum()
            ga = torch.einsum("cdw,cw->d", rows, wp.view(n_chunks, width)) * eps
            if sigma == "sigmoid":  # σ(T_k) = 1 − σ(Z_k) where ε_k = −1
                ga = ga + ws * (eps < 0)
            ga = torch.cat([(ws * SIGMA_OF_ONE[sigma]).reshape(1), ga])
        if ctx.needs_input_grad[0]:
            gx = w.mul_(h)
            gx = gx.add_(gy) if identity else gx
        if ctx.needs_input_grad[1]:
            gf = gy * g
        return gx, gf, ga, None, None, None, None


def _bound_derivs(x, bound: str):
    """u = bound(x), u', u''."""
    if bound == "tanh":
        u = torch.tanh(x)
        d1 = 1.0 - u * u
        return u, d1, -2.0 * u * d1
    if bound == "clamp":      # torch.clamp's subgradient: 1 on [−1, 1]
        return x.clamp(-1.0, 1.0), ((x >= -1) & (x <= 1)).to(x.dtype), torch.zeros_like(x)
    return x, torch.ones_like(x), torch.zeros_like(x)


def _basis_derivs(u, d: int, basis: str):
    """Rows P_k(u), P_k'(u), P_k''(u) for k = 0..d of a flat u, each (d + 1, n).
    Chebyshev: T_{k+1} = 2u T_k − T_{k−1} differentiated once and twice; power: u^k."""
    P, P1, P2 = (u.new_empty((d + 1, u.numel())) for _ in range(3))
    P[0], P1[0], P2[0] = 1.0, 0.0, 0.0
    if d >= 1:
        P[1], P1[1], P2[1] = u, 1.0, 0.0
    two_u = 2.0 * u if basis == "chebyshev" else u
    for k in range(1, d):
        torch.mul(P[k], two_u, out=P[k + 1])
        torch.mul(P1[k], two_u, out=P1[k + 1])
        torch.mul(P2[k], two_u, out=P2[k + 1])
        if basis == "chebyshev":
            P[k + 1].sub_(P[k - 1])
            P1[k + 1].add_(P[k], alpha=2.0).sub_(P1[k - 1])
            P2[k + 1].add_(P1[k], alpha=4.0).sub_(P2[k - 1])
        else:
            P1[k + 1].add_(P[k])
            P2[k + 1].add_(P1[k], alpha=2.0)
    return P, P1, P2


def _gate_rows(u, d: int, basis: str, sigma: str):
    """S_k = σ(P_k), QP_k = σ'(P_k) P_k' and RP_k = σ''(P_k) P_k'² + σ'(P_k) P_k'',
    each (d + 1, n): ∂S_k/∂x = QP_k u' and ∂²S_k/∂x² = RP_k u'² + QP_k u''."""
    P, P1, P2 = _basis_derivs(u, d, basis)
    if sigma == "identity":
        return P, P1, P2
    S = torch.sigmoid(P) if sigma == "sigmoid" else torch.tanh(P)
    s1 = S - S * S if sigma == "sigmoid" else 1.0 - S * S          # σ'
    s2 = (1.0 - 2.0 * S) if sigma == "sigmoid" else -2.0 * S
    s2.mul_(s1)                                                      # σ''
    QP = s1 * P1
    RP = P1.square_().mul_(s2).addcmul_(s1, P2)
    return S, QP, RP


class PolyGateGrad(torch.autograd.Function):
    """The first-order gradients of y = [x +] f ∘ g(x), g = Σ α_k σ(P_k(bound x)),
    as a differentiable function of (x, f, α, gy):

        gx = gy ∘ f ∘ g' [+ gy],   gf = gy ∘ g,   ga_k = Σ gy ∘ f ∘ S_k,

    S_k = σ(P_k).  Its backward is closed-form (rows from :func:`_gate_rows`, a
    few contractions) instead of autograd replaying the reference formula
    twice.  Third and higher derivatives fall back to autograd through the
    reference formula (exact).  Rows are kept whole, not chunked: this path
    serves create_graph=True, i.e. small models (HNNs), where 3(d + 1)·N
    values are cheap.
    """

    @staticmethod
    def forward(ctx, x, f, alpha, gy, basis, sigma, bound, identity):
        d = alpha.numel() - 1
        u, u1, u2 = _bound_derivs(x, bound)
        S, QP, RP = _gate_rows(u.reshape(-1), d, basis, sigma)
        g = torch.mv(S.t(), alpha).view_as(x)
        hp = torch.mv(QP.t(), alpha).view_as(x)
        h = hp * u1                                                   # g'
        h2 = torch.mv(RP.t(), alpha).view_as(x).mul_(u1 * u1).addcmul_(hp, u2)   # g''
        w = gy * f
        gx = torch.addcmul(gy, w, h) if identity else w * h
        gf = gy * g
        ga = torch.mv(S, w.reshape(-1))
        ctx.save_for_backward(x, f, alpha, gy, S, QP, g, h, h2, u1)
        ctx.spec = (basis, sigma, bound, identity)
        return gx, gf, ga

    @staticmethod
    def backward(ctx, A, B, C):
        x, f, alpha, gy, S, QP, g, h, h2, u1 = ctx.saved_tensors
        basis, sigma, bound, identity = ctx.spec
        need = ctx.needs_input_grad
        if torch.is_grad_enabled():
            with torch.enable_grad():
                # Fresh views: their gradients are the partial derivatives only (f may
                # depend on x in the caller's graph, as in an HNN); inputs outside any
                # graph get a detached leaf, differentiable here and dropped below.
                xv, fv, av, gv = (t.view_as(t) if t.requires_grad else t.detach().requires_grad_()
                                  for t in (x, f, alpha, gy))
                y = poly_fusion_reference(xv, fv, av, basis, sigma, bound, identity)
                firsts = torch.autograd.grad(y, (xv, fv, av), gv, create_graph=True)
                outs = [(o, c) for o, c in zip(firsts, (A, B, C)) if c is not None]
                grads = torch.autograd.grad([o for o, _ in outs], (xv, fv, av, gv), [c for _, c in outs],
                                            create_graph=True, allow_unused=True)
            grads = [gr if n else None for gr, n in zip(grads, need)]
            return (*grads, None, None, None, None)
        zero = torch.zeros_like(x)
        A = zero if A is None else A
        B = zero if B is None else B
        w = gy * f
        cs = torch.mv(S.t(), C).view_as(x) if C is not None else zero      # Σ C_k S_k
        d_x = d_f = d_a = d_gy = None
        if need[0]:
            d_x = A * w * h2 + B * gy * h
            if C is not None:
                d_x = d_x + w * u1 * torch.mv(QP.t(), C).view_as(x)
        if need[1]:
            d_f = gy * (A * h + cs)
        if need[2]:
            d_a = torch.mv(QP, (A * w * u1).reshape(-1)) + torch.mv(S, (B * gy).reshape(-1))
        if need[3]:
            d_gy = A * (f * h + 1.0 if identity else f * h) + B * g + f * cs
        return d_x, d_f, d_a, d_gy, None, None, None, None
