"""Co-domain Symmetry for Complex-Valued Deep Learning (Singhal, Xing & Yu, CVPR 2022).

components/cds_invariant.py: the complex-scale invariant layers and the prototype head.

Implemented (paper section / equation):
  divide, DivisionLayer               Sec. 3.5, Eq. 4 (Type-I's early invariance)
  conjugate_multiply, ConjugateLayer  Sec. 3.5, Eq. 5 (phase invariance)
  PrototypeDistance                   Sec. 3.7, Eqs. 6-8 (plain / invariant; Euclidean / manifold)

Eq. 8 multiplies the prototypes by "the mean activation averaged over channels"; the
authors' code multiplies them by sum_c f / sqrt(2C) instead, sqrt(C/2) times the mean
(8x at C = 128). ``PrototypeDistance(scale=)`` offers both; the default is Eq. 8.
The equivariant layers and shared helpers live in components/cds.py.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .cds import ComplexConv2d, check_complex, complex_param, one_of, positive_int, safe_angle

PROTOTYPE_SCALES = ("mean", "reference")
METRICS = ("euclidean", "manifold")


def divide(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-7, relative: bool = False) -> torch.Tensor:
    """Eq. 4, Div(z1, z2) = |z1|/|z2| exp(i(angle z1 - angle z2)) = z1 conj(z2) / |z2|^2.

    The offset is added to |z2|^2 rather than to |z2| (Eq. 4 as printed): the two agree when
    |z2| >> eps, and this form stays finite, with finite gradients, at z2 = 0.
    relative=False: offset eps (the paper's absolute epsilon), which breaks invariance to
    small |s| by up to eps / (|s| |z2|)^2. relative=True: offset eps * mean |z2|^2 over each
    sample's (C, H, W), which scales with |s|^2 and so keeps Div exactly s-invariant.
    """
    d2 = z2.real ** 2 + z2.imag ** 2
    if relative:
        off = eps * d2.mean(dim=tuple(range(1, d2.dim())), keepdim=True) + torch.finfo(d2.dtype).tiny
    else:
        off = eps
    return z1 * z2.conj() / (d2 + off)


def conjugate_multiply(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """Eq. 5, Conj(z1, z2) = z1 conj(z2): invariant to a common phase, scales with |s|^2."""
    return z1 * z2.conj()


class _RelativeLayer(nn.Module):
    """Shared body of the Division / Conjugate layers: z2 = EConv(z1), same spatial size."""

    def __init__(self, channels: int, kernel_size: int, shared_denominator: bool, gauss: bool, init: str):
        super().__init__()
        positive_int(channels, "channels")
        if positive_int(kernel_size, "kernel_size") % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-size output), got {kernel_size}")
        self.conv = ComplexConv2d(channels, 1 if shared_denominator else channels, kernel_size,
                                  padding=kernel_size // 2, gauss=gauss, init=init)

    def reference(self, z: torch.Tensor) -> torch.Tensor:
        check_complex(z, 4, type(self).__name__)
        return self.conv(z)  # (N, 1 or C, H, W); a single channel broadcasts over C


class DivisionLayer(_RelativeLayer):
    """Type-I invariant layer (Sec. 3.5): Div(z, EConv(z)), invariant to any complex s.

    Args:
        channels: C.
        kernel_size=3: the denominator EConv's kernel (odd; zero 'same' padding).
        shared_denominator=True: one denominator channel for all C (the reference's Type-I
            setting, 9C complex weights); False: a C -> C EConv.
        eps=1e-7: Eq. 4's offset (see ``divide``).
        relative_eps=True: scale the offset with each sample's mean |denominator|^2, so the
            layer is exactly invariant to a per-sample complex s (the paper's claim); False:
            the paper's absolute offset (invariance error up to ~1e-3 for |s| = 1/2 in
            float64 on unit-variance inputs).
        gauss=True: Gauss's trick in the denominator EConv.
        init="fan_in": the denominator EConv's initialisation (ComplexConv2d; the
            reference's Type-I uses "reference": 1 output channel, std 1/sqrt(18)).
    """

    def __init__(self, channels: int, kernel_size: int = 3, shared_denominator: bool = True,
                 eps: float = 1e-7, relative_eps: bool = True, gauss: bool = True, init: str = "fan_in"):
        super().__init__(channels, kernel_size, shared_denominator, gauss, init)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps, self.relative_eps = float(eps), bool(relative_eps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> same shape, C-scale invariant."""
        return divide(z, self.reference(z), self.eps, self.relative_eps)


class ConjugateLayer(_RelativeLayer):
    """Phase-invariant layer (Sec. 3.5): z * conj(EConv(z)).

    Args: channels, kernel_size=3 (odd), shared_denominator=False (C -> C EConv, the
        reference default), gauss=True, init="fan_in"; as DivisionLayer.
    """

    def __init__(self, channels: int, kernel_size: int = 3, shared_denominator: bool = False,
                 gauss: bool = True, init: str = "fan_in"):
        super().__init__(channels, kernel_size, shared_denominator, gauss, init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> same shape, phase invariant (scales by |s|^2)."""
        return conjugate_multiply(z, self.reference(z))


class PrototypeDistance(nn.Module):
    """Class logits L_k = -alpha * d(f, p_k) (Eq. 6), or d(f, p_k * g(f)) (Eq. 8).

    Args:
        in_features: C, complex features per sample.
        num_classes: K prototypes.
        invariant=False: Eq. 8, prototypes multiplied by an equivariant summary g(f) of the
            features. With the manifold metric the logits are then invariant to any
            complex s; with the Euclidean one to phase, and they scale with |s|.
        metric="euclidean": d = sqrt(mean_c |f_c - p_c|^2) (the reference's choice);
            "manifold": Eq. 7 per channel, (ln|f_c| - ln|p_c|)^2 + arc^2, averaged the same way.
        scale="mean": g(f) = mean_c f_c, Eq. 8 as written. "reference": g(f) = sum_c f_c /
            sqrt(2C), the authors' code (sqrt(C/2) x the mean). Same function class (the
            factor can move into p), but equal weights give other logits, and the
            reference's effective prototypes start sqrt(C/2) x larger and learn that much
            faster. Only with invariant=True.
        eps=1e-6: floor on |.| inside ln for the manifold metric.
    alpha (learned, init 1) is the temperature; prototypes' real and imaginary parts are
    initialised uniform in [0, 1) as in the reference.
    """

    def __init__(self, in_features: int, num_classes: int, invariant: bool = False,
                 metric: str = "euclidean", scale: str = "mean", eps: float = 1e-6):
        super().__init__()
        positive_int(in_features, "in_features")
        positive_int(num_classes, "num_classes")
        self.metric = one_of(metric, METRICS, "metric")
        self.scale = one_of(scale, PROTOTYPE_SCALES, "scale")
        if scale != "mean" and not invariant:
            raise ValueError(f"scale={scale!r} scales the invariant head's prototypes; it needs invariant=True")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.invariant, self.eps = bool(invariant), float(eps)
        self.prototypes = complex_param(in_features, num_classes)
        self.alpha = nn.Parameter(torch.ones(()))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(N, C) or (N, C, 1, 1) complex -> (N, K) real logits."""
        if f.dim() == 4 and f.shape[2:] == (1, 1):
            f = f.flatten(1)
        check_complex(f, 2, "PrototypeDistance")
        p = torch.complex(self.prototypes[0], self.prototypes[1])[None]  # (1, C, K)
        if self.invariant:
            g = f.mean(dim=1) if self.scale == "mean" else f.sum(dim=1) / math.sqrt(2 * f.shape[1])
            p = p * g[:, None, None]
        f = f[:, :, None]
        if self.metric == "euclidean":
            d2 = (f - p).abs() ** 2
        else:
            dlog = torch.log(f.abs().clamp_min(self.eps)) - torch.log(p.abs().clamp_min(self.eps))
            d2 = dlog ** 2 + safe_angle(f * p.conj()) ** 2
        # the clamp keeps sqrt's gradient finite if f hits a prototype exactly
        return -self.alpha * d2.mean(dim=1).clamp_min(1e-24).sqrt()
