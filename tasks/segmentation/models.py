"""The segmentation task's networks: the hyper-convolution authors' max-pool
UNet (``maxpool_unet.py``, ``model.backbone: unet``) or MONAI's UNet
(``model.backbone: monai``, below), each with a choice of skip fusion and of
convolution.  The rest of this docstring describes the MONAI variant.

Skip fusion (CFU paper, shared/seeds/000, Sec. IV-A and Table I: "we set UNet
as our baseline model, with concatenative feature fusion ... replace the
concatenation fusion for CFU"):

* ``concat``: MONAI's UNet unchanged.  Each level's SkipConnection(mode="cat")
  concatenates the encoder feature x (C channels) with the decoder feature
  coming up from the level below, and the level's up-convolution takes the
  2C channels.  (components' ``fusion/concat`` adds a 1x1 projection the
  baseline UNet does not have, so it is not used here.)
* ``cfu`` / ``pu`` / ``add``: the concatenation is *replaced* by the
  elementwise fusion ``fusion(shortcut=x, current=decoder feature)`` (Eq. 4:
  the encoder's cross-layer feature x generates the Chebyshev terms, the
  current decoder feature f(x) is gated), so the fused map has C channels and
  every up-convolution's input width halves (2C -> C).  Elementwise fusion
  needs equal widths: MONAI's bottleneck outputs channels[-1] while the
  deepest skip has channels[-2], so the bottleneck is followed by a 1x1
  convolution to channels[-2] - the role of the classic UNet's up-convolution,
  which halves the channels before its skip fusion.  The fusion modules come
  from the ``fusion`` registry.

Convolutions (hyper-convolution paper, shared/seeds/003, Sec. 4): ``standard``
builds MONAI's UNet with ``kernel_size=k``; ``hyper`` builds the same network
and converts every non-pointwise nn.Conv2d/3d into a hyper-convolution with
``components.hyperconv.convert_convs(kind="hyper", n_l, kernel_size=k)``.
1x1 convolutions stay standard, as the paper keeps its pointwise output conv
(Sec. 3.1, footnote 1).  MONAI's up path upsamples with transposed
convolutions, which convert_convs leaves standard; with ``num_res_units=2``
(the default here) every scale still has two converted convolutions on the
encoder side and one on the decoder side, as the paper's "two convolution
layers per scale".
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

import torch
from monai.networks.blocks import Convolution
from monai.networks.layers import SkipConnection
from monai.networks.nets import UNet
from torch import nn

import components
from components.fusion import FORMS
from components.hyperconv import convert_convs

from .maxpool_unet import MaxPoolUNet

ELEMENTWISE = ("add", "cfu", "pu")


class FusionSkip(SkipConnection):
    """SkipConnection whose ``cat`` is replaced by ``fusion(x, submodule(x))``.

    Args:
        submodule: the deeper part of the UNet (returns the decoder feature).
        fusion: an nn.Module called as ``fusion(shortcut, current)``.
    """

    def __init__(self, submodule: nn.Module, fusion: nn.Module) -> None:
        super().__init__(submodule, dim=1, mode="cat")
        self.fusion = fusion

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: encoder feature (N, C, *spatial) -> fused (N, C, *spatial)."""
        return self.fusion(x, self.submodule(x))


