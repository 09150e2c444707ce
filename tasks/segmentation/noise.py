"""Test-time noise of the segmentation task (hyper-convolution paper, shared/seeds/003,
Sec. 4.3 / Fig. 6: test Dice under Gaussian, salt-and-pepper and speckle noise of
models trained on clean images).  Standard library only: the task's schema reads
the metric names at sweep validation, which must not import torch.

The figure's noise levels are not in the text, so these are chosen on the
[0, 1] intensity scale the paper normalises to (mild, moderate, strong).
Gaussian and speckle: standard deviation; salt-and-pepper ("saltpepper"):
fraction of pixels replaced.  The noise itself is ``data.add_noise``.
"""
from __future__ import annotations

from typing import Dict, List, Tuple

NOISE_LEVELS: Dict[str, Tuple[float, ...]] = {
    "gaussian": (0.05, 0.1, 0.2),
    "saltpepper": (0.02, 0.05, 0.1),
    "speckle": (0.1, 0.2, 0.4),
}
NOISE_SEED = 1234   # one noisy test set shared by every model and seed


def noise_metric_names() -> List[str]:
    """``dice_<kind>_<level>`` for every kind and level, in NOISE_LEVELS' order."""
    return [f"dice_{kind}_{lvl:g}" for kind, lvls in NOISE_LEVELS.items() for lvl in lvls]
