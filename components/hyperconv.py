"""Hyper-Convolutions via Implicit Kernels for Medical Imaging (Ma, Dalca, Sabuncu).

File: components/hyperconv.py (seed 003).  Implements Sec. 3 (Eq. 1: a kernel
K_ij = Phi_theta(i, j) generated from the kernel's coordinate grid), Sec. 3.1
(the hyper-network: 1x1 convolutions, leaky ReLU slope 0.1, hidden widths
16, 16, N_L) and Sec. 3.2 (Eq. 3: the parameter count, independent of the
kernel size), in 2D and 3D, plus :func:`convert_convs`, which swaps every
``nn.Conv2d``/``nn.Conv3d`` of a model (e.g. a MONAI UNet) for a hyper-conv
with identical geometry.

Registry: kinds ``conv2d`` / ``conv3d``, names ``standard`` and ``hyper``.
torch has no coordinate-generated kernels, so the hyper-network is written
here; the convolution itself is ``F.conv2d`` / ``F.conv3d``.
"""
from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register

IntOrTuple = Union[int, Sequence[int]]
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_INITS = ("he_normal", "conv_default")
# Keras' he_normal draws from a normal truncated at ±2 standard deviations and divides the
# scale by this factor (the std of a unit normal truncated to [−2, 2]), so the std is sqrt(2/fan_in).
_TRUNC_STD = 0.87962566103423978


def keras_he_normal_(tensor: torch.Tensor, fan_in: int) -> torch.Tensor:
    """In place: Keras' ``he_normal`` (VarianceScaling(2, "fan_in", "truncated_normal")),
    the initialiser of every weight in the authors' hyper-convolution code: a normal of
    std sqrt(2 / fan_in) / 0.8796 truncated at two of those stds, so the std is sqrt(2 / fan_in)."""
    std = math.sqrt(2.0 / fan_in) / _TRUNC_STD
    return nn.init.trunc_normal_(tensor, 0.0, std, -2.0 * std, 2.0 * std)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _ntuple(value, n: int, name: str, minimum: int, odd: bool = False) -> tuple:
    vals = (value,) * n if _is_int(value) else tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(vals) != n or not all(_is_int(v) and v >= minimum and (v % 2 or not odd) for v in vals):
        what = "an odd integer" if odd else "an integer"
        raise ValueError(f"{name} must be {what} >= {minimum} or a tuple of {n} such, got {value!r}")
    return vals


def _geometry(dims, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode):
    """Validate the nn.ConvNd-style arguments shared by both registry entries.

    ``padding="same"`` means the symmetric padding ``dilation*(k-1)/2``: for odd
    kernels this is exactly nn.Conv's 'same' at stride 1, and unlike nn.Conv it
    stays defined for strided convs (output size ceil(n / stride)).
    """
    for name, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups must divide in_channels ({in_channels}) and out_channels ({out_channels}), "
                         f"got {groups}")
    k = _ntuple(kernel_size, dims, "kernel_size", 1, odd=True)
    s = _ntuple(stride, dims, "stride", 1)
    d = _ntuple(dilation, dims, "dilation", 1)
    if padding == "same":
        p = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d))
    elif padding == "valid":
        p = (0,) * dims
    elif isinstance(padding, str):
        raise ValueError(f"padding must be 'same', 'valid', an integer >= 0 or a tuple, got {padding!r}")
    else:
        p = _ntuple(padding, dims, "padding", 0)
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}")
    return k, s, p, d


