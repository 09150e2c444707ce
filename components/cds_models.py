"""Co-domain Symmetry for Complex-Valued Deep Learning (Singhal, Xing & Yu, CVPR 2022).

components/cds_models.py: the CIFARNet classifiers of Sec. 5.2 / Fig. 5 / Table 1 (Type I,
Type E, and the DCN and real-valued baselines).

Registry kind ``complex_model``: type_i, type_e, dcn, real: (N, in_channels, H, W) complex
-> (N, K) real logits.

All four models share the CIFARNet trunk: three 3x3 stride-2 convolutions (zero padding 1),
a depthwise convolution whose kernel covers the remaining map (the paper's learnable
replacement for average pooling), then two "fully connected" stages. ``input_size`` sets
that kernel to ceil(ceil(ceil(input_size/2)/2)/2): 4 for 32 (and for 25..32, e.g. 28).
The forward pass raises a ValueError for inputs whose spatial size needs another kernel.

Where the paper is silent or its text and the authors' code (sutkarsh/cds) differ, the CDS
models take the choice as an argument whose default is the paper's reading:
  init="fan_in" | "reference"            the EConvs' initialisation (ComplexConv2d)
  omega_constraint="none" | "reference"  GTReLU's omega: clamp [0.5, 2] (I), relu (E)
  prototype_scale="mean" | "reference"   Type E's invariant head (Eq. 8 / sum_c f / sqrt(2C))
With all "reference" and copied weights, the models compute what the authors' code does
(tests/components/test_cds.py re-derives each formula); the parameter counts do not change.
"""
from __future__ import annotations

import math
from functools import partial

import torch
import torch.nn as nn

from .cds import (ComplexConv2d, ComplexScale, CReLU, EquivariantActivation, EquivariantBatchNorm2d, GTReLU,
                  one_of, positive_int)
from .cds_invariant import METRICS, PROTOTYPE_SCALES, DivisionLayer, PrototypeDistance
from .registry import register

MODEL_INITS = ("fan_in", "reference")
MODEL_OMEGA_CONSTRAINTS = ("none", "reference")


def _conv_inits(init: str):
    """(trunk, 1x1 projection) ComplexConv2d schemes for a model-level ``init``.

    The reference divides the fan-out by the groups in the trunk and the Division layer
    but not in its grouped 1x1 projection (64 -> 128, 4 groups: std 1/16, not 1/8).
    """
    one_of(init, MODEL_INITS, "init")
    return ("fan_in", "fan_in") if init == "fan_in" else ("reference", "reference_ungrouped")


def _final_size(n: int) -> int:
    for _ in range(3):  # 3x3, stride 2, padding 1 -> ceil(n / 2)
        n = (n + 1) // 2
    return n


class _CIFARNetBase(nn.Module):
    """Argument checks and the input check shared by the four CIFARNet variants."""

    def __init__(self, in_channels: int, num_classes: int, input_size: int):
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.num_classes = positive_int(num_classes, "num_classes")
        if positive_int(input_size, "input_size") < 8:
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


