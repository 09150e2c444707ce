"""Backbones of the CFU paper's classification experiments, with every residual
addition replaced by a ``fusion`` component.

Paper: "Parameter-Efficient Cross-Layer Feature Fusion via Chebyshev Polynomial
Unit" (shared/seeds/000_74f9e9f97bcca099.txt), Sec. IV-C and Table IV: PCNN
("a plain 5-layer CNN with 5 hidden states"), MobileNetV2 and ResNet18, whose
"additive fusion" becomes CFU (Eq. 4) or PU.

Why hand-written: torchvision is unusable here, and its models hard-code
``out += identity``; MONAI has no CIFAR ResNet18 / MobileNetV2.  Every fusion
is ``components.build("fusion", name, order=..., channels=C, ...)`` called as
``fusion(shortcut, current)`` (x and f(x) of Sec. III-B).  The task-level name
"none" builds no module and returns ``current`` (a network without shortcuts).

* ResNet18 (He et al.; CIFAR variant as the issue asks): 3x3 stride-1 stem, no
  max-pool, stages 64-128-256-512 x 2 BasicBlocks (strides 1, 2, 2, 2), 1x1
  conv + BN projection shortcut where the shape changes;
  ``relu(fusion(shortcut, bn2(conv2(...))))``.  8 fusion units.
  11,173,962 parameters with 10 classes (the usual CIFAR ResNet18 count).
* MobileNetV2 (Sandler et al.; torchvision's layout and ``_make_divisible``
  widths): inverted residuals with ``fusion(x, block(x))`` wherever stride is
  1 and in == out channels (10 units); no activation after it (linear
  bottleneck).  CIFAR variant: 3x3 stride-1 stem and the first stride-2 stage
  (24 channels) at stride 1, so 32x32 inputs end at 4x4 like ResNet18.
  2,236,682 parameters with 10 classes (torchvision's count less its 1000-way head).
* ``stem="imagenet"`` keeps the ImageNet strides (ResNet18: 7x7/2 conv +
  3x3/2 max-pool; MobileNetV2: stride-2 stem and 24-channel stage): Table IV's
  MobileNetV2 (60.0 %) is no better than the 5-layer PCNN (59.8 %) on CIFAR-100,
  which hints the paper may have kept those strides; the argument lets a sweep ask.
* PCNN: see :class:`PCNN` for where its fusion goes.
"""
from __future__ import annotations

import functools
from typing import Any, Dict, Iterator, List, Optional

import torch
from torch import nn

import components

ARCHS = ("pcnn", "resnet18", "mobilenetv2")
FUSIONS = ("none", "add", "concat", "cfu", "pu")
STEMS = ("cifar", "imagenet")


