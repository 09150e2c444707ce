"""How the hyperbolic network calls its ``model.coarsen`` slot, for the pre-flight
(sweeps/language/preflight.py): one coarsening per level, at width · 2^(dims · level) channels, on a small
random state; the output has 2^dims times the channels at half the resolution.  The network is reversible
when the coarsening says it is invertible (attribute ``invertible`` with an ``inverse`` method)."""
from __future__ import annotations

from typing import Any, Dict, List


def coarsen_kwargs(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """A researcher's own coarsening's model.coarsen.<argument> keys (none for the shipped ones)."""
    from tasks import get_task

    return get_task("hyperbolic").slot_kwargs(cfg, "model.coarsen")


def coarsen_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    import torch

    from components.hyperbolic import coarsen_arguments

    dims, c, out = cfg["model.dims"], cfg["model.width"], []
    kw = coarsen_arguments(cfg["model.coarsen"], cfg.get("model.wavelet_scale", "orthonormal"), coarsen_kwargs(cfg))
    for _ in range(cfg["model.n_levels"]):
        out.append({"kwargs": {"channels": c, "dims": dims, **kw}, "inputs": (torch.randn(2, c, *(4,) * dims),),
                    "out_shape": (2, c * 2 ** dims, *(2,) * dims)})
        c *= 2 ** dims
    return out