@register("complex_model", "type_i")
class TypeICIFARNet(_CIFARNetBase):
    """Type-I CDS CIFARNet (Sec. 5.2, Fig. 5 top): early invariance by a Division layer.

    EConv in->16 k3 s2 | Division(16, k3, one shared denominator) | GTReLU(16, r=0) |
    EConv 16->32 k3 s2 g2 | GTReLU | EConv 32->64 k3 s2 g4 | GTReLU | EConv 64->64 depthwise
    (pool) | EConv 64->128 k1 g4 | BatchNorm1d(256) on Re||Im | prototype distance (Eq. 6).
    24,241 parameters for in_channels=2, num_classes=10 (Table 1; 47,281 for 100 classes).
    Invariant to any complex scaling of the input (exactly with relative_eps=True).

    Args:
        in_channels: complex input channels (2 for lab/sliding, 3 for rgb).
        num_classes=10; input_size=32 (sets the pooling kernel, see module docstring).
        metric="euclidean" (the reference's) or "manifold" (Eq. 7) for the prototype distance.
        gauss=True: Gauss's three-multiplication trick in every EConv.
        div_eps=1e-7, relative_eps=True: the Division layer's offset (see DivisionLayer;
            relative_eps=False is the paper's absolute offset).
        init="fan_in": every EConv He-style by fan-in (the paper names no scheme);
            "reference": the authors' fan-out scheme (see _conv_inits, ComplexConv2d).
        omega_constraint="none": GTReLU's omega unconstrained (Sec. 3.6, omega in R);
            "reference": clamped to [0.5, 2] as in the authors' Type-I GTReLU.
    """

    def __init__(self, in_channels: int, num_classes: int = 10, input_size: int = 32,
                 metric: str = "euclidean", gauss: bool = True, div_eps: float = 1e-7,
                 relative_eps: bool = True, init: str = "fan_in", omega_constraint: str = "none"):
        super().__init__(in_channels, num_classes, input_size)
        if isinstance(div_eps, bool) or not isinstance(div_eps, (int, float)) or not 0 < div_eps < math.inf:
            raise ValueError(f"div_eps must be a finite number > 0, got {div_eps!r}")
        trunk, proj = _conv_inits(init)
        one_of(omega_constraint, MODEL_OMEGA_CONSTRAINTS, "omega_constraint")
        act = partial(GTReLU, omega_constraint="clamp" if omega_constraint == "reference" else "none")
        conv = partial(ComplexConv2d, gauss=gauss, init=trunk)
        k = self.pool_size
        div = DivisionLayer(16, 3, eps=div_eps, relative_eps=relative_eps, gauss=gauss, init=trunk)
        self.features = nn.Sequential(
            conv(in_channels, 16, 3, stride=2, padding=1), div, act(16),
            conv(16, 32, 3, stride=2, padding=1, groups=2), act(32),
            conv(32, 64, 3, stride=2, padding=1, groups=4), act(64),
            conv(64, 64, k, groups=64), conv(64, 128, 1, groups=4, init=proj))
        self.bn = nn.BatchNorm1d(256)
        self.head = PrototypeDistance(128, num_classes, invariant=False, metric=one_of(metric, METRICS, "metric"))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, H, W) complex -> (N, num_classes) real logits."""
        self._check(z)
        f = self.features(z).flatten(1)
        re, im = self.bn(torch.cat([f.real, f.imag], dim=1)).chunk(2, dim=1)
        return self.head(torch.complex(re, im))


def _eq_act(channels: int, omega_constraint: str) -> nn.Sequential:
    # Type E's "equivariant GTReLU": the per-channel complex scaling c is applied outside
    # E{.} (as in the reference), then E{phase-only GTReLU, r = 0, learned w}: 3C params.
    return nn.Sequential(ComplexScale(channels), EquivariantActivation(
        GTReLU(channels, r=0.0, scale=False, omega_constraint=omega_constraint)))


@register("complex_model", "type_e")
class TypeECIFARNet(_CIFARNetBase):
    """Type-E CDS CIFARNet (Sec. 5.2, Fig. 5 bottom): equivariant throughout, late invariance.

    The Type-I convolutions without the Division layer; each GTReLU becomes ComplexScale +
    E{GTReLU(r=0)}; EquivariantBatchNorm2d(128) after the 1x1 EConv; invariant prototype
    distance (Eq. 8). 23,697 parameters for in_channels=2, num_classes=10 (Table 1; 46,737
    for 100 classes).
    Logits are invariant to the input's phase e^{i theta} in any mode. A magnitude change is
    removed only by the equivariant BN's batch statistics (training mode, one scale for the
    whole batch, up to BN's eps); in eval mode BN is affine in |z|, so |s| changes the logits
    (the paper leaves magnitude to input normalisation, Sec. 3). See test_cds.py.

    Args: in_channels, num_classes=10, input_size=32, metric="euclidean", gauss=True,
        init="fan_in"; as Type I.
        omega_constraint="none": omega unconstrained (Sec. 3.6); "reference": relu(omega),
            as in the authors' equivariant GTReLU.
        prototype_scale="mean": Eq. 8, prototypes times the channel mean of the features;
            "reference": times sum_c f / sqrt(2C), the authors' code (8x the mean at C = 128).
    """

    def __init__(self, in_channels: int, num_classes: int = 10, input_size: int = 32,
                 metric: str = "euclidean", gauss: bool = True, init: str = "fan_in",
                 omega_constraint: str = "none", prototype_scale: str = "mean"):
        super().__init__(in_channels, num_classes, input_size)
        trunk, proj = _conv_inits(init)
        one_of(omega_constraint, MODEL_OMEGA_CONSTRAINTS, "omega_constraint")
        act = partial(_eq_act, omega_constraint="relu" if omega_constraint == "reference" else "none")
        conv = partial(ComplexConv2d, gauss=gauss, init=trunk)
        k = self.pool_size
        self.features = nn.Sequential(
            conv(in_channels, 16, 3, stride=2, padding=1), act(16),
            conv(16, 32, 3, stride=2, padding=1, groups=2), act(32),
            conv(32, 64, 3, stride=2, padding=1, groups=4), act(64),
            conv(64, 64, k, groups=64), conv(64, 128, 1, groups=4, init=proj), EquivariantBatchNorm2d(128))
        self.head = PrototypeDistance(128, num_classes, invariant=True, metric=one_of(metric, METRICS, "metric"),
                                      scale=one_of(prototype_scale, PROTOTYPE_SCALES, "prototype_scale"))

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
