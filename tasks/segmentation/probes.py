"""How the segmentation UNets call their ``model.fusion`` slot, for the pre-flight
(sweeps/language/preflight.py): at every decoder scale, ``fusion(encoder feature, up-sampled feature)`` on
two (N, C, *S) tensors of that scale's width C = base_channels · 2^level (both backbones), in 2-D or 3-D."""
from __future__ import annotations

from typing import Any, Dict, List


def fusion_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    import torch

    from .models import fusion_kwargs, unet_channels

    widths = unet_channels(cfg["model.base_channels"], cfg["model.depth"])[:-1]
    space = (4,) * cfg["model.dims"]
    kw = fusion_kwargs(cfg)
    return [{"kwargs": {"channels": c, **kw}, "inputs": (torch.randn(2, c, *space), torch.randn(2, c, *space)),
             "out_shape": (2, c, *space)} for c in widths]
