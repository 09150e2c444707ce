"""How the hyperbolic VAE calls its ``model.coarsen`` slot, for the pre-flight (sweeps/language/preflight.py):
one invertible 2-D coarsening per unit, at 4^k channels and data.size / 2^k pixels."""
from __future__ import annotations

from typing import Any, Dict, List


def coarsen_kwargs(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """A researcher's own coarsening's model.coarsen.<argument> keys (none for the shipped ones)."""
    from tasks import get_task

    return get_task("hyperbolic_vae").slot_kwargs(cfg, "model.coarsen")


def coarsen_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    import torch

    from components.hyperbolic import coarsen_arguments

    kw = coarsen_arguments(cfg["model.coarsen"], cfg["model.wavelet_scale"], coarsen_kwargs(cfg))
    c, s, out = 1, cfg["data.size"], []
    for _ in range(cfg["model.units"]):
        out.append({"kwargs": {"channels": c, "dims": 2, **kw}, "inputs": (torch.randn(2, c, s, s),),
                    "out_shape": (2, 4 * c, s // 2, s // 2)})
        c, s = 4 * c, s // 2
    return out