class _NoFusion(nn.Module):
    """fusion name "none": the shortcut is dropped (a plain network)."""

    def forward(self, shortcut: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """shortcut, current: same shape; returns current."""
        return current


_CALLS: Optional[List[int]] = None     # set by fusion_channels(): the channels of every make_fusion call


def make_fusion(name: str, channels: int, fusion_kwargs: Optional[Dict[str, Any]] = None) -> nn.Module:
    """A fusion module from the registry ("none" → no shortcut)."""
    if _CALLS is not None:
        _CALLS.append(channels)
        return _NoFusion()
    if name == "none":
        return _NoFusion()
    return components.build("fusion", name, channels=channels, **(fusion_kwargs or {}))


def fusion_channels(arch: str, width_mult: float = 1.0, stem: str = "cifar") -> List[int]:
    """The ``channels`` of each fusion unit the backbone ``arch`` builds (in order), without building any
    fusion: what the ``model.fusion`` slot's pre-flight probe checks (cached: a backbone takes a while)."""
    return list(_fusion_channels(arch, float(width_mult), stem))


@functools.lru_cache(maxsize=None)
def _fusion_channels(arch: str, width_mult: float, stem: str) -> tuple:
    global _CALLS
    _CALLS = []
    try:
        build_backbone(arch, num_classes=10, fusion="add", fusion_kwargs=None, width_mult=width_mult, stem=stem)
        return tuple(_CALLS)
    finally:
        _CALLS = None


def fusion_modules(model: nn.Module) -> Iterator[nn.Module]:
    """Every fusion unit of a backbone built here (the attributes named ``fusion``)."""
    for name, m in model.named_modules():
        if name == "fusion" or name.endswith(".fusion"):
            yield m


def _check_common(fusion: str, num_classes: int, width_mult: float) -> None:
    if fusion not in FUSIONS and fusion not in components.available("fusion"):
        raise ValueError(f"fusion must be one of {', '.join(FUSIONS)} or a registered fusion component, "
                         f"got {fusion!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    if isinstance(width_mult, bool) or not isinstance(width_mult, (int, float)) or not width_mult > 0:
        raise ValueError(f"width_mult must be a positive number, got {width_mult!r}")


def _scaled(c: int, m: float) -> int:
    return max(1, int(round(c * m)))


def _conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> List[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]


# --------------------------------------------------------------------------- PCNN
class PCNN(nn.Module):
    """Plain 5-layer CNN (Table IV's PCNN) with fusion between consecutive hidden states.

    The paper says only "a plain 5-layer CNN with 5 hidden states" whose
    "additive fusion" is replaced by CFU/PU.  A plain CNN has no shortcut, so
    we place the fusion where a residual network would (Sec. III-B: x = the
    shortcut feature, f(x) = "the transformation of the neural network between
    them"): each of layers 2..5 fuses its input hidden state with its
    conv-BN output before the ReLU, h_i = relu(fusion(h_{i-1},
    bn(conv_i(h_{i-1})))), exactly ResNet's BasicBlock with one convolution.
    fusion="none" gives relu(bn(conv_i(h_{i-1}))), the literally plain layer.
    (Fusing after the ReLU instead, h + relu(...), adds non-negative terms
    that grow the activations block after block: at lr 0.1 the additive PCNN
    then did not train on digits.)  Layer 1 (the stem) has nothing to fuse
    with (the RGB image is not a hidden state).  So that every block's input
    and output have the same shape, all five layers have the same width and
    the resolution halves *between* blocks by 2x2 max-pooling
    (32 → 16 → 8 → 4), a parameter-free step; global average pooling and a
    linear classifier follow.  With width 128: 594,560 + 129·num_classes
    parameters, 4 fusion units.

    Args:
        num_classes: classifier outputs (default 10).
        fusion: "none", "add", "concat", "cfu" or "pu" (default "add").
        fusion_kwargs: extra fusion arguments (order, identity, bound, ...).
        width_mult: scales the width 128 (default 1.0).
        in_channels: image channels (default 3).
    """

    WIDTH = 128

    def __init__(self, num_classes: int = 10, fusion: str = "add", fusion_kwargs: Optional[Dict[str, Any]] = None,
                 width_mult: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        _check_common(fusion, num_classes, width_mult)
        c = _scaled(self.WIDTH, width_mult)
        self.stem = nn.Sequential(*_conv_bn(in_channels, c), nn.ReLU(inplace=True))
        self.layers = nn.ModuleList(_PlainBlock(c, make_fusion(fusion, c, fusion_kwargs)) for _ in range(4))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in_channels, H, W), H and W divisible by 8; returns logits (N, num_classes)."""
        h = self.layers[0](self.stem(x))
        for layer in self.layers[1:]:
            h = layer(self.pool(h))
        return self.head(h.mean(dim=(2, 3)))


class _PlainBlock(nn.Module):
    def __init__(self, c: int, fusion: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c, c))
        self.fusion = fusion
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W); returns (N, C, H, W)."""
        return self.act(self.fusion(x, self.body(x)))


# --------------------------------------------------------------------------- ResNet18
class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, fusion: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, 3, stride), nn.ReLU(inplace=True), *_conv_bn(cout, cout))
        self.shortcut = (nn.Sequential(*_conv_bn(cin, cout, 1, stride)) if stride != 1 or cin != cout
                         else nn.Identity())
        self.fusion = fusion
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, cin, H, W); returns (N, cout, H/stride, W/stride)."""
        return self.act(self.fusion(self.shortcut(x), self.body(x)))


class ResNet18(nn.Module):
    """ResNet18 whose 8 residual additions are fusion units (see module docstring).

    Args:
        num_classes: classifier outputs (default 10).
        fusion: "none", "add", "concat", "cfu" or "pu" (default "add").
        fusion_kwargs: extra fusion arguments.
        width_mult: scales the stage widths 64-128-256-512 (default 1.0).
        stem: "cifar" (3x3 stride 1, no max-pool; default) or "imagenet".
        in_channels: image channels (default 3).
    """

    def __init__(self, num_classes: int = 10, fusion: str = "add", fusion_kwargs: Optional[Dict[str, Any]] = None,
                 width_mult: float = 1.0, stem: str = "cifar", in_channels: int = 3) -> None:
        super().__init__()
        _check_common(fusion, num_classes, width_mult)
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
        widths = [_scaled(c, width_mult) for c in (64, 128, 256, 512)]
        if stem == "cifar":
            layers = [*_conv_bn(in_channels, widths[0]), nn.ReLU(inplace=True)]
        else:
            layers = [*_conv_bn(in_channels, widths[0], 7, 2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        cin = widths[0]
        for i, c in enumerate(widths):
            for j in range(2):
                layers.append(_BasicBlock(cin, c, 2 if (i > 0 and j == 0) else 1,
                                          make_fusion(fusion, c, fusion_kwargs)))
                cin = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in_channels, H, W); returns logits (N, num_classes)."""
        return self.head(self.features(x).mean(dim=(2, 3)))


