"""How the physics field's MLP calls its ``model.fusion`` slot, for the pre-flight
(sweeps/language/preflight.py): once, on the hidden features h1 and f(h1) of width model.hidden; the HNN
differentiates the field, so the probe also takes a second derivative through the component."""
from __future__ import annotations

from typing import Any, Dict, List


def fusion_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    """``fusion(h1, h2)``: two (N, hidden) tensors -> (N, hidden)."""
    import torch

    from components.fusion import FORMS

    from .train import own_fusion_kwargs

    h, name = cfg["model.hidden"], cfg["model.fusion"]
    if name in ("cfu", "pu"):
        kw = {"order": cfg["model.order"], "fused": True, **FORMS[cfg["model.fusion_form"]]}
    else:
        kw = own_fusion_kwargs(cfg)
    return [{"kwargs": {"channels": h, **kw}, "inputs": (torch.randn(4, h), torch.randn(4, h)),
             "out_shape": (4, h)}]
