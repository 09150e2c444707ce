"""Co-domain Symmetry for Complex-Valued Deep Learning (Singhal, Xing & Yu, CVPR 2022).

components/cds_models.py: complex colour encodings (Sec. 4, Eqs. 9, 10) and the CIFARNet
classifiers of Sec. 5.2 / Fig. 5 / Table 1 (Type I, Type E, and the DCN and real-valued
baselines). Imported by components/cds.py so that the registrations happen.

Registry kinds:
  encoding       rgb, lab, sliding: (N, 3, H, W) real RGB in [0, 1] -> (N, C, H, W) complex;
                 ``channels`` gives C (3, 2, 2).
  complex_model  type_i, type_e, dcn, real: (N, in_channels, H, W) complex -> (N, K) real logits.

All four models share the CIFARNet trunk: three 3x3 stride-2 convolutions (zero padding 1),
a depthwise convolution whose kernel covers the remaining map (the paper's learnable
replacement for average pooling), then two "fully connected" stages. ``input_size`` sets
that kernel to ceil(ceil(ceil(input_size/2)/2)/2): 4 for 32 (and for 25..32, e.g. 28).
The forward pass raises a ValueError for inputs whose spatial size needs another kernel.
"""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn as nn

from .cds import (ComplexConv2d, ComplexScale, CReLU, DivisionLayer, EquivariantActivation,
                  EquivariantBatchNorm2d, GTReLU, PrototypeDistance, _positive_int)
from .registry import register

# ----------------------------------------------------------------------------- encodings


def _check_rgb(rgb: torch.Tensor) -> None:
    if not torch.is_tensor(rgb) or rgb.dim() != 4 or rgb.shape[1] != 3 or not rgb.is_floating_point():
        got = f"{rgb.dtype} tensor of shape {tuple(rgb.shape)}" if torch.is_tensor(rgb) else type(rgb).__name__
        raise ValueError(f"encodings expect a real (N, 3, H, W) RGB tensor in [0, 1], got {got}")


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] -> CIE L*a*b* (D65, 2 deg observer), (N, 3, H, W) -> (N, 3, H, W).

    The same formulas as skimage.color.rgb2lab (sRGB companding, its XYZ matrix and white
    point), written in torch so that it runs on the input's device and is differentiable;
    skimage is not a dependency of this project.
    """
    lin = torch.where(rgb > 0.04045, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = torch.tensor([[0.412453, 0.357580, 0.180423],
                      [0.212671, 0.715160, 0.072169],
                      [0.019334, 0.119193, 0.950227]], dtype=rgb.dtype, device=rgb.device)
    white = torch.tensor([0.95047, 1.0, 1.08883], dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,njhw->nihw", m, lin) / white[None, :, None, None]
    # the clamp keeps the cube root's gradient finite in the branch torch.where discards
    t = (6.0 / 29.0) ** 3
    f = torch.where(xyz > t, xyz.clamp_min(t) ** (1.0 / 3.0), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)


# Largest |L*| or |a* + i b*| over the sRGB gamut (attained by pure blue, |a+ib| = 133.8).
# The reference divides LAB by the largest magnitude in the training set; CIFAR/SVHN
# contain saturated pixels, so this constant plays that role without a data pass.
LAB_MAX_MAGNITUDE = 133.8042


@register("encoding", "rgb")
class RGBEncoding(nn.Module):
    """RGB as 3 complex channels with zero imaginary part (the reference's 'rgb' input).

    No arguments; ``channels = 3``.
    """

    channels = 3

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) real -> (N, 3, H, W) complex."""
        _check_rgb(rgb)
        return torch.complex(rgb, torch.zeros_like(rgb))


@register("encoding", "sliding")
class SlidingEncoding(nn.Module):
    """Eq. 9, [R, G, B] -> [R + iG, G + iB]. No arguments; ``channels = 2``."""

    channels = 2

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) real -> (N, 2, H, W) complex."""
        _check_rgb(rgb)
        r, g, b = rgb.unbind(1)
        return torch.stack([torch.complex(r, g), torch.complex(g, b)], dim=1)


@register("encoding", "lab")
class LabEncoding(nn.Module):
    """Eq. 10, [R, G, B] -> [L*, a* + i b*] / scale; ``channels = 2``.

    Args:
        scale=LAB_MAX_MAGNITUDE (133.8): divisor putting every sRGB colour in the unit disk
            (see LAB_MAX_MAGNITUDE); a C-scale of the whole input, so invariant models
            are unaffected by it.
    """

    channels = 2

    def __init__(self, scale: float = LAB_MAX_MAGNITUDE):
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
        self.scale = float(scale)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) real -> (N, 2, H, W) complex."""
        _check_rgb(rgb)
        lab = rgb_to_lab(rgb) / self.scale
        return torch.stack([torch.complex(lab[:, 0], torch.zeros_like(lab[:, 0])),
                            torch.complex(lab[:, 1], lab[:, 2])], dim=1)


# ------------------------------------------------------------------------------- models


