"""CDLinear extras: Shannon dropout, Fisher regulariser, Hessian spectrum.

Paper: "Communication Dynamics Neural Networks: FFT-Diagonalized Layers"
(shared/seeds/004_ac4f87fd0ce9e956.txt).  File: components/circulant_extras.py,
registered by components/__init__.py.

* Sec. IV.1, Eq. (7): Shannon dropout X̃ = (1 − M) X / (1 − α), M ~ Bernoulli(α),
  α_CD = 0.0118, training only.  That is exactly inverted dropout, so it is
  ``nn.Dropout`` with the paper's default rate (registry ``dropout/shannon``;
  ``dropout/standard`` has Srivastava et al.'s 0.5, ``dropout/none`` is the
  identity), so a task can write ``components.build("dropout", name, p=α)``.
* Sec. IV.2, Eq. (8): ``fisher_penalty`` = Σ_{i,j,k} 1 / (|F[c_ij](k)|² + ε).
* Sec. III.3, Theorem 1 / Eq. (5): ``hessian_eigenvalues`` of the loss
  ½ Σ_n ‖y_n − t_n‖² with respect to the weights C, exact by default.
* Sec. VI.1: ``condition_number`` (CDLinear: Hessian eigenvalues; dense:
  σ_max²/σ_min² of W) and its mean over a model's layers.

The Hessian of a linear layer's squared loss is a data Gram matrix, which
torch.func.hessian would build densely ((n_in·n_out/B)² entries); the per-
frequency blocks below need only (B/2 + 1) Hermitian K_i × K_i eigen-problems.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .circulant import CDLinear
from .registry import register

ALPHA_CD = 0.0118  # Shannon noise rate of the parent CD papers (Sec. II, F3)


def _check_p(p) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"p must be a dropout rate in [0, 1), got {p!r}")
    return float(p)


@register("dropout", "shannon")
class ShannonDropout(nn.Dropout):
    """Shannon dropout (Eq. 7): drop each element with probability p, scale by 1/(1 − p).

    Args:
        p: drop rate α (default α_CD = 0.0118).  p = 1 is refused because
            Eq. (7) divides by 1 − α.
    """

    def __init__(self, p: float = ALPHA_CD) -> None:
        super().__init__(p=_check_p(p))


@register("dropout", "standard")
class StandardDropout(nn.Dropout):
    """Plain dropout (Srivastava et al. 2014), the paper's tuned-rate baseline.

    Args:
        p: drop rate (default 0.5).
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p=_check_p(p))


