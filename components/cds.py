"""Co-domain Symmetry for Complex-Valued Deep Learning (Singhal, Xing & Yu, CVPR 2022).

components/cds.py: complex-scale equivariant / invariant layers on torch complex tensors.

Implemented (paper section / equation):
  ComplexConv2d            Sec. 3.1, Eq. 1 and Gauss's three-multiplication form (EConv
                           without bias; ``bias=True`` is the DCN baseline's ComplexConv)
  CReLU                    Sec. 3.2 (DCN's non-linearity)
  EquivariantActivation    Sec. 3.2, Eq. 2 (E{N})
  GTReLU, ComplexScale     Sec. 3.6 (generalised tangent ReLU; its per-channel scaling c)
  MagnitudeMaxPool2d       Sec. 3.3
  EquivariantBatchNorm2d   Sec. 3.4, Eq. 3
  DivisionLayer, ConjugateLayer, divide, conjugate_multiply   Sec. 3.5, Eqs. 4, 5
  PrototypeDistance        Sec. 3.7, Eqs. 6-8 (plain / invariant; Euclidean / manifold)

Every parameter is a REAL tensor (separate real and imaginary parts), so that
``module.to(dtype=torch.float64)`` and optimisers' weight decay behave as for any real
module; inputs are complex64/complex128 and outputs keep the matching complex dtype.
torch has complex tensors but no complex-scale-equivariant layers, hence these modules.
Encodings and the CIFARNet model builders live in components/cds_models.py.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F


def _check_complex(z: torch.Tensor, ndim: int, who: str) -> None:
    if not torch.is_tensor(z) or not z.is_complex() or z.dim() != ndim:
        got = f"{z.dtype} tensor of shape {tuple(z.shape)}" if torch.is_tensor(z) else type(z).__name__
        raise ValueError(f"{who} expects a complex {ndim}-D tensor, got {got}")


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def safe_angle(z: torch.Tensor) -> torch.Tensor:
    """Phase of ``z`` in (-pi, pi]; 0 (with a zero gradient) where z == 0.

    ``torch.angle``'s gradient is NaN at 0; zero features are common after zero padding.
    """
    zero = (z.real == 0) & (z.imag == 0)
    re = torch.where(zero, torch.ones_like(z.real), z.real)
    im = torch.where(zero, torch.zeros_like(z.imag), z.imag)
    return torch.atan2(im, re)


def _complex_param(*shape: int, low: float = 0.0, high: float = 1.0) -> nn.Parameter:
    """Real (2, *shape) parameter, uniform in [low, high): [0] real part, [1] imaginary part."""
    return nn.Parameter(torch.empty(2, *shape).uniform_(low, high))


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


class ComplexConv2d(nn.Module):
    """Complex 2-D convolution W * z with W = A + iB stored as two real weight tensors.

    Args:
        in_channels, out_channels, kernel_size: as nn.Conv2d (square kernels).
        stride=1, padding=0 (zeros, which keeps C-scale equivariance), groups=1.
        bias=False: EConv (Sec. 3.1) has no bias, so it is C-linear and equivariant;
            ``bias=True`` adds a complex bias (DCN's ComplexConv, not equivariant).
        gauss=True: Gauss's trick, three real convolutions t1 = A*x, t2 = B*y,
            t3 = (A+B)*(x+y), W*z = (t1 - t2) + i(t3 - t2 - t1); False: Eq. 1 with four.
    Init: both parts N(0, 1/(2 fan_in)), so Var(W) = 1/fan_in (complex He-style scaling).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = False, gauss: bool = True):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("groups", groups)):
            _positive_int(v, name)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups must divide in_channels ({in_channels}) and out_channels "
                             f"({out_channels}), got {groups}")
        self.stride, self.padding, self.groups, self.gauss = stride, padding, groups, bool(gauss)
        fan_in = in_channels // groups * kernel_size ** 2
        shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        std = 1.0 / math.sqrt(2.0 * fan_in)
        self.weight_real = nn.Parameter(torch.randn(shape) * std)
        self.weight_imag = nn.Parameter(torch.randn(shape) * std)
        self.bias = nn.Parameter(torch.zeros(2, out_channels)) if bias else None

    def _conv(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, None, self.stride, self.padding, 1, self.groups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) complex -> (N, C_out, H', W') complex."""
        _check_complex(z, 4, "ComplexConv2d")
        x, y, a, b = z.real, z.imag, self.weight_real, self.weight_imag
        if self.gauss:
            t1, t2, t3 = self._conv(x, a), self._conv(y, b), self._conv(x + y, a + b)
            re, im = t1 - t2, t3 - t2 - t1
        else:
            re = self._conv(x, a) - self._conv(y, b)
            im = self._conv(y, a) + self._conv(x, b)
        if self.bias is not None:
            re = re + self.bias[0, :, None, None]
            im = im + self.bias[1, :, None, None]
        return torch.complex(re, im)


class CReLU(nn.Module):
    """CReLU(z) = ReLU(Re z) + i ReLU(Im z) (DCN, Sec. 3.2). No arguments."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Any complex shape -> same shape."""
        return torch.complex(F.relu(z.real), F.relu(z.imag))


