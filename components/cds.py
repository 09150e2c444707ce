"""Co-domain Symmetry for Complex-Valued Deep Learning (Singhal, Xing & Yu, CVPR 2022).

components/cds.py: the complex-scale equivariant layers on torch complex tensors.

Implemented (paper section / equation):
  ComplexConv2d            Sec. 3.1, Eq. 1 and Gauss's three-multiplication form (EConv
                           without bias; ``bias=True`` is the DCN baseline's ComplexConv)
  CReLU                    Sec. 3.2 (DCN's non-linearity)
  EquivariantActivation    Sec. 3.2, Eq. 2 (E{N})
  GTReLU, ComplexScale     Sec. 3.6 (generalised tangent ReLU; its per-channel scaling c)
  MagnitudeMaxPool2d       Sec. 3.3
  EquivariantBatchNorm2d   Sec. 3.4, Eq. 3

Where the paper is silent and the authors' code (sutkarsh/cds) chose, the choice is an
argument whose default follows the paper (see docs/reproduction.md, "CDS"):
  ComplexConv2d(init=)     "fan_in" (He-style, the paper gives no scheme) or the
                           reference's fan-out scheme with gain 1/sqrt(2)
  GTReLU(omega_constraint=)  "none" (the paper's omega in R) or the reference's
                           clamp to [0.5, 2] (its Type-I GTReLU) or relu (its Type-E one)

Every parameter is a REAL tensor (separate real and imaginary parts), so that
``module.to(dtype=torch.float64)`` and optimisers' weight decay behave as for any real
module; inputs are complex64/complex128 and outputs keep the matching complex dtype.
torch has complex tensors but no complex-scale-equivariant layers, hence these modules.
The invariant layers (Secs. 3.5, 3.7) live in components/cds_invariant.py, the colour
encodings in components/cds_encodings.py and the CIFARNet models in components/cds_models.py.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

# ComplexConv2d's initialisation schemes (see its docstring).
CONV_INITS = ("fan_in", "reference", "reference_ungrouped")
# GTReLU's constraint on the phase scale omega: none (Sec. 3.6), clamp to [0.5, 2], relu.
OMEGA_CONSTRAINTS = ("none", "clamp", "relu")
OMEGA_CLAMP = (0.5, 2.0)


def check_complex(z: torch.Tensor, ndim: int, who: str) -> None:
    """Raise ValueError unless ``z`` is a complex tensor with ``ndim`` dimensions."""
    if not torch.is_tensor(z) or not z.is_complex() or z.dim() != ndim:
        got = f"{z.dtype} tensor of shape {tuple(z.shape)}" if torch.is_tensor(z) else type(z).__name__
        raise ValueError(f"{who} expects a complex {ndim}-D tensor, got {got}")


def positive_int(value, name: str) -> int:
    """``value`` if it is an int >= 1 (not a bool), else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def one_of(value, choices, name: str):
    """``value`` if it is one of ``choices``, else ValueError naming ``name`` and the choices."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def safe_angle(z: torch.Tensor) -> torch.Tensor:
    """Phase of ``z`` in (-pi, pi]; 0 (with a zero gradient) where z == 0.

    ``torch.angle``'s gradient is NaN at 0; zero features are common after zero padding.
    """
    zero = (z.real == 0) & (z.imag == 0)
    re = torch.where(zero, torch.ones_like(z.real), z.real)
    im = torch.where(zero, torch.zeros_like(z.imag), z.imag)
    return torch.atan2(im, re)


def complex_param(*shape: int, low: float = 0.0, high: float = 1.0) -> nn.Parameter:
    """Real (2, *shape) parameter, uniform in [low, high): [0] real part, [1] imaginary part."""
    return nn.Parameter(torch.empty(2, *shape).uniform_(low, high))


def conv_init_std(init: str, in_channels: int, out_channels: int, kernel_size: int, groups: int = 1) -> float:
    """Std of each of the real and imaginary weight parts under ``init`` (ComplexConv2d).

    fan_in: 1/sqrt(2 k^2 C_in/g); reference: 1/sqrt(2 k^2 C_out/g); reference_ungrouped:
    1/sqrt(2 k^2 C_out). The gain 1/sqrt(2) per part makes Var(A + iB) = 1/fan.
    """
    one_of(init, CONV_INITS, "init")
    fan = {"fan_in": in_channels / groups, "reference": out_channels / groups,
           "reference_ungrouped": out_channels}[init]
    return 1.0 / math.sqrt(2.0 * kernel_size ** 2 * fan)


class ComplexConv2d(nn.Module):
    """Complex 2-D convolution W * z with W = A + iB stored as two real weight tensors.

    Args:
        in_channels, out_channels, kernel_size: as nn.Conv2d (square kernels).
        stride=1, padding=0 (zeros, which keeps C-scale equivariance), groups=1.
        bias=False: EConv (Sec. 3.1) has no bias, so it is C-linear and equivariant;
            ``bias=True`` adds a complex bias (DCN's ComplexConv, not equivariant).
        gauss=True: Gauss's trick, three real convolutions t1 = A*x, t2 = B*y,
            t3 = (A+B)*(x+y), W*z = (t1 - t2) + i(t3 - t2 - t1); False: Eq. 1 with four.
        init="fan_in": A and B ~ N(0, std^2) with std from ``conv_init_std``. The paper
            gives no scheme; "fan_in" (std 1/sqrt(2 k^2 C_in/g), so Var(W) = 1/fan_in,
            complex He-style) keeps the forward signal's scale. "reference" is the
            authors' code (gain 1/sqrt(2) over k^2 C_out/g); "reference_ungrouped" its
            variant without the division by groups, which its 1x1 projection uses.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = False, gauss: bool = True,
                 init: str = "fan_in"):
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("kernel_size", kernel_size), ("stride", stride), ("groups", groups)):
            positive_int(v, name)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {padding!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"groups must divide in_channels ({in_channels}) and out_channels "
                             f"({out_channels}), got {groups}")
        self.stride, self.padding, self.groups, self.gauss = stride, padding, groups, bool(gauss)
        self.init = one_of(init, CONV_INITS, "init")
        shape = (out_channels, in_channels // groups, kernel_size, kernel_size)
        std = conv_init_std(init, in_channels, out_channels, kernel_size, groups)
        self.weight_real = nn.Parameter(torch.randn(shape) * std)
        self.weight_imag = nn.Parameter(torch.randn(shape) * std)
        self.bias = nn.Parameter(torch.zeros(2, out_channels)) if bias else None

    def _conv(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, None, self.stride, self.padding, 1, self.groups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) complex -> (N, C_out, H', W') complex."""
        check_complex(z, 4, "ComplexConv2d")
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
        self.scale = complex_param(positive_int(channels, "channels"))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, *) complex -> same shape."""
        c = torch.complex(self.scale[0], self.scale[1]).view(1, -1, *([1] * (z.dim() - 2)))
        return z * c


class GTReLU(nn.Module):
    """Generalised tangent ReLU (Sec. 3.6): max(r, |c z|) exp(i omega relu(angle(c z))).

    Args:
        channels: number of channels (dim 1).
        r=0.0: magnitude threshold (real, >= 0). r = 0 (the paper's CIFAR setting) makes the
            layer positively homogeneous, i.e. equivariant to input magnitude (not to phase:
            wrap it in EquivariantActivation for that).
        scale=True: learn the per-channel complex scaling c (Fig. 4b); False fixes c = 1.
        phase_scale=True: learn the per-channel output phase scale omega (Fig. 4d), init 1;
            False fixes omega = 1.
        omega_constraint="none": omega as learned (Sec. 3.6: omega in R). "clamp": the
            authors' Type-I GTReLU, clamp(omega, 0.5, 2); "relu": their Type-E (equivariant)
            one, max(omega, 0). Needs phase_scale=True unless "none".
    angle() is taken in (-pi, pi], so relu keeps the upper half plane and maps the lower
    half onto the positive real axis.
    """

    def __init__(self, channels: int, r: float = 0.0, scale: bool = True, phase_scale: bool = True,
                 omega_constraint: str = "none"):
        super().__init__()
        positive_int(channels, "channels")
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not (r >= 0 and math.isfinite(r)):
            raise ValueError(f"r must be a finite real number >= 0, got {r!r}")
        self.omega_constraint = one_of(omega_constraint, OMEGA_CONSTRAINTS, "omega_constraint")
        if omega_constraint != "none" and not phase_scale:
            raise ValueError(f"omega_constraint={omega_constraint!r} constrains the learned phase scale "
                             f"omega; it needs phase_scale=True")
        self.r = float(r)
        self.scale = ComplexScale(channels) if scale else None
        self.phase_scale = nn.Parameter(torch.ones(channels)) if phase_scale else None

    def omega(self) -> torch.Tensor:
        """(C,) phase scale omega after ``omega_constraint``."""
        if self.omega_constraint == "clamp":
            return self.phase_scale.clamp(*OMEGA_CLAMP)
        if self.omega_constraint == "relu":
            return F.relu(self.phase_scale)
        return self.phase_scale

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, *) complex -> same shape."""
        if self.scale is not None:
            z = self.scale(z)
        mag = z.abs()
        if self.r > 0:
            mag = mag.clamp_min(self.r)
        phase = F.relu(safe_angle(z))
        if self.phase_scale is not None:
            phase = phase * self.omega().view(1, -1, *([1] * (z.dim() - 2)))
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
        self.kernel_size = positive_int(kernel_size, "kernel_size")
        self.stride = kernel_size if stride is None else positive_int(stride, "stride")
        if isinstance(padding, bool) or not isinstance(padding, int) or not 0 <= padding <= kernel_size // 2:
            raise ValueError(f"padding must be an integer in 0..kernel_size//2, got {padding!r}")
        self.padding = padding

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> (N, C, H', W') complex."""
        check_complex(z, 4, "MagnitudeMaxPool2d")
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
        positive_int(num_features, "num_features")
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps!r}")
        self.eps = float(eps)
        self.bn = nn.BatchNorm2d(num_features, eps=bn_eps, momentum=momentum)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) complex -> same shape."""
        check_complex(z, 4, "EquivariantBatchNorm2d")
        mag = z.abs()
        return self.bn(mag) * (z / mag.clamp_min(self.eps))
