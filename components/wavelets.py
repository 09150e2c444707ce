"""Fully Hyperbolic Convolutional Neural Networks (Lensink, Peters, Haber) —
components/wavelets.py: the coarsening operators W_j of Eqs. (3.4)-(3.7).

* ``dwt``: one level of the orthonormal Haar DWT (Sec. 3.2), 2D or 3D:
  (N, C, *S) -> (N, 2^d C, *S/2), exactly inverted by its transpose.
  ``scale="reference"`` is the authors' code instead (klensink/HyperNet,
  Haar2D/Haar3D): taps (1, ±1)/2 per axis, i.e. 2^(−d/2) × orthonormal (0.5×
  in 2D), with the inverse scaled up to match, so still exactly invertible.
* ``learnable_dwt``: an orthogonal 4-tap wavelet whose two free degrees of
  freedom left by Eq. (3.8a) are learned (Sec. 3.3).
* ``avgpool`` / ``maxpool``: the non-invertible baselines of Sec. 3.1.

Every coarsen module has ``forward`` (coarsen), ``inverse`` (refine), and
``invertible`` (whether ``inverse(forward(x)) == x``).

Channel layout (all four): subband-major. Output channel ``k*C + c`` holds
subband ``k`` of input channel ``c``; ``k = sum_i bit_i 2^(d-1-i)`` where
``bit_i`` is 1 for the high-pass along spatial axis ``i`` (axes in order
D, H, W). Hence the first C channels are the low-pass (LL) image, and in 2D
k = 0, 1, 2, 3 is pywt's (cA, cV, cH, cD) with the same signs and scale.

Why hand-written: pywt works on numpy without autograd, and
pytorch_wavelets is not installed; a polyphase implementation with
``torch.roll`` is a few lines, differentiable in the filter taps, and device
agnostic.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register

_SQRT_HALF = 1.0 / math.sqrt(2.0)
# Per-axis gain of the analysis filters relative to the orthonormal ones.  "reference": the
# authors' code uses (1, ±1)/2 where the orthonormal Haar has (1, ±1)/sqrt(2), with a comment
# "Replace with sqrt(1/2)", and multiplies its inverse by 2^d to stay invertible.
SCALES = {"orthonormal": 1.0, "reference": _SQRT_HALF}


def _check_int(name: str, value, lo: int, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")


def _check_dims(dims) -> None:
    if dims not in (2, 3) or isinstance(dims, bool):
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")


def _check_input(x: torch.Tensor, channels: int, dims: int) -> None:
    if x.dim() != dims + 2 or x.shape[1] != channels:
        raise ValueError(f"input must have shape (N, {channels}, {', '.join('S' * dims)}), "
                         f"got {tuple(x.shape)}")
    odd = [s for s in x.shape[2:] if s % 2]
    if odd:
        raise ValueError(f"spatial sizes must be even for one wavelet level, got {tuple(x.shape[2:])}")


def _check_coarse(y: torch.Tensor, out_channels: int, dims: int) -> None:
    if y.dim() != dims + 2 or y.shape[1] != out_channels:
        raise ValueError(f"inverse input must have shape (N, {out_channels}, {', '.join('S' * dims)}), "
                         f"got {tuple(y.shape)}")


def wavelet_filters(theta: torch.Tensor, phi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-pass c and high-pass g (both length 4) for the angles (theta, phi).

    c = (cos t cos p, cos t sin p, sin t sin p, -sin t cos p) is the general
    solution of Eq. (3.8a): with u = (c0, c1), v = (c2, c3) the constraints
    read |u|^2 + |v|^2 = 1 and u . v = 0, i.e. u = cos t (cos p, sin p) and v
    orthogonal to u with length |sin t|. Haar is (0, pi/4); D4 (pywt 'db2'
    rec_lo) is (pi/12, pi/3).

    g = (c3, -c2, c1, -c0) is the quadrature mirror (-1)^k c_{3-k}, applied
    one coarse sample earlier than c (taps at 2i-2 .. 2i+1, see
    _analysis_1d): that shift only relabels the detail band, keeps the
    transform orthogonal for any angles, and makes (0, pi/4) give exactly
    pywt's Haar detail (x[2i] - x[2i+1]) / sqrt 2 instead of its roll by one.
    """
    ct, st, cp, sp = torch.cos(theta), torch.sin(theta), torch.cos(phi), torch.sin(phi)
    c = torch.stack([ct * cp, ct * sp, st * sp, -st * cp])
    g = torch.stack([c[3], -c[2], c[1], -c[0]])
    return c, g