class _HyperConvNd(nn.Module):
    dims = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, n_l: int = 4,
                 stride: IntOrTuple = 1, padding: Union[str, IntOrTuple] = "same", dilation: IntOrTuple = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 hidden: Sequence[int] = (16, 16), negative_slope: float = 0.1, init: str = "he_normal",
                 device=None, dtype=None):
        super().__init__()
        self.kernel_size, self.stride, self.padding, self.dilation = _geometry(
            self.dims, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode)
        if not _is_int(n_l) or n_l < 1:
            raise ValueError(f"n_l must be a positive integer, got {n_l!r}")
        if not isinstance(hidden, (tuple, list)) or not hidden or \
                not all(_is_int(h) and h >= 1 for h in hidden):
            raise ValueError(f"hidden must be a non-empty tuple of positive integers, got {hidden!r}")
        if not isinstance(negative_slope, (int, float)) or not 0 <= negative_slope < 1:
            raise ValueError(f"negative_slope must be a number in [0, 1), got {negative_slope!r}")
        if init not in _INITS:
            raise ValueError(f"init must be one of {_INITS}, got {init!r}")
        self.in_channels, self.out_channels, self.groups, self.n_l = in_channels, out_channels, groups, n_l
        self.padding_mode, self.hidden, self.negative_slope, self.init = padding_mode, tuple(hidden), \
            float(negative_slope), init
        fk = dict(device=device, dtype=dtype)
        # Sec. 3.1 describes 1x1 convolutions over the coordinate grid; a 1x1
        # conv over K grid points is a Linear layer applied to each of the K
        # points, which is what this is (no reshape to an image needed).
        # Widths coords -> 16 -> 16 -> N_L -> C_out*C_in/groups follow the
        # authors' code and paper-notes (388 + 5*C_in*C_out params at N_L=4, 2D).
        widths = (self.dims, *self.hidden, n_l)
        layers = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b, **fk), nn.LeakyReLU(self.negative_slope)]
        layers.append(nn.Linear(n_l, out_channels * (in_channels // groups), **fk))
        self.hyper = nn.Sequential(*layers)
        self.bias = nn.Parameter(torch.empty(out_channels, **fk)) if bias else None
        # Integer offsets with the centre at the origin, not normalised (Sec. 3,
        # paper-notes): a 7x7 kernel sees coordinates -3..3.
        axes = [torch.arange(k, dtype=torch.float32) - (k - 1) / 2 for k in self.kernel_size]
        grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, self.dims)
        self.register_buffer("coords", grid.to(device=device, dtype=dtype or torch.get_default_dtype()),
                             persistent=False)
        self._cache = None  # (key, kernel), used only in eval mode without autograd
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise the hyper-network and bias.

        ``init="he_normal"`` (default) is the authors' Keras code: every 1x1
        conv of the hyper-network and the per-channel bias (their BiasNet, a
        (1, 1, C) weight, fan-in 1) drawn by :func:`keras_he_normal_`, the
        hyper-network's biases zero.  With zero biases every layer is
        positively homogeneous, so the kernel's centre tap is exactly 0 and
        E[K(p)²] = (2 / dims) (1 + s²)^L |p|² for L hidden layers of leaky
        ReLU slope s: an RMS of 2.0 for a 5x5 kernel at s = 0.1, whatever the
        channels.  In the authors' network batch norm follows every
        hyper-conv, so that scale cancels in the forward pass; it still sets
        how large Adam's steps are relative to the kernel (the paper credits
        the smooth, noise-robust kernels to these dynamics, Sec. 3.3, Fig. 6).

        ``init="conv_default"`` (ablate's default before issue 26) keeps
        He-normal hidden layers (leaky-ReLU gain, untruncated, with
        nn.Linear's default biases, so a 1x1 kernel's centre point does not
        zero every hidden unit) and rescales the last layer so the generated
        kernel has the RMS of nn.ConvNd's default init, 1/sqrt(3 fan_in): a
        "standard" vs "hyper" ablation without normalisation then starts at
        the same activation scale, about 100x below "he_normal".
        """
        linears = [m for m in self.hyper if isinstance(m, nn.Linear)]
        fan_in = (self.in_channels // self.groups) * math.prod(self.kernel_size)
        if self.init == "he_normal":
            for lin in linears:
                keras_he_normal_(lin.weight, lin.in_features)
                nn.init.zeros_(lin.bias)
            if self.bias is not None:
                keras_he_normal_(self.bias, 1)
            self._cache = None
            return
        for lin in linears:
            nn.init.kaiming_normal_(lin.weight, a=self.negative_slope, nonlinearity="leaky_relu")
            bound = 1 / math.sqrt(lin.in_features)
            nn.init.uniform_(lin.bias, -bound, bound)
        with torch.no_grad():
            rms = self.hyper(self.coords).pow(2).mean().sqrt().clamp_min(1e-12)
            linears[-1].weight.mul_(1 / (math.sqrt(3 * fan_in) * rms))
            linears[-1].bias.mul_(1 / (math.sqrt(3 * fan_in) * rms))
        if self.bias is not None:
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)
        self._cache = None

    def _generate(self) -> torch.Tensor:
        w = self.hyper(self.coords)  # (K, C_out * C_in/groups), Eq. (1) at every grid point
        w = w.reshape(*self.kernel_size, self.out_channels, self.in_channels // self.groups)
        return w.permute(self.dims, self.dims + 1, *range(self.dims)).contiguous()

    def kernel(self) -> torch.Tensor:
        """The generated kernel, shape (C_out, C_in/groups, *kernel_size).

        In eval mode with autograd off the kernel is generated once and reused
        until any hyper-network parameter changes: the key holds each
        parameter's identity, storage, dtype and in-place version counter
        (``_version`` is bumped by optimizer steps and ``load_state_dict``;
        ``train()`` and ``.to()`` drop the cache).  With autograd on, a cached kernel would either carry a
        freed graph or silently cut gradients, so it is regenerated.
        """
        if self.training or torch.is_grad_enabled():
            self._cache = None
            return self._generate()
        key = tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device) for p in self.hyper.parameters())
        key += ((self.coords.data_ptr(), self.coords._version),)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._generate())
        return self._cache[1]

    def train(self, mode: bool = True):
        self._cache = None
        return super().train(mode)

    def _apply(self, fn, *args, **kwargs):
        self._cache = None
        return super()._apply(fn, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, *spatial) -> (N, C_out, *spatial_out), spatial_out as for nn.ConvNd with the
        same stride/padding/dilation (= ceil(spatial / stride) for padding='same')."""
        conv = F.conv2d if self.dims == 2 else F.conv3d
        padding = self.padding
        if self.padding_mode != "zeros":
            x = F.pad(x, [p for p in reversed(self.padding) for _ in range(2)], mode=self.padding_mode)
            padding = 0
        return conv(x, self.kernel(), self.bias, self.stride, padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, n_l={self.n_l}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={self.bias is not None}, hidden={self.hidden}")


@register("conv2d", "hyper")
class HyperConv2d(_HyperConvNd):
    """2D hyper-convolution: kernel generated from its (i, j) coordinate grid (Eq. 1, Sec. 3.1).

    Args (nn.Conv2d's, plus the hyper-network's):
        in_channels, out_channels: channels (both divisible by ``groups``).
        kernel_size: odd int or pair of odd ints; does not change the parameter count (Eq. 3).
        n_l: width N_L of the last hidden layer (default 4, the paper's best test Dice, Fig. 4).
        stride=1, padding="same" ("same" = symmetric dilation*(k-1)/2, also for stride > 1;
            "valid", int or tuple as nn.Conv2d), dilation=1, groups=1, bias=True (a per-channel
            bias added after the convolution, the authors' BiasNet; not part of Eq. 3),
        padding_mode="zeros" (or "reflect", "replicate", "circular").
        hidden=(16, 16): fixed hidden widths before N_L.  Sec. 3.1 says "four hidden layers, the
            first three fixed"; the authors' code and paper-notes use 16, 16, N_L, which is what
            gives the 388 + 5 C_in C_out count, so that is the default.
        negative_slope=0.1: leaky ReLU slope (Sec. 3.1).
        init="he_normal": the authors' Keras initialisation (default); "conv_default": the
            generated kernel at nn.Conv2d's default scale (see ``reset_parameters``).
        device, dtype: factory kwargs.
    Parameters: sum_j (N_j + 1) N_{j+1} + (N_L + 1) C_out C_in/groups (Eq. 3) [+ C_out bias]
        = 388 + 5 C_in C_out at N_L = 4, groups = 1, no bias.
    """

    dims = 2


@register("conv3d", "hyper")
class HyperConv3d(_HyperConvNd):
    """3D hyper-convolution: as :class:`HyperConv2d` over an (i, j, l) grid.

    Same Args as HyperConv2d (kernel_size: odd int or triple). The first layer
    takes 3 coordinates, so Eq. (3) gives 404 + 5 C_in C_out at N_L = 4.
    """

    dims = 3


class _StandardMixin:
    def _std_init(self, base, in_channels, out_channels, kernel_size, n_l, stride, padding, dilation, groups,
                  bias, padding_mode, device, dtype):
        k, s, p, d = _geometry(self.dims, in_channels, out_channels, kernel_size, stride, padding, dilation,
                               groups, padding_mode)
        # n_l is accepted so sweeps can switch conv: standard/hyper without editing kwargs;
        # it is unused here, but a typo in it must still fail as it would for hyper
        if not _is_int(n_l) or n_l < 1:
            raise ValueError(f"n_l must be a positive integer, got {n_l!r}")
        base.__init__(self, in_channels, out_channels, k, s, p, d, groups, bias, padding_mode,
                      device=device, dtype=dtype)


@register("conv2d", "standard")
class StandardConv2d(_StandardMixin, nn.Conv2d):
    """nn.Conv2d with HyperConv2d's constructor (``n_l`` is ignored) and "same"
    padding that also works for stride > 1 (symmetric dilation*(k-1)/2).
    Args as HyperConv2d without the hyper-network ones. forward: as nn.Conv2d."""

    dims = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, n_l: int = 4,
                 stride: IntOrTuple = 1, padding: Union[str, IntOrTuple] = "same", dilation: IntOrTuple = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        self._std_init(nn.Conv2d, in_channels, out_channels, kernel_size, n_l, stride, padding, dilation,
                       groups, bias, padding_mode, device, dtype)


@register("conv3d", "standard")
class StandardConv3d(_StandardMixin, nn.Conv3d):
    """nn.Conv3d counterpart of :class:`StandardConv2d`."""

    dims = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, n_l: int = 4,
                 stride: IntOrTuple = 1, padding: Union[str, IntOrTuple] = "same", dilation: IntOrTuple = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", device=None, dtype=None):
        self._std_init(nn.Conv3d, in_channels, out_channels, kernel_size, n_l, stride, padding, dilation,
                       groups, bias, padding_mode, device, dtype)


_TARGETS = {("hyper", 2): HyperConv2d, ("hyper", 3): HyperConv3d,
            ("standard", 2): StandardConv2d, ("standard", 3): StandardConv3d}


def convert_convs(module: nn.Module, kind: str = "hyper", n_l: int = 4, kernel_size: int | None = None,
                  skip_pointwise: bool = False, **hyper_kwargs) -> nn.Module:
    """Replace every nn.Conv2d / nn.Conv3d in ``module`` (in place) by the registry conv ``kind``.

    Args:
        kind: "hyper" (HyperConv2d/3d) or "standard" (StandardConv2d/3d), the conv2d/conv3d names.
        n_l: N_L of every hyper-network (default 4).
        kernel_size: odd int to use instead of each replaced conv's own size (e.g. 5x5 hyper-kernels
            in a 3x3 UNet, Sec. 4); pointwise (1x1) convs keep size 1.  Padding grows by
            dilation*(k_new - k_old)/2 so every output shape is unchanged; shrinking a conv whose
            padding cannot absorb it raises ValueError.
        skip_pointwise: keep 1x1 convs standard, as the paper keeps its final 1x1 output conv
            (Sec. 3.1, footnote 1).  Default False: replace every conv.
        **hyper_kwargs: further HyperConv kwargs (hidden, negative_slope, init).
    Kept from each replaced conv: in/out channels, stride, padding, dilation, groups, bias,
    padding_mode, dtype, device and train/eval mode.  Weights are re-initialised (a hyper-network
    cannot represent an arbitrary kernel).  Transposed convs (not nn.Conv2d/3d subclasses), Conv1d
    and already converted hyper-convs are left as they are.  Returns ``module``, or the replacement
    when ``module`` itself is a conv.
    """
    if kind not in ("hyper", "standard"):
        raise ValueError(f"kind must be 'hyper' or 'standard', got {kind!r}")
    if kernel_size is not None and not (_is_int(kernel_size) and kernel_size >= 1 and kernel_size % 2):
        raise ValueError(f"kernel_size must be None or an odd integer >= 1, got {kernel_size!r}")
    done: dict = {}  # id(conv) -> replacement, so a conv shared by two parents stays shared

    def replace(conv: nn.Module, path: str) -> nn.Module:
        dims = 2 if isinstance(conv, nn.Conv2d) else 3
        k_old = tuple(conv.kernel_size)
        if any(k % 2 == 0 for k in k_old):
            raise ValueError(f"cannot convert {path or 'module'}: kernel_size {k_old} is even; hyper-convs "
                             f"need a kernel grid centred on a pixel")
        if skip_pointwise and all(k == 1 for k in k_old):
            return conv
        pad = conv.padding
        if pad == "same":
            pad = tuple(d * (k - 1) // 2 for k, d in zip(k_old, conv.dilation))
        elif pad == "valid":
            pad = (0,) * dims
        k_new = k_old if kernel_size is None or all(k == 1 for k in k_old) else (kernel_size,) * dims
        pad = tuple(p + d * (kn - ko) // 2 for p, d, kn, ko in zip(pad, conv.dilation, k_new, k_old))
        if min(pad) < 0:
            raise ValueError(f"cannot convert {path or 'module'} to kernel_size {kernel_size}: its padding "
                             f"{conv.padding} cannot keep the output shape")
        extra = dict(hyper_kwargs, n_l=n_l) if kind == "hyper" else {}
        new = _TARGETS[(kind, dims)](conv.in_channels, conv.out_channels, k_new, stride=tuple(conv.stride),
                                     padding=pad, dilation=tuple(conv.dilation), groups=conv.groups,
                                     bias=conv.bias is not None, padding_mode=conv.padding_mode,
                                     device=conv.weight.device, dtype=conv.weight.dtype, **extra)
        return new.train(conv.training)

    def is_target(m: nn.Module) -> bool:
        return isinstance(m, (nn.Conv2d, nn.Conv3d)) and not (kind == "standard" and isinstance(m, _StandardMixin)
                                                            and kernel_size is None)

    if is_target(module):
        return replace(module, "")
    for path, parent in list(module.named_modules()):
        for name, child in list(parent._modules.items()):  # named_children() skips repeats
            if is_target(child):
                if id(child) not in done:
                    done[id(child)] = replace(child, f"{path}.{name}".lstrip("."))
                setattr(parent, name, done[id(child)])
    return module