class ComplexScale(nn.Module):
    """Learned per-channel complex scaling z_c -> c_c z_c (C-linear, hence equivariant).

    Args:
        channels: number of channels (dim 1).
    Init: real and imaginary parts of c uniform in [0, 1), as in the reference code.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.scale = _complex_param(_positive_int(channels, "channels"))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, *) complex -> same shape."""
        c = torch.complex(self.scale[0], self.scale[1]).view(1, -1, *([1] * (z.dim() - 2)))
        return z * c


class GTReLU(nn.Module):
    """Generalised tangent ReLU (Sec. 3.6): max(r, |c z|) exp(i w relu(angle(c z))).

    Args:
        channels: number of channels (dim 1).
        r=0.0: magnitude threshold (real, >= 0). r = 0 (the paper's CIFAR setting) makes the
            layer positively homogeneous, i.e. equivariant to input magnitude (not to phase:
            wrap it in EquivariantActivation for that).
        scale=True: learn the per-channel complex scaling c (Fig. 4b); False fixes c = 1.
        phase_scale=True: learn the per-channel output phase scale w (Fig. 4d), init 1;
            unconstrained (the reference clamps it; the paper does not).
    angle() is taken in (-pi, pi], so relu keeps the upper half plane and maps the lower
    half onto the positive real axis.
    """

    def __init__(self, channels: int, r: float = 0.0, scale: bool = True, phase_scale: bool = True):
        super().__init__()
        _positive_int(channels, "channels")
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not (r >= 0 and math.isfinite(r)):
            raise ValueError(f"r must be a finite real number >= 0, got {r!r}")
        self.r = float(r)
        self.scale = ComplexScale(channels) if scale else None
        self.phase_scale = nn.Parameter(torch.ones(channels)) if phase_scale else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, *) complex -> same shape."""
        if self.scale is not None:
            z = self.scale(z)
        mag = z.abs()
        if self.r > 0:
            mag = mag.clamp_min(self.r)
        phase = F.relu(safe_angle(z))
        if self.phase_scale is not None:
            phase = phase * self.phase_scale.view(1, -1, *([1] * (z.dim() - 2)))
        return torch.complex(mag * torch.cos(phase), mag * torch.sin(phase))


class EquivariantActivation(nn.Module):
    """E{N} (Eq. 2): m_hat * N(z * conj(m_hat)), m_hat = m / max(|m|, eps), m = channel mean.

    Args:
        base: the complex non-linearity N (a module or callable, e.g. CReLU() or
            GTReLU(C, r=0)). E{N} is phase-equivariant for any N, and C-scale equivariant
            when N is positively homogeneous (CReLU, GTReLU with r = 0).
        eps=1e-6: keeps m_hat finite where the channel mean vanishes. A floor rather than
            an added offset, so m_hat is exactly unit-modulus (exact equivariance) for |m| >= eps.
    The mean is over channels at each pixel (Fig. 3), as in the reference code.
    """

    def __init__(self, base: Callable[[torch.Tensor], torch.Tensor], eps: float = 1e-6):
        super().__init__()
        if not callable(base):
            raise ValueError(f"base must be a callable complex non-linearity, got {base!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.base, self.eps = base, float(eps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, *) complex -> same shape."""
        m = z.mean(dim=1, keepdim=True)
        m_hat = m / m.abs().clamp_min(self.eps)
        return m_hat * self.base(z * m_hat.conj())


class MagnitudeMaxPool2d(nn.Module):
    """Max-pool by magnitude (Sec. 3.3): each window returns its complex value of largest |z|.

    Args: kernel_size, stride=None (= kernel_size), padding=0, as nn.MaxPool2d.
    """

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.kernel_size = _positive_int(kernel_size, "kernel_size")
        self.stride = kernel_size if stride is None else _positive_int(stride, "stride")
        if isinstance(padding, bool) or not isinstance(padding, int) or not 0 <= padding <= kernel_size // 2:
            raise ValueError(f"padding must be an integer in 0..kernel_size//2, got {padding!r}")
        self.padding = padding

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> (N, C, H', W') complex."""
        _check_complex(z, 4, "MagnitudeMaxPool2d")
        _, idx = F.max_pool2d(z.abs(), self.kernel_size, self.stride, self.padding, return_indices=True)
        return z.flatten(2).gather(2, idx.flatten(2)).view(idx.shape)


class EquivariantBatchNorm2d(nn.Module):
    """Eq. 3: BN(|z|) * z / max(|z|, eps), real BatchNorm2d on the magnitude only.

    Args:
        num_features: channels C.
        eps=1e-6: Eq. 3's epsilon, used as a floor on |z| instead of an offset: identical
            for |z| >> eps, and the phase factor z/|z| is then exact (so is invariance).
        bn_eps=1e-5, momentum=0.1: passed to nn.BatchNorm2d (affine, running stats).
    Phase-equivariant always; invariant to a batch-global magnitude only with batch
    statistics (training mode): in eval mode BN is an affine map of |z|.
    """

    def __init__(self, num_features: int, eps: float = 1e-6, bn_eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        _positive_int(num_features, "num_features")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps = float(eps)
        self.bn = nn.BatchNorm2d(num_features, eps=bn_eps, momentum=momentum)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> same shape."""
        _check_complex(z, 4, "EquivariantBatchNorm2d")
        mag = z.abs()
        return self.bn(mag) * (z / mag.clamp_min(self.eps))