def _analysis_1d(x: torch.Tensor, dim: int, c, g) -> tuple[torch.Tensor, torch.Tensor]:
    """Periodic along ``dim``: a_i = sum_k c_k x[2i+k], d_i = sum_k g_k x[2i-2+k].

    Two-tap filters (Haar) use a_i = c.(x[2i], x[2i+1]), d_i = g.(x[2i], x[2i+1]).
    """
    pairs = x.unflatten(dim, (-1, 2))
    xe, xo = pairs.select(dim + 1, 0), pairs.select(dim + 1, 1)
    if len(c) == 2:
        return c[0] * xe + c[1] * xo, g[0] * xe + g[1] * xo
    nxt_e, nxt_o = torch.roll(xe, -1, dim), torch.roll(xo, -1, dim)  # x[2i+2], x[2i+3]
    prv_e, prv_o = torch.roll(xe, 1, dim), torch.roll(xo, 1, dim)  # x[2i-2], x[2i-1]
    return (c[0] * xe + c[1] * xo + c[2] * nxt_e + c[3] * nxt_o,
            g[0] * prv_e + g[1] * prv_o + g[2] * xe + g[3] * xo)


def _synthesis_1d(a: torch.Tensor, d: torch.Tensor, dim: int, c, g) -> torch.Tensor:
    """Transpose (= inverse, the analysis matrix is orthogonal) of _analysis_1d."""
    if len(c) == 2:
        xe, xo = c[0] * a + g[0] * d, c[1] * a + g[1] * d
    else:
        a_prv, d_nxt = torch.roll(a, 1, dim), torch.roll(d, -1, dim)
        xe = c[0] * a + c[2] * a_prv + g[0] * d_nxt + g[2] * d
        xo = c[1] * a + c[3] * a_prv + g[1] * d_nxt + g[3] * d
    return torch.stack([xe, xo], dim=dim + 1).flatten(dim, dim + 1)


def dwt(x: torch.Tensor, dims: int = 2, c=None, g=None) -> torch.Tensor:
    """One separable DWT level: (N, C, *S) -> (N, 2^dims C, *S/2), subband-major.

    ``c``/``g`` are the 1D low/high-pass taps (default Haar); periodic
    boundaries, so every orthogonal filter pair gives an orthogonal transform.
    """
    if c is None:
        c, g = (_SQRT_HALF, _SQRT_HALF), (_SQRT_HALF, -_SQRT_HALF)
    n, ch = x.shape[:2]
    t = x.unsqueeze(1)  # (N, bands, C, *S); the band axis grows by 2 per spatial axis
    for axis in range(dims):
        lo, hi = _analysis_1d(t, 3 + axis, c, g)
        t = torch.stack([lo, hi], dim=2).flatten(1, 2)
    return t.flatten(1, 2)


def idwt(y: torch.Tensor, dims: int = 2, c=None, g=None) -> torch.Tensor:
    """Inverse of :func:`dwt`: (N, 2^dims C, *S) -> (N, C, *2S)."""
    if c is None:
        c, g = (_SQRT_HALF, _SQRT_HALF), (_SQRT_HALF, -_SQRT_HALF)
    t = y.unflatten(1, (2 ** dims, -1))
    for axis in reversed(range(dims)):
        t = t.unflatten(1, (-1, 2))
        t = _synthesis_1d(t.select(2, 0), t.select(2, 1), 3 + axis, c, g)
    return t.squeeze(1)


class _Coarsen(nn.Module):
    invertible = True

    def __init__(self, channels: int, dims: int) -> None:
        super().__init__()
        _check_int("channels", channels, 1, "a positive integer")
        _check_dims(dims)
        self.channels, self.dims = channels, dims
        self.out_channels = channels * 2 ** dims

    def extra_repr(self) -> str:
        return f"channels={self.channels}, dims={self.dims}"


class _Wavelet(_Coarsen):
    """A wavelet coarsening with a choice of scale (see ``SCALES``)."""

    def __init__(self, channels: int, dims: int, scale: str) -> None:
        super().__init__(channels, dims)
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {', '.join(map(repr, SCALES))}, got {scale!r}")
        self.scale = scale
        self.gain = SCALES[scale] ** dims        # forward = gain × the orthonormal transform

    def _scaled(self, y: torch.Tensor, inverse: bool) -> torch.Tensor:
        if self.gain == 1.0:
            return y
        return y / self.gain if inverse else y * self.gain

    def extra_repr(self) -> str:
        return f"channels={self.channels}, dims={self.dims}, scale={self.scale!r}"


