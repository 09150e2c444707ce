"""Cross-layer fusion: Chebyshev Fusion Unit (CFU), polynomial unit (PU) and baselines.

Paper: "Parameter-Efficient Cross-Layer Feature Fusion via Chebyshev Polynomial
Unit" (shared/seeds/000_74f9e9f97bcca099.txt).

* Eq. (3): T_0 = 1, T_1 = x, T_{i+1} = 2x ∘ T_i − T_{i−1} (Hadamard products),
  ``fusion_formula.chebyshev_terms``; the PU of Sec. IV-C uses plain powers
  x^i instead, ``fusion_formula.power_terms``.
* Eq. (4): y = f(x) ∘ Σ_{i=0..d} α_i σ(T_i(x)) with d + 1 learnable scalars
  (Sec. III-C), :class:`ChebyshevFusion` / :class:`PolynomialFusion`.
* Fig. 1(b, c): additive (x + f(x)) and concatenation fusion, the baselines.

Which tensor is which (Sec. III-B): x is the *shortcut* feature (it generates
the polynomial terms), f(x) the *current-layer* feature (it is gated).  Every
fusion is called ``fusion(shortcut, current)``.  The terms and the reference
formula live in components/fusion_formula.py.

Choices where the paper is silent or where a variant is worth having
(constructor arguments of CFU/PU).  The defaults are Eq. (4) verbatim:

* ``identity=False``: y = f(x) ∘ Σ α_i σ(T_i(x)), Eq. (4) as printed.
  ``identity=True`` adds the shortcut, y = x + f(x) ∘ Σ α_i σ(T_i(x)): Eq. (4)
  has no identity path, but the paper's own analysis of polynomial fusion
  (Eq. 5, y_PF = x + Σ x^i f(x)) keeps x, and Sec. IV-C swaps CFU for the
  *additive* shortcut of ResNet18/MobileNetV2.
* ``bound="none"``: T_i of x itself, as Eq. (4) is printed.  ``"tanh"``
  squashes the shortcut into (−1, 1) before the recursion: Sec. III-A relies
  on the [−1, 1] bounds of T_i for "numerical stability", which hold only on
  [−1, 1]; outside it T_i grows like (2|x|)^i (T_9(10) ≈ 2.6e11, and σ
  saturates, so the gradient vanishes or explodes).  tanh is smooth, keeps
  small activations unchanged to first order and adds no parameter (a
  learnable scale would break the d + 1 count of Sec. III-C).  ``"clamp"`` is
  the hard alternative.  The identity path uses the raw x.
* :data:`FORMS` names the two combinations the sweeps use: ``"eq4"``
  (identity=False, bound="none", the default, the paper's unit) and
  ``"bounded_additive"`` (identity=True, bound="tanh"), ablate's default
  before issue 26, which starts exactly at x + f(x) and stays within ~1 % of a
  residual network: a different unit (it differs from Eq. 4 by about 3 at
  the same α), kept as a named variant and an ablation axis of the order
  sweeps.
* ``alpha_init="additive"``: α_0 = 1/σ(T_0) and α_{i≥1} = 0 (for softmax all
  α_i = 1, since the weights sum to one), so the gate Σ α_i σ(T_i) ≡ 1 at
  initialisation: Eq. (4) then starts as f(x) (the current feature passes
  unchanged), the identity form as x + f(x); the paper calls the α_0 term "a
  preserved but controllable primary output" (Sec. III-B).  Every α still
  receives a gradient at that point.  "uniform" (α_i = 1/(d + 1)) is the
  naive reading, a gate that starts near σ's mean and shrinks f(x).  The
  paper gives no initialisation.
* ``sigma``: "sigmoid" (default, Sec. III-C), "softmax" over the d + 1 terms of
  each element (the other option the paper names; softmax over channels or
  space would make the unit shape-dependent), "tanh" or "identity".
* Default ``order=4``: the best order in most of Tab. I, II and IV.

Speed: with an elementwise σ and order ≥ 1 the units run through the
hand-written autograd Function of components/fusion_kernels.py: same values
and gradients as ``fusion_formula.poly_fusion_reference`` (tested), ~2.5×
faster than autograd through it at order 9 on CPU, and it keeps (d + 2)·N
values for backward instead of ~3(d + 1)·N.  ``fused=False`` or σ = softmax
use the reference formula.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .fusion_formula import SIGMA_OF_ONE, check_order, poly_fusion_reference
from .fusion_kernels import FusedPolyGate, fused_forward
from .registry import register

SIGMAS = ("sigmoid", "softmax", "tanh", "identity")
BOUNDS = ("tanh", "clamp", "none")
ALPHA_INITS = ("additive", "uniform")
# Named combinations of (identity, bound): the paper's Eq. (4) and ablate's earlier default.
FORMS = {"eq4": {"identity": False, "bound": "none"},
         "bounded_additive": {"identity": True, "bound": "tanh"}}


def _check_choice(name: str, value, allowed) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


class _PolyFusion(nn.Module):
    basis = "chebyshev"

    def __init__(self, order: int = 4, channels: Optional[int] = None, sigma: str = "sigmoid",
                 bound: str = "none", alpha_init: str = "additive", identity: bool = False,
                 fused: bool = True) -> None:
        super().__init__()
        self.order = check_order(order)
        self.sigma = _check_choice("sigma", sigma, SIGMAS)
        self.bound = _check_choice("bound", bound, BOUNDS)
        self.alpha_init = _check_choice("alpha_init", alpha_init, ALPHA_INITS)
        if not isinstance(identity, bool):
            raise ValueError(f"identity must be a bool, got {identity!r}")
        if not isinstance(fused, bool):
            raise ValueError(f"fused must be a bool, got {fused!r}")
        self.identity, self.fused = identity, fused
        self.alpha = nn.Parameter(torch.empty(order + 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            if self.alpha_init == "uniform":
                self.alpha.fill_(1.0 / (self.order + 1))
            elif self.sigma == "softmax":
                self.alpha.fill_(1.0)
            else:
                self.alpha.zero_()
                self.alpha[0] = 1.0 / SIGMA_OF_ONE[self.sigma]

    def forward(self, shortcut: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """shortcut (= x), current (= f(x)): same shape, any (N, C, *spatial) or (N, F);
        returns that shape."""
        alpha = self.alpha.to(dtype=shortcut.dtype)
        spec = (self.basis, self.sigma, self.bound, self.identity)
        if not (self.fused and self.order >= 1 and self.sigma != "softmax"
                and shortcut.shape == current.shape and shortcut.dtype == current.dtype):
            return poly_fusion_reference(shortcut, current, alpha, *spec)
        if torch.is_grad_enabled() and (shortcut.requires_grad or current.requires_grad or alpha.requires_grad):
            return FusedPolyGate.apply(shortcut, current, alpha, *spec)
        return fused_forward(shortcut, current, alpha, *spec, need_h=False, need_rows=False)[0]

    def extra_repr(self) -> str:
        return (f"order={self.order}, sigma={self.sigma!r}, bound={self.bound!r}, "
                f"alpha_init={self.alpha_init!r}, identity={self.identity}")


@register("fusion", "cfu")
class ChebyshevFusion(_PolyFusion):
    """Chebyshev Fusion Unit, Eq. (4): y = [x +] f(x) ∘ Σ_{i=0..d} α_i σ(T_i(bound(x))).

    Exactly ``order + 1`` parameters (α).  The defaults are Eq. (4) verbatim;
    see the module docstring for each choice (``FORMS`` names the two the
    sweeps use).

    Args:
        order: d, highest Chebyshev order, 0..20 (paper sweeps 1..9; default 4).
        channels: accepted and ignored (uniform fusion signature; CFU is elementwise).
        sigma: "sigmoid" (default), "softmax" (over the d+1 terms), "tanh", "identity".
        bound: squashing of x before the recursion: "none" (default, Eq. 4), "tanh", "clamp".
        alpha_init: "additive" (default; the gate ≡ 1 at init) or "uniform".
        identity: add the shortcut x to the gated f(x) (default False, Eq. 4;
            True: the identity path of Eq. 5).
        fused: use the hand-written backward (default True; same values).
    """

    basis = "chebyshev"


@register("fusion", "pu")
class PolynomialFusion(_PolyFusion):
    """Polynomial unit (PU, Sec. IV-C): CFU with plain powers x^i instead of T_i(x).

    Same arguments and defaults as :class:`ChebyshevFusion` (so that the two
    differ only in the basis); ``order + 1`` parameters.
    """

    basis = "power"


@register("fusion", "add")
class AdditiveFusion(nn.Module):
    """Additive fusion x + f(x) (Fig. 1b, ResNet).  No parameters.

    Args:
        order, channels: accepted and ignored (uniform fusion signature).
    """

    def __init__(self, order: Optional[int] = None, channels: Optional[int] = None) -> None:
        super().__init__()

    def forward(self, shortcut: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """shortcut, current: same shape; returns that shape."""
        return shortcut + current


@register("fusion", "concat")
class ConcatFusion(nn.Module):
    """Concatenation fusion (Fig. 1c, DenseNet/UNet): a 1×1 projection of [x, f(x)].

    The projection is a linear map over the channel dim 1, so one weight
    serves (N, C), (N, C, L), (N, C, H, W) and (N, C, D, H, W); it is
    initialised like ``nn.Conv2d(2C, C, 1)``.  2C² + C parameters.

    Args:
        channels: C, channels of each input and of the output (required).
        order: accepted and ignored (uniform fusion signature).
        bias: learnable bias (default True, as nn.Conv2d).
    """

    def __init__(self, order: Optional[int] = None, channels: Optional[int] = None,
                 bias: bool = True) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be a positive integer (concat fusion needs it), got {channels!r}")
        self.channels = channels
        self.weight = nn.Parameter(torch.empty(channels, 2 * channels))
        self.bias = nn.Parameter(torch.empty(channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Conv2d's default init, fan_in = 2C.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(2 * self.channels)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, shortcut: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """shortcut, current: (N, C) or (N, C, *spatial) with 1–3 spatial dims; returns that shape."""
        if shortcut.dim() < 2 or shortcut.shape[1] != self.channels:
            raise ValueError(f"expected (N, {self.channels}, ...) inputs, got {tuple(shortcut.shape)}")
        z = torch.cat([shortcut, current], dim=1)
        if z.dim() == 2:
            return F.linear(z, self.weight, self.bias)
        conv = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}.get(z.dim())
        if conv is None:  # more than 3 spatial dims: same map via movedim
            return F.linear(z.movedim(1, -1), self.weight, self.bias).movedim(-1, 1)
        return conv(z, self.weight.view(self.channels, 2 * self.channels, *([1] * (z.dim() - 2))), self.bias)