def _final_size(n: int) -> int:
    for _ in range(3):  # 3x3, stride 2, padding 1 -> ceil(n / 2)
        n = (n + 1) // 2
    return n


class _CIFARNetBase(nn.Module):
    """Argument checks and the input check shared by the four CIFARNet variants."""

    def __init__(self, in_channels: int, num_classes: int, input_size: int):
        super().__init__()
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.num_classes = _positive_int(num_classes, "num_classes")
        if _positive_int(input_size, "input_size") < 8:
            raise ValueError(f"input_size must be an integer >= 8, got {input_size}")
        self.pool_size = _final_size(input_size)

    def _check(self, z: torch.Tensor) -> None:
        if not torch.is_tensor(z) or not z.is_complex() or z.dim() != 4 or z.shape[1] != self.in_channels:
            got = f"{z.dtype} tensor of shape {tuple(z.shape)}" if torch.is_tensor(z) else type(z).__name__
            raise ValueError(f"{type(self).__name__} expects a complex (N, {self.in_channels}, H, W) "
                             f"input, got {got}")
        if _final_size(z.shape[2]) != self.pool_size or _final_size(z.shape[3]) != self.pool_size:
            raise ValueError(f"input spatial size {tuple(z.shape[2:])} does not reduce to the "
                             f"{self.pool_size}x{self.pool_size} map this model pools; build it "
                             f"with input_size matching the data")


def _check_metric(metric: str) -> str:
    if metric not in ("euclidean", "manifold"):
        raise ValueError(f"metric must be 'euclidean' or 'manifold', got {metric!r}")
    return metric


@register("complex_model", "type_i")
class TypeICIFARNet(_CIFARNetBase):
    """Type-I CDS CIFARNet (Sec. 5.2, Fig. 5 top): early invariance by a Division layer.

    EConv in->16 k3 s2 | Division(16, k3, one shared denominator) | GTReLU(16, r=0) |
    EConv 16->32 k3 s2 g2 | GTReLU | EConv 32->64 k3 s2 g4 | GTReLU | EConv 64->64 depthwise
    (pool) | EConv 64->128 k1 g4 | BatchNorm1d(256) on Re||Im | prototype distance (Eq. 6).
    24,241 parameters for in_channels=2, num_classes=10 (Table 1). Invariant to any complex
    scaling of the input (exactly with relative_eps=True).

    Args:
        in_channels: complex input channels (2 for lab/sliding, 3 for rgb).
        num_classes=10; input_size=32 (sets the pooling kernel, see module docstring).
        metric="euclidean" (the reference's) or "manifold" (Eq. 7) for the prototype distance.
        gauss=True: Gauss's three-multiplication trick in every EConv.
        div_eps=1e-7, relative_eps=True: the Division layer's offset (see DivisionLayer;
            relative_eps=False is the paper's absolute offset).
    """

    def __init__(self, in_channels: int, num_classes: int = 10, input_size: int = 32,
                 metric: str = "euclidean", gauss: bool = True, div_eps: float = 1e-7,
                 relative_eps: bool = True):
        super().__init__(in_channels, num_classes, input_size)
        if isinstance(div_eps, bool) or not isinstance(div_eps, (int, float)) or not 0 < div_eps < math.inf:
            raise ValueError(f"div_eps must be a finite number > 0, got {div_eps!r}")
        conv = partial(ComplexConv2d, gauss=gauss)
        k = self.pool_size
        div = DivisionLayer(16, 3, eps=div_eps, relative_eps=relative_eps, gauss=gauss)
        self.features = nn.Sequential(
            conv(in_channels, 16, 3, stride=2, padding=1), div, GTReLU(16),
            conv(16, 32, 3, stride=2, padding=1, groups=2), GTReLU(32),
            conv(32, 64, 3, stride=2, padding=1, groups=4), GTReLU(64),
            conv(64, 64, k, groups=64), conv(64, 128, 1, groups=4))
        self.bn = nn.BatchNorm1d(256)
        self.head = PrototypeDistance(128, num_classes, invariant=False, metric=_check_metric(metric))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) complex -> (N, num_classes) real logits."""
        self._check(z)
        f = self.features(z).flatten(1)
        re, im = self.bn(torch.cat([f.real, f.imag], dim=1)).chunk(2, dim=1)
        return self.head(torch.complex(re, im))


def _eq_act(channels: int) -> nn.Sequential:
    # Type E's "equivariant GTReLU": the per-channel complex scaling c is applied outside
    # E{.} (as in the reference), then E{phase-only GTReLU, r = 0, learned w}: 3C params.
    return nn.Sequential(ComplexScale(channels), EquivariantActivation(GTReLU(channels, r=0.0, scale=False)))


@register("complex_model", "type_e")
class TypeECIFARNet(_CIFARNetBase):
    """Type-E CDS CIFARNet (Sec. 5.2, Fig. 5 bottom): equivariant throughout, late invariance.

    The Type-I convolutions without the Division layer; each GTReLU becomes ComplexScale +
    E{GTReLU(r=0)}; EquivariantBatchNorm2d(128) after the 1x1 EConv; invariant prototype
    distance (Eq. 8). 23,697 parameters for in_channels=2, num_classes=10 (Table 1).
    Logits are invariant to the input's phase e^{i theta} in any mode. A magnitude change is
    removed only by the equivariant BN's batch statistics (training mode, one scale for the
    whole batch, up to BN's eps); in eval mode BN is affine in |z|, so |s| changes the logits
    (the paper leaves magnitude to input normalisation, Sec. 3). See test_cds.py.

    Args: in_channels, num_classes=10, input_size=32, metric="euclidean", gauss=True; as Type I.
    """

    def __init__(self, in_channels: int, num_classes: int = 10, input_size: int = 32,
                 metric: str = "euclidean", gauss: bool = True):
        super().__init__(in_channels, num_classes, input_size)
        conv = partial(ComplexConv2d, gauss=gauss)
        k = self.pool_size
        self.features = nn.Sequential(
            conv(in_channels, 16, 3, stride=2, padding=1), _eq_act(16),
            conv(16, 32, 3, stride=2, padding=1, groups=2), _eq_act(32),
            conv(32, 64, 3, stride=2, padding=1, groups=4), _eq_act(64),
            conv(64, 64, k, groups=64), conv(64, 128, 1, groups=4), EquivariantBatchNorm2d(128))
        self.head = PrototypeDistance(128, num_classes, invariant=True, metric=_check_metric(metric))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) complex -> (N, num_classes) real logits."""
        self._check(z)
        return self.head(self.features(z).flatten(1))