@register("coarsen", "dwt")
class HaarDWT(_Wavelet):
    """Haar DWT, the paper's W_j (Sec. 3.2). No parameters.

    Args:
        channels: input channels C (output has 4C in 2D, 8C in 3D).
        dims: 2 (N, C, H, W) or 3 (N, C, D, H, W). Default 2.
        scale: "orthonormal" (default: the paper's orthogonal W, energy
            preserving) or "reference" (the authors' code: 2^(−dims/2) ×
            orthonormal, inverse 2^(dims/2) ×; with a fixed h the leapfrog's
            f then acts ~2^level more strongly, relative to the state, on
            coarse levels).
    """

    def __init__(self, channels: int, dims: int = 2, scale: str = "orthonormal") -> None:
        super().__init__(channels, dims, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *S) with even sizes -> (N, 2^dims C, *S/2); energy preserving when orthonormal."""
        _check_input(x, self.channels, self.dims)
        return self._scaled(dwt(x, self.dims), inverse=False)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """(N, 2^dims C, *S) -> (N, C, *2S), exact inverse of forward."""
        _check_coarse(y, self.out_channels, self.dims)
        return idwt(self._scaled(y, inverse=True), self.dims)


@register("coarsen", "learnable_dwt")
class LearnableDWT(_Wavelet):
    """Orthogonal 4-tap wavelet with learnable angles (Sec. 3.3, Eq. 3.8a).

    The same 1D filter is applied along every spatial axis (separable) with
    periodic boundaries, so every (theta, phi) gives an exactly orthogonal,
    hence exactly invertible, transform; the two angles are this layer's two
    free degrees of freedom (the paper learns "the best wavelet for each
    particular layer").

    Args:
        channels: input channels C (output 2^dims C).
        dims: 2 or 3. Default 2.
        theta, phi: initial angles; default (0, pi/4) = Haar, the wavelet of
            the paper's experiments. (pi/12, pi/3) is Daubechies-4.
        scale: "orthonormal" (default) or "reference" (2^(−dims/2) ×, as
            :class:`HaarDWT`'s, so a dwt vs learnable_dwt comparison changes
            only the filter).
    """

    def __init__(self, channels: int, dims: int = 2, theta: float = 0.0, phi: float = math.pi / 4,
                 scale: str = "orthonormal") -> None:
        super().__init__(channels, dims, scale)
        for name, v in (("theta", theta), ("phi", phi)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{name} must be a finite float (radians), got {v!r}")
        self.theta = nn.Parameter(torch.tensor(float(theta)))
        self.phi = nn.Parameter(torch.tensor(float(phi)))

    def filters(self, like: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(c, g): the current low/high-pass taps, cast to ``like``'s dtype."""
        c, g = wavelet_filters(self.theta, self.phi)
        if like is not None:
            c, g = c.to(like.dtype), g.to(like.dtype)
        return c, g

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *S) with even sizes -> (N, 2^dims C, *S/2)."""
        _check_input(x, self.channels, self.dims)
        return self._scaled(dwt(x, self.dims, *self.filters(x)), inverse=False)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """(N, 2^dims C, *S) -> (N, C, *2S), exact inverse for any angles."""
        _check_coarse(y, self.out_channels, self.dims)
        return idwt(self._scaled(y, inverse=True), self.dims, *self.filters(y))


class _Pool(_Coarsen):
    """Pooling baseline: not invertible (Sec. 3.1).

    Channel bookkeeping: coarsening pools then repeats the C channels
    2^dims times (subband-major, so block k is a copy of the pooled image);
    refining averages the 2^dims channel blocks back to C and interpolates.
    Repetition rather than a 1x1 convolution keeps W_j parameter-free like
    the DWT, so a coarsen ablation changes nothing but the operator, and
    for smooth inputs it preserves energy just as the Haar LL band does.
    """

    invertible = False
    _pool = None

    def __init__(self, channels: int, dims: int = 2, interp: str = "nearest") -> None:
        super().__init__(channels, dims)
        if interp not in ("nearest", "linear"):
            raise ValueError(f"interp must be 'nearest' or 'linear', got {interp!r}")
        self.interp = interp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, *S) with even sizes -> (N, 2^dims C, *S/2)."""
        _check_input(x, self.channels, self.dims)
        p = self._pool(x, self.dims)
        return p.repeat(1, 2 ** self.dims, *([1] * self.dims))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """(N, 2^dims C, *S) -> (N, C, *2S) by block mean + interpolation."""
        _check_coarse(y, self.out_channels, self.dims)
        m = y.unflatten(1, (2 ** self.dims, -1)).mean(1)
        # nearest makes refine(coarsen(x)) the projection onto piecewise-constant
        # images (the transpose of average pooling up to scale); linear is smoother.
        mode = "nearest" if self.interp == "nearest" else ("bilinear", "trilinear")[self.dims - 2]
        kw = {} if mode == "nearest" else {"align_corners": False}
        return F.interpolate(m, scale_factor=2, mode=mode, **kw)


@register("coarsen", "avgpool")
class AvgPoolCoarsen(_Pool):
    """2x average pooling + channel repetition; refine = block mean + interpolation.

    Args:
        channels: input channels C (output 2^dims C).
        dims: 2 or 3. Default 2.
        interp: refinement interpolation, "nearest" (default) or "linear".
    """

    @staticmethod
    def _pool(x, dims):
        return (F.avg_pool2d, F.avg_pool3d)[dims - 2](x, 2)


@register("coarsen", "maxpool")
class MaxPoolCoarsen(_Pool):
    """2x max pooling + channel repetition; refine = block mean + interpolation.

    Args:
        channels: input channels C (output 2^dims C).
        dims: 2 or 3. Default 2.
        interp: refinement interpolation, "nearest" (default) or "linear".
    """

    @staticmethod
    def _pool(x, dims):
        return (F.max_pool2d, F.max_pool3d)[dims - 2](x, 2)
