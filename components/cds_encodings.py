"""Co-domain Symmetry for Complex-Valued Deep Learning (Singhal, Xing & Yu, CVPR 2022).

components/cds_encodings.py: complex colour encodings of RGB images (Sec. 4, Eqs. 9, 10).

Registry kind ``encoding``: rgb, lab, sliding: (N, 3, H, W) real RGB in [0, 1] ->
(N, C, H, W) complex; ``channels`` gives C (3, 2, 2).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .registry import register


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
