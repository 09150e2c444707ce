"""The polynomial fusion of the CFU paper as plain formulas: Eq. (3)'s terms and
Eq. (4) with autograd ops (the definition the fast path of
components/fusion_kernels.py is tested against).

Paper: "Parameter-Efficient Cross-Layer Feature Fusion via Chebyshev Polynomial
Unit" (shared/seeds/000_74f9e9f97bcca099.txt).

* Eq. (3): T_0 = 1, T_1 = x, T_{i+1} = 2x ∘ T_i − T_{i−1} (Hadamard products),
  :func:`chebyshev_terms`; the PU of Sec. IV-C uses plain powers x^i instead,
  :func:`power_terms`.
* Eq. (4): y = f(x) ∘ Σ_{i=0..d} α_i σ(T_i(x)), :func:`poly_fusion_reference`,
  with the two choices the modules of components/fusion.py expose (an identity
  path x + …, and a bound applied to x before the recursion).

This module imports only torch; components/fusion.py (the registered modules)
and components/fusion_kernels.py (the hand-written autograd Function) both
import it, so neither imports the other.
"""
from __future__ import annotations

import math
from typing import List

import torch

MAX_ORDER = 20
# σ(T_0) = σ(1): the constant term of the gate, used by the additive α init and the fast path.
SIGMA_OF_ONE = {"sigmoid": 1.0 / (1.0 + math.exp(-1.0)), "tanh": math.tanh(1.0), "identity": 1.0}
ACT = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "identity": lambda z: z}
BOUND = {"tanh": torch.tanh, "clamp": lambda x: x.clamp(-1.0, 1.0), "none": lambda x: x}


def check_order(order) -> int:
    """``order`` if it is an integer in 0..MAX_ORDER, else ValueError naming it."""
    if isinstance(order, bool) or not isinstance(order, int) or not 0 <= order <= MAX_ORDER:
        raise ValueError(f"order must be an integer in 0..{MAX_ORDER}, got {order!r}")
    return order


def chebyshev_terms(x: torch.Tensor, order: int) -> List[torch.Tensor]:
    """Chebyshev terms of Eq. (3) by Hadamard-product recursion.

    Returns a Python list ``[T_0(x), ..., T_order(x)]`` of tensors shaped like
    ``x`` (T_0 is a ones tensor), differentiable with respect to ``x``.
    """
    check_order(order)
    terms = [torch.ones_like(x), x]
    for i in range(1, order):
        terms.append(2 * x * terms[i] - terms[i - 1])
    return terms[: order + 1]


def power_terms(x: torch.Tensor, order: int) -> List[torch.Tensor]:
    """Plain powers ``[x^0, ..., x^order]`` (the PU basis), a list like :func:`chebyshev_terms`."""
    check_order(order)
    terms = [torch.ones_like(x)]
    for _ in range(order):
        terms.append(terms[-1] * x)
    return terms


TERMS = {"chebyshev": chebyshev_terms, "power": power_terms}


def poly_fusion_reference(x, f, alpha, basis: str, sigma: str, bound: str, identity: bool):
    """[x +] f ∘ Σ α_i σ(P_i(bound(x))) with plain autograd ops (the definition).

    x, f: tensors of one shape; alpha: (d + 1,); basis "chebyshev" | "power";
    sigma "sigmoid" | "softmax" (over the d + 1 terms) | "tanh" | "identity";
    bound "tanh" | "clamp" | "none".  Returns x's shape.
    """
    z = torch.stack(TERMS[basis](BOUND[bound](x), alpha.numel() - 1))
    s = torch.softmax(z, dim=0) if sigma == "softmax" else ACT[sigma](z)
    y = f * torch.tensordot(alpha, s, dims=1)
    return x + y if identity else y