@register("dropout", "none")
class NoDropout(nn.Identity):
    """Identity, so ``dropout: none`` can sit on a sweep axis.

    Args:
        p: validated and ignored (default 0.0), so every dropout entry takes p.
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = _check_p(p)


def fisher_penalty(module: nn.Module, eps: float = 1e-3) -> torch.Tensor:
    """Eq. (8): Σ_{i,j,k} 1 / (|F[c_ij](k)|² + ε), differentiable, over k = 0..B−1.

    Given a CDLinear the sum runs over its blocks; given any other module it
    runs over every CDLinear among ``module.modules()`` (a module with none
    gives a zero tensor).  F is the unnormalised B-point DFT, as in Eq. (2).

    Eq. (8) equals tr((WᵀW)⁻¹) only for a single block (K_o = K_i = 1); with
    several blocks it is the paper's per-block surrogate, implemented as printed.

    Args:
        module: a CDLinear or a model containing CDLinear layers.
        eps: ε > 0 (default 1e-3; the paper gives none).  It caps each term at
            1/ε and the gradient near a dead frequency at ~ε^{-3/2}, so that
            λ_F = 1e-4 keeps the penalty's gradient O(1); at the default init
            typical |F[c](k)|² = B/(3 n_in) is 0.005–0.02 for the paper's layers.
    """
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0 or math.isinf(eps):
        raise ValueError(f"eps must be a positive finite float, got {eps!r}")
    layers = [m for m in module.modules() if isinstance(m, CDLinear)]
    if not layers:
        p = next(module.parameters(), None)
        return torch.zeros((), dtype=p.dtype if p is not None else None,
                           device=p.device if p is not None else None)
    total = 0
    for layer in layers:
        power = torch.view_as_real(torch.fft.fft(layer.coef, dim=-1)).square().sum(-1)
        total = total + (1.0 / (power + eps)).sum()
    return total


def _conjugate_multiplicity(b: int, device) -> torch.Tensor:
    """How often each rFFT frequency k < B//2+1 occurs among the B real ones."""
    k = torch.arange(b // 2 + 1, device=device)
    return torch.where((k == 0) | (2 * k == b), 1, 2)


def hessian_eigenvalues(module: nn.Module, x: torch.Tensor, exact: bool = True) -> torch.Tensor:
    """Eigenvalues of ∂²L/∂C² for L = ½ Σ_n ‖y(x_n) − t_n‖² (Theorem 1), ascending, float64.

    The loss is quadratic in the weights, so the Hessian (a real symmetric
    P × P matrix, P = number of weights; the bias is excluded) depends only on
    the inputs x (..., n_in, leading dims = batch), not on C, b or t.

    CDLinear (P = K_o·K_i·B): output block i depends only on row i of C, so the
    Hessian is K_o identical diagonal blocks.  In the unitary DFT basis each
    block splits by frequency k into the K_i × K_i Gram matrix
    G_k[j, j′] = Σ_n conj(F[X_nj](k)) F[X_nj′](k)  (F unnormalised, Eq. 2).
    ``exact=True`` (default) returns the eigenvalues of the G_k; the real
    parameters make G_{B−k} = conj(G_k), so every k other than 0 and B/2 counts
    twice, and each value repeats K_o times: this is the full multiset of the
    autograd Hessian.  ``exact=False`` returns the paper's Eq. (5) values
    |F[X_j](k)|² summed over the batch (the diagonal of G_k), which equal the
    exact ones only for K_i = 1 or uncorrelated input blocks.

    nn.Linear (P = n_out·n_in): the Hessian is I_{n_out} ⊗ XᵀX, so the
    eigenvalues of XᵀX each repeat n_out times (``exact`` is ignored).
    """
    if isinstance(module, CDLinear):
        xb = x.detach().reshape(-1, module.k_in, module.block_size).to(torch.float64)
        xf = torch.fft.rfft(xb, dim=-1)                                       # (N, K_i, F)
        if exact:
            gram = torch.einsum("njf,nlf->fjl", xf.conj(), xf)               # (F, K_i, K_i)
            eig = torch.linalg.eigvalsh(gram)                                 # (F, K_i)
        else:
            eig = torch.view_as_real(xf).square().sum((0, -1)).T             # (F, K_i)
        eig = eig.repeat_interleave(_conjugate_multiplicity(module.block_size, eig.device), dim=0)
        eig = eig * module.scale ** 2        # the parameters are c; W uses c·s (norm="ortho")
        return eig.reshape(-1).repeat(module.k_out).sort().values
    if isinstance(module, nn.Linear):
        xm = x.detach().reshape(-1, module.in_features).to(torch.float64)
        return torch.linalg.eigvalsh(xm.T @ xm).repeat(module.out_features).sort().values
    raise ValueError(f"module must be a CDLinear or nn.Linear, got {type(module).__name__}")


def condition_number(module: nn.Module, x: torch.Tensor | None = None, exact: bool = True,
                     dense: str = "weight") -> float:
    """κ of one layer as in Sec. VI.1 (inf when the smallest value is ≤ 0).

    CDLinear: λ_max/λ_min of ``hessian_eigenvalues(module, x, exact)`` (x needed).
    nn.Linear: with ``dense="weight"`` (the paper's definition) σ_max²/σ_min² of
    W over its min(n_in, n_out) singular values, x unused; the paper calls this
    the Hessian's κ, but for the weights' Hessian it is the input-Jacobian's.
    ``dense="hessian"`` gives the weights' Hessian κ (eigenvalues of XᵀX), the
    like-for-like comparison with CDLinear.
    """
    if dense not in ("weight", "hessian"):
        raise ValueError(f"dense must be 'weight' or 'hessian', got {dense!r}")
    if isinstance(module, nn.Linear) and dense == "weight":
        s = torch.linalg.svdvals(module.weight.detach().to(torch.float64))
        values = s.square()
    else:
        if x is None:
            raise ValueError(f"x (the layer input) is required for {type(module).__name__} "
                             f"with dense={dense!r}")
        values = hessian_eigenvalues(module, x, exact)
    lo, hi = values.min().item(), values.max().item()
    return hi / lo if lo > 0 else math.inf


def layer_condition_numbers(model: nn.Module, x: torch.Tensor, exact: bool = True,
                            dense: str = "weight") -> dict[str, float]:
    """``condition_number`` of every nn.Linear / CDLinear in ``model``, by module name.

    Each layer's input is captured with forward hooks while ``model(x)`` runs
    without gradients, in the model's current mode (call ``model.eval()``
    first so dropout does not perturb the inputs).  A layer called several
    times gets its inputs concatenated along the batch.
    """
    layers = {name: m for name, m in model.named_modules() if isinstance(m, (CDLinear, nn.Linear))}
    seen: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    hooks = [m.register_forward_hook(lambda mod, inp, out, name=name: seen[name].append(inp[0]))
             for name, m in layers.items()]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    # Layers that model(x) never calls are not part of its function: skipped.
    return {name: condition_number(m, torch.cat([t.reshape(-1, t.shape[-1]) for t in seen[name]]),
                                   exact, dense)
            for name, m in layers.items() if seen[name]}


def model_condition_number(model: nn.Module, x: torch.Tensor, exact: bool = True,
                           dense: str = "weight") -> float:
    """Sec. VI.1: κ = ⟨λ_max/λ_min⟩, the mean of ``layer_condition_numbers`` over layers."""
    values = list(layer_condition_numbers(model, x, exact, dense).values())
    if not values:
        raise ValueError(f"model has no nn.Linear or CDLinear layer: {type(model).__name__}")
    return sum(values) / len(values)
