"""The hyper-convolution paper's own UNet and Hyper-UNet (shared/seeds/003,
Sec. 4: "three max-pool layers with two convolution layers per scale, and ReLU
nonlinearities, with the number of channels doubled after each max-pool
layer"; dropout 0.5 and batch norm), laid out as the authors' Keras code
(tym002/Hyper-Convolution, ``unet_vanilla.unet``) builds it.  Written here from
that description; nothing is copied.

Standard (``conv="standard"``, the paper's "UNet k x k"), per scale l with
C_l = base · 2^l channels, l = 0 .. depth (depth max-pools):

* encoder l < depth: conv C_{l−1}→C_l (C_{−1} = image channels), BN, ReLU,
  conv C_l→C_l, BN, ReLU; then 2x max-pool;
* bottom l = depth: the same block, with dropout between its two convs;
* decoder l < depth: 2x nearest upsampling, conv C_{l+1}→C_l with bias and
  ReLU (no BN), concatenation with the encoder's output, then the block
  2C_l→C_l, C_l→C_l (BN, ReLU, no dropout);
* head: 1x1 conv C_0 → out_channels.

Hyper (``conv="hyper"``, the paper's "Hyper-UNet"): every conv but the 1x1
head is a hyper-convolution with its own hyper-network (components/hyperconv.py,
bias = the authors' BiasNet), each followed by BN and ReLU, and:

* an input block: hyper-conv image channels → C_0/2, BN, ReLU, dropout;
* every block (input, encoder, bottom, up, decoder) has dropout after its
  first conv; the up-conv is followed by BN (the standard up-conv is not).

Hence 18 hyper-convs at depth 3 (1 + 3 × 5 + 2), and the parameter counts of
the paper's Table 2 (0.73 / 1.2 / 2.2 M for N_L = 2 / 4 / 8 at 32 channels;
tests/tasks/test_segmentation.py asserts the exact integers, counting batch
norm's running mean and variance as Keras' "Total params" does).

Choices (constructor arguments; docs/reproduction.md lists them beside the
paper and the code):

* ``dropout_at="reference"``: where the code puts it (above: bottom block only
  in the standard UNet, after the first conv of every block in the Hyper-UNet);
  "bottom" or "every_block" use one placement for both, so a standard-vs-hyper
  comparison is not also a dropout comparison.  The paper only says "dropout
  regularization with 0.5 probability".
* ``up_kernel_size=None``: the up-conv has the block's kernel size k, as the
  Hyper-UNet's does; the code's standard up-conv is a hard-coded 3x3, and the
  paper's 5.3 M for its 5x5 UNet (Table 1) is exactly the count with 3x3
  up-convs (5,259,169), against 5,947,297 with 5x5 ones.
* Initialisation: standard convs as Keras' default (Glorot-uniform weights,
  zero bias); hyper-convs by ``hyper_init`` ("he_normal", the code's, or
  "conv_default"); batch norm: torch's defaults (Keras: momentum 0.99, eps
  1e-3; only the running statistics' lag differs).
* ``fusion``: "concat" (the UNet's); "add", "cfu" or "pu" replace the
  concatenation by ``fusion(shortcut=encoder output, current=up-conv output)``
  (CFU paper Sec. IV-A), so the decoder block's first conv takes C_l channels.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch
from torch import nn

import components
from components.hyperconv import HyperConv2d, HyperConv3d

CONVS = ("standard", "hyper")
DROPOUT_AT = ("reference", "bottom", "every_block")
FUSIONS = ("concat", "add", "cfu", "pu")
NORMS = ("batch", "instance")


class MaxPoolUNet(nn.Module):
    """The authors' (Hyper-)UNet, 2D or 3D (see the module docstring for the layout).

    Args:
        in_channels, out_channels: image channels and output channels (classes).
        conv: "standard" (default) or "hyper".
        kernel_size: odd k of every conv but the 1x1 head. Default 3.
        n_l: N_L of every hyper-network (hyper only). Default 4.
        base_channels: C_0, channels of the first scale. Default 32 (Table 2).
        depth: max-pools (paper: three). Default 3.
        dropout: probability. Default 0.5.
        dropout_at: "reference" (default), "bottom" or "every_block".
        norm: "batch" (default) or "instance" (affine).
        fusion: "concat" (default), "add", "cfu" or "pu".
        fusion_kwargs: extra constructor kwargs of a cfu/pu fusion (order, identity, bound, ...).
        hyper_init: init of the hyper-convs, "he_normal" (default) or "conv_default".
        up_kernel_size: kernel of the up-convs; None (default) = kernel_size.
        dims: 2 (default) or 3.
    forward: (N, in_channels, *S) -> (N, out_channels, *S), S divisible by 2^depth.
    """

    def __init__(self, in_channels: int, out_channels: int, conv: str = "standard", kernel_size: int = 3,
                 n_l: int = 4, base_channels: int = 32, depth: int = 3, dropout: float = 0.5,
                 dropout_at: str = "reference", norm: str = "batch", fusion: str = "concat",
                 fusion_kwargs: Optional[Dict[str, Any]] = None, hyper_init: str = "he_normal",
                 up_kernel_size: Optional[int] = None, dims: int = 2) -> None:
        super().__init__()
        own_fusion = fusion not in FUSIONS and fusion in components.available("fusion")   # a researcher's own
        for name, value, allowed in (("conv", conv, CONVS), ("dropout_at", dropout_at, DROPOUT_AT),
                                     ("fusion", fusion, FUSIONS), ("norm", norm, NORMS), ("dims", dims, (2, 3))):
            if value not in allowed and not (name == "fusion" and own_fusion):
                raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("depth", depth),
                            ("base_channels", base_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if conv == "hyper" and base_channels < 2:
            raise ValueError(f"base_channels must be >= 2 for the Hyper-UNet (its input block has "
                             f"base_channels // 2), got {base_channels}")
        self.dims, self.depth, self.hyper = dims, depth, conv == "hyper"
        self._k, self._up_k = kernel_size, kernel_size if up_kernel_size is None else up_kernel_size
        self._n_l, self._hyper_init, self._norm = n_l, hyper_init, norm
        every = dropout_at == "every_block" or (dropout_at == "reference" and self.hyper)
        p_block = dropout if every else 0.0
        p_bottom = dropout
        ch = [base_channels * 2 ** i for i in range(depth + 1)]
        c_in = in_channels
        self.stem = None
        if self.hyper:      # the Hyper-UNet's input block: image -> C_0 / 2
            self.stem = self._block(c_in, base_channels // 2, None, p_block, self._k)
            c_in = base_channels // 2
        self.down = nn.ModuleList()
        for c in ch[:-1]:
            self.down.append(self._block(c_in, c, c, p_block, self._k))
            c_in = c
        self.bottom = self._block(c_in, ch[-1], ch[-1], p_bottom, self._k)
        pool = (nn.MaxPool2d, nn.MaxPool3d)[dims - 2]
        self.pool = pool(2)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        self.dec = nn.ModuleList()
        fused_width = 2 if fusion == "concat" else 1
        for level in reversed(range(depth)):
            c = ch[level]
            self.up.append(self._up_block(ch[level + 1], c, p_block))
            self.fuse.append(_Concat() if fusion == "concat" else
                             components.build("fusion", fusion, channels=c, **(fusion_kwargs or {})))
            self.dec.append(self._block(fused_width * c, c, c, p_block, self._k))
        self.head = self._conv(base_channels, out_channels, 1, hyper=False)

    def _conv(self, c_in: int, c_out: int, k: int, hyper: Optional[bool] = None) -> nn.Module:
        if self.hyper if hyper is None else hyper:
            cls = (HyperConv2d, HyperConv3d)[self.dims - 2]
            return cls(c_in, c_out, k, n_l=self._n_l, padding="same", bias=True, init=self._hyper_init)
        conv = (nn.Conv2d, nn.Conv3d)[self.dims - 2](c_in, c_out, k, padding=k // 2)
        nn.init.xavier_uniform_(conv.weight)      # Keras' default kernel initialiser
        nn.init.zeros_(conv.bias)
        return conv

    def _norm_layer(self, c: int) -> nn.Module:
        if self._norm == "batch":
            return (nn.BatchNorm2d, nn.BatchNorm3d)[self.dims - 2](c)
        return (nn.InstanceNorm2d, nn.InstanceNorm3d)[self.dims - 2](c, affine=True)

    def _block(self, c_in: int, c_mid: int, c_out: Optional[int], p: float, k: int) -> nn.Sequential:
        """conv, norm, ReLU, [dropout], and unless c_out is None a second conv, norm, ReLU."""
        layers = [self._conv(c_in, c_mid, k), self._norm_layer(c_mid), nn.ReLU()]
        if p > 0:
            layers.append(nn.Dropout(p))
        if c_out is not None:
            layers += [self._conv(c_mid, c_out, k), self._norm_layer(c_out), nn.ReLU()]
        return nn.Sequential(*layers)

    def _up_block(self, c_in: int, c_out: int, p: float) -> nn.Sequential:
        if self.hyper:      # hyper_block with one conv: conv, BN, ReLU, dropout
            return self._block(c_in, c_out, None, p, self._up_k)
        layers = [self._conv(c_in, c_out, self._up_k), nn.ReLU()]
        if p > 0:
            layers.append(nn.Dropout(p))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in_channels, *S) -> (N, out_channels, *S); S divisible by 2^depth."""
        if x.dim() != self.dims + 2 or any(s % 2 ** self.depth for s in x.shape[2:]):
            raise ValueError(f"input must be (N, C, {', '.join('S' * self.dims)}) with sizes divisible by "
                             f"2^depth = {2 ** self.depth}, got {tuple(x.shape)}")
        if self.stem is not None:
            x = self.stem(x)
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, fuse, dec, skip in zip(self.up, self.fuse, self.dec, reversed(skips)):
            x = dec(fuse(skip, up(self.upsample(x))))
        return self.head(x)


class _Concat(nn.Module):
    """The UNet's skip: [encoder feature, up-sampled feature] along the channels."""

    def forward(self, shortcut: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
        """(N, C, *S), (N, C, *S) -> (N, 2C, *S)."""
        return torch.cat([shortcut, current], dim=1)
