"""How the complex_classification backbone calls its component slots, for the pre-flight
(sweeps/language/preflight.py): the constructor arguments the task passes, a small random input, the output
shape.  The image size and class count are those of the dataset; MSTAR's come from its files, so its probe
uses a 32 x 32, 10-class stand-in (the constructor arguments of the real run differ only in those numbers)."""
from __future__ import annotations

from typing import Any, Dict, List

from ..datasets import NUM_CLASSES

SIZE = 32            # CIFAR, SVHN and the digits stand-in are 32 x 32


def _encoding_kwargs(cfg: Dict[str, Any]) -> Dict[str, Any]:
    from tasks import get_task

    return get_task("complex_classification").slot_kwargs(cfg, "data.encoding")


def _encoding(cfg: Dict[str, Any]):
    import components

    return components.build("encoding", cfg["data.encoding"], **_encoding_kwargs(cfg))


def encoding_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The ``encoding`` slot: RGB in [0, 1] (N, 3, H, W) -> complex (N, channels, H, W)."""
    import torch

    return [{"kwargs": _encoding_kwargs(cfg), "inputs": (torch.rand(2, 3, SIZE, SIZE),),
             "out_shape": lambda module: (2, module.channels, SIZE, SIZE)}]


def model_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The ``complex_model`` slot: complex (N, C, S, S) -> logits (N, num_classes)."""
    import torch

    from .train import model_kwargs

    channels = 1 if cfg["data.name"] == "mstar" else _encoding(cfg).channels
    k = NUM_CLASSES.get(cfg["data.name"], 10)
    z = torch.complex(torch.randn(2, channels, SIZE, SIZE), torch.randn(2, channels, SIZE, SIZE))
    return [{"kwargs": model_kwargs(cfg, channels, k, SIZE), "inputs": (z,), "out_shape": (2, k)}]