def _check_widths(widths) -> tuple:
    if (not isinstance(widths, (tuple, list)) or len(widths) != 4
            or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)):
        raise ValueError(f"widths must be 4 positive integers (conv1, conv2, conv3, fc1), got {widths!r}")
    return tuple(widths)


@register("complex_model", "dcn")
class DCNCIFARNet(_CIFARNetBase):
    """DCN baseline CIFARNet (Sec. 5.2): biased ComplexConv + CReLU, no BN, no residuals.

    ComplexConv in->w1->w2->w3 (k3 s2, bias) each + CReLU | depthwise ComplexConv (pool,
    bias) | 1x1 ComplexConv w3->w4 (bias) + CReLU | Linear(2 w4 -> K) on Re||Im (DCN's own
    complex-to-real read-out). Ungrouped, so it is larger than the CDS models as in Table 1:
    68,266 parameters at the default widths for in_channels=2, K=10 (paper: 66,858; its exact
    read-out is unpublished).

    Args: in_channels, num_classes=10, input_size=32, widths=(16, 32, 64, 128), gauss=True.
    """

    def __init__(self, in_channels: int, num_classes: int = 10, input_size: int = 32,
                 widths: tuple = (16, 32, 64, 128), gauss: bool = True):
        super().__init__(in_channels, num_classes, input_size)
        w1, w2, w3, w4 = _check_widths(widths)
        conv = partial(ComplexConv2d, bias=True, gauss=gauss)
        self.features = nn.Sequential(
            conv(in_channels, w1, 3, stride=2, padding=1), CReLU(),
            conv(w1, w2, 3, stride=2, padding=1), CReLU(),
            conv(w2, w3, 3, stride=2, padding=1), CReLU(),
            conv(w3, w3, self.pool_size, groups=w3), conv(w3, w4, 1), CReLU())
        self.head = nn.Linear(2 * w4, num_classes)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) complex -> (N, num_classes) real logits."""
        self._check(z)
        f = self.features(z).flatten(1)
        return self.head(torch.cat([f.real, f.imag], dim=1))


@register("complex_model", "real")
class RealCIFARNet(_CIFARNetBase):
    """Real-valued CIFARNet baseline (Sec. 5.2) on [Re z, Im z] as 2*in_channels channels.

    Conv 2C->w1->w2->w3 (k3 s2, bias) each + ReLU | depthwise conv (pool) | Linear w3->w4 +
    ReLU | Linear w4->K. 34,426 parameters at the default widths for in_channels=2, K=10
    (paper: 34,282). Channel order: real parts of all channels, then imaginary parts.

    Args: in_channels (complex channels), num_classes=10, input_size=32,
        widths=(16, 32, 64, 128).
    """

    def __init__(self, in_channels: int, num_classes: int = 10, input_size: int = 32,
                 widths: tuple = (16, 32, 64, 128)):
        super().__init__(in_channels, num_classes, input_size)
        w1, w2, w3, w4 = _check_widths(widths)
        self.features = nn.Sequential(
            nn.Conv2d(2 * in_channels, w1, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(w1, w2, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(w2, w3, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(w3, w3, self.pool_size, groups=w3), nn.Flatten(),
            nn.Linear(w3, w4), nn.ReLU(), nn.Linear(w4, num_classes))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) complex -> (N, num_classes) real logits."""
        self._check(z)
        return self.features(torch.cat([z.real, z.imag], dim=1))