# --------------------------------------------------------------------------- MobileNetV2
def _make_divisible(v: float, divisor: int = 8) -> int:
    # MobileNetV2's channel rounding: nearest multiple of 8, never more than 10 % down.
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int, fusion_name: str,
                 fusion_kwargs: Optional[Dict[str, Any]]) -> None:
        super().__init__()
        hidden = cin * expand
        layers: List[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(cin, hidden, 1), nn.ReLU6(inplace=True)]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6(inplace=True),
                   *_conv_bn(hidden, cout, 1)]
        self.body = nn.Sequential(*layers)
        # Only where MobileNetV2 itself has a residual addition.
        self.fusion = make_fusion(fusion_name, cout, fusion_kwargs) if stride == 1 and cin == cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, cin, H, W); returns (N, cout, H/stride, W/stride)."""
        y = self.body(x)
        return y if self.fusion is None else self.fusion(x, y)


class MobileNetV2(nn.Module):
    """MobileNetV2 whose 10 residual additions are fusion units (see module docstring).

    Args:
        num_classes: classifier outputs (default 10).
        fusion: "none", "add", "concat", "cfu" or "pu" (default "add").
        fusion_kwargs: extra fusion arguments.
        width_mult: MobileNetV2's width multiplier (default 1.0).
        stem: "cifar" (stride-1 stem and 24-channel stage; default) or "imagenet".
        in_channels: image channels (default 3).
        dropout: before the classifier (default 0.2, as MobileNetV2).
    """

    # (expansion t, channels c, repeats n, first stride s) of the paper's Table 2
    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))

    def __init__(self, num_classes: int = 10, fusion: str = "add", fusion_kwargs: Optional[Dict[str, Any]] = None,
                 width_mult: float = 1.0, stem: str = "cifar", in_channels: int = 3, dropout: float = 0.2) -> None:
        super().__init__()
        _check_common(fusion, num_classes, width_mult)
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        cin = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        layers: List[nn.Module] = [*_conv_bn(in_channels, cin, 3, 1 if stem == "cifar" else 2), nn.ReLU6(inplace=True)]
        for k, (t, c, n, s) in enumerate(self.SETTINGS):
            cout = _make_divisible(c * width_mult)
            if stem == "cifar" and k == 1:
                s = 1
            for i in range(n):
                layers.append(_InvertedResidual(cin, cout, s if i == 0 else 1, t, fusion, fusion_kwargs))
                cin = cout
        layers += [*_conv_bn(cin, last, 1), nn.ReLU6(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(last, num_classes))
        for m in self.modules():
            # MobileNetV2's initialisation (fan-out Kaiming convs, N(0, 0.01) classifier)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, in_channels, H, W); returns logits (N, num_classes)."""
        return self.head(self.features(x).mean(dim=(2, 3)))


def build_backbone(arch: str, **kwargs: Any) -> nn.Module:
    """``arch`` in ARCHS with the class's keyword arguments (PCNN takes no ``stem``)."""
    if arch == "pcnn":
        kwargs.pop("stem", None)
        return PCNN(**kwargs)
    if arch == "resnet18":
        return ResNet18(**kwargs)
    if arch == "mobilenetv2":
        return MobileNetV2(**kwargs)
    raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
