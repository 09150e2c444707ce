"""How the image_classification backbone calls its ``model.fusion`` slot, for the pre-flight
(sweeps/language/preflight.py): every fusion unit's channels (from the backbone itself, built without fusion
units), the constructor arguments the task passes, and a small random input of each width."""
from __future__ import annotations

from typing import Any, Dict, List


def fusion_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    """``fusion(shortcut, current)``: two (N, C, H, W) tensors -> (N, C, H, W), one call per distinct C."""
    import torch

    from .models import fusion_channels
    from .train import fusion_kwargs

    widths = sorted(set(fusion_channels(cfg["model.arch"], cfg["model.width_mult"], cfg.get("model.stem", "cifar"))))
    kw = fusion_kwargs(cfg)
    return [{"kwargs": {"channels": c, **kw}, "inputs": (torch.randn(2, c, 4, 4), torch.randn(2, c, 4, 4)),
             "out_shape": (2, c, 4, 4)} for c in widths]