class _RelativeLayer(nn.Module):
    """Shared body of the Division / Conjugate layers: z2 = EConv(z1), same spatial size."""

    def __init__(self, channels: int, kernel_size: int, shared_denominator: bool, gauss: bool):
        super().__init__()
        _positive_int(channels, "channels")
        if _positive_int(kernel_size, "kernel_size") % 2 == 0:
            raise ValueError(f"kernel_size must be odd (same-size output), got {kernel_size}")
        self.conv = ComplexConv2d(channels, 1 if shared_denominator else channels, kernel_size,
                                  padding=kernel_size // 2, gauss=gauss)

    def reference(self, z: torch.Tensor) -> torch.Tensor:
        _check_complex(z, 4, type(self).__name__)
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
    """

    def __init__(self, channels: int, kernel_size: int = 3, shared_denominator: bool = True,
                 eps: float = 1e-7, relative_eps: bool = True, gauss: bool = True):
        super().__init__(channels, kernel_size, shared_denominator, gauss)
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps, self.relative_eps = float(eps), bool(relative_eps)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> same shape, C-scale invariant."""
        return divide(z, self.reference(z), self.eps, self.relative_eps)


class ConjugateLayer(_RelativeLayer):
    """Phase-invariant layer (Sec. 3.5): z * conj(EConv(z)).

    Args: channels, kernel_size=3 (odd), shared_denominator=False (C -> C EConv, the
        reference default), gauss=True; as DivisionLayer.
    """

    def __init__(self, channels: int, kernel_size: int = 3, shared_denominator: bool = False,
                 gauss: bool = True):
        super().__init__(channels, kernel_size, shared_denominator, gauss)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> same shape, phase invariant (scales by |s|^2)."""
        return conjugate_multiply(z, self.reference(z))


class PrototypeDistance(nn.Module):
    """Class logits L_k = -alpha * d(f, p_k) (Eq. 6), or d(f, p_k * mean_c f) (Eq. 8).

    Args:
        in_features: C, complex features per sample.
        num_classes: K prototypes.
        invariant=False: Eq. 8, prototypes multiplied by the channel mean of f. With the
            manifold metric the logits are then invariant to any complex s; with the
            Euclidean one to phase, and they scale with |s|.
        metric="euclidean": d = sqrt(mean_c |f_c - p_c|^2) (the reference's choice);
            "manifold": Eq. 7 per channel, (ln|f_c| - ln|p_c|)^2 + arc^2, averaged the same way.
        eps=1e-6: floor on |.| inside ln for the manifold metric.
    alpha (learned, init 1) is the temperature; prototypes' real and imaginary parts are
    initialised uniform in [0, 1) as in the reference.
    """

    def __init__(self, in_features: int, num_classes: int, invariant: bool = False,
                 metric: str = "euclidean", eps: float = 1e-6):
        super().__init__()
        _positive_int(in_features, "in_features")
        _positive_int(num_classes, "num_classes")
        if metric not in ("euclidean", "manifold"):
            raise ValueError(f"metric must be 'euclidean' or 'manifold', got {metric!r}")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.invariant, self.metric, self.eps = bool(invariant), metric, float(eps)
        self.prototypes = _complex_param(in_features, num_classes)
        self.alpha = nn.Parameter(torch.ones(()))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """(N, C) or (N, C, 1, 1) complex -> (N, K) real logits."""
        if f.dim() == 4 and f.shape[2:] == (1, 1):
            f = f.flatten(1)
        _check_complex(f, 2, "PrototypeDistance")
        p = torch.complex(self.prototypes[0], self.prototypes[1])[None]  # (1, C, K)
        if self.invariant:
            p = p * f.mean(dim=1)[:, None, None]
        f = f[:, :, None]
        if self.metric == "euclidean":
            d2 = (f - p).abs() ** 2
        else:
            dlog = torch.log(f.abs().clamp_min(self.eps)) - torch.log(p.abs().clamp_min(self.eps))
            d2 = dlog ** 2 + safe_angle(f * p.conj()) ** 2
        # the clamp keeps sqrt's gradient finite if f hits a prototype exactly
        return -self.alpha * d2.mean(dim=1).clamp_min(1e-24).sqrt()


from . import cds_models  # noqa: E402,F401  (registers encodings and complex models)