class FusionUNet(UNet):
    """MONAI UNet whose skip concatenations are replaced by an elementwise fusion.

    Args:
        fusion: registry name in ``ELEMENTWISE`` ("add", "cfu", "pu").
        fusion_kwargs: extra constructor kwargs of the fusion (e.g. order, identity).
        **unet_kwargs: monai.networks.nets.UNet's arguments.
    forward: (N, in_channels, *spatial) -> (N, out_channels, *spatial).
    """

    def __init__(self, fusion: str, fusion_kwargs: Dict[str, Any] | None = None, **unet_kwargs: Any) -> None:
        if fusion not in ELEMENTWISE and (fusion == "concat" or fusion not in components.available("fusion")):
            raise ValueError(f"fusion must be one of {ELEMENTWISE} or a registered fusion component (concat is "
                             f"MONAI's UNet itself), got {fusion!r}")
        # MONAI's __init__ builds the levels bottom-up through the hooks below;
        # they need these before nn.Module.__init__ runs, hence object.__setattr__.
        object.__setattr__(self, "_fusion_spec", (fusion, dict(fusion_kwargs or {})))
        object.__setattr__(self, "_levels_built", 0)
        object.__setattr__(self, "_level_c", 0)
        super().__init__(**unet_kwargs)

    def _get_bottom_layer(self, in_channels: int, out_channels: int) -> nn.Module:
        bottom = super()._get_bottom_layer(in_channels, out_channels)
        if out_channels == in_channels:
            return bottom
        proj = Convolution(self.dimensions, out_channels, in_channels, kernel_size=1, conv_only=True, bias=self.bias)
        return nn.Sequential(bottom, proj)

    def _get_up_layer(self, in_channels: int, out_channels: int, strides: int, is_top: bool) -> nn.Module:
        # MONAI builds the up layers from the deepest level upwards, one per level.
        level = len(self.channels) - 2 - self._levels_built
        c = self.channels[level]
        expected = 2 * c if level < len(self.channels) - 2 else c + self.channels[-1]
        if in_channels != expected:  # MONAI's bookkeeping changed: fail loudly, never mis-wire
            raise RuntimeError(f"unexpected MONAI UNet up-layer width {in_channels} at level {level}")
        object.__setattr__(self, "_levels_built", self._levels_built + 1)
        object.__setattr__(self, "_level_c", c)
        return super()._get_up_layer(c, out_channels, strides, is_top)

    def _get_connection_block(self, down_path: nn.Module, up_path: nn.Module, subblock: nn.Module) -> nn.Module:
        name, kwargs = self._fusion_spec
        fusion = components.build("fusion", name, channels=self._level_c, **kwargs)
        return nn.Sequential(down_path, FusionSkip(subblock, fusion), up_path)


def unet_channels(base: int, depth: int) -> Sequence[int]:
    """(base, 2 base, ..., 2^depth base): ``depth`` downsamplings, channels doubling."""
    return tuple(base * 2 ** i for i in range(depth + 1))


def fusion_kwargs(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Constructor kwargs of a cfu/pu fusion: the order and the form's (identity, bound); a researcher's own
    fusion component gets its model.fusion.<argument> keys."""
    if cfg["model.fusion"] not in ("concat", "add", "cfu", "pu"):
        from tasks import get_task

        return get_task("segmentation").slot_kwargs(cfg, "model.fusion")
    if cfg["model.fusion"] not in ("cfu", "pu"):
        return {}
    return dict(order=cfg["model.order"], **FORMS[cfg["model.fusion_form"]])


def build_model(cfg: Dict[str, Any], in_channels: int, out_channels: int) -> nn.Module:
    """The network of the config (keys model.*), fusion and conv applied."""
    k = cfg["model.kernel_size"]
    fusion = cfg["model.fusion"]
    hyper_init = cfg.get("model.hyper_init", "he_normal")
    if cfg["model.backbone"] == "unet":
        return MaxPoolUNet(in_channels, out_channels, conv=cfg["model.conv"], kernel_size=k,
                           n_l=cfg.get("model.n_l", 4), base_channels=cfg["model.base_channels"],
                           depth=cfg["model.depth"], dropout=cfg["model.dropout"],
                           dropout_at=cfg["model.dropout_at"], norm=cfg["model.norm"], fusion=fusion,
                           fusion_kwargs=fusion_kwargs(cfg), hyper_init=hyper_init,
                           up_kernel_size=cfg["model.up_kernel_size"] or None, dims=cfg["model.dims"])
    kw = dict(spatial_dims=cfg["model.dims"], in_channels=in_channels, out_channels=out_channels,
              channels=unet_channels(cfg["model.base_channels"], cfg["model.depth"]),
              strides=(2,) * cfg["model.depth"], kernel_size=k, num_res_units=cfg["model.res_units"],
              act="relu", norm=cfg["model.norm"], dropout=cfg["model.dropout"])
    net = UNet(**kw) if fusion == "concat" else FusionUNet(fusion, fusion_kwargs(cfg), **kw)
    if cfg["model.conv"] == "hyper":
        convert_convs(net, kind="hyper", n_l=cfg["model.n_l"], kernel_size=k, skip_pointwise=True,
                      init=hyper_init)
    return net
