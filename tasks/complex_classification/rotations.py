"""The test-time C-scaling of the CDS paper's robustness curves (Figs. 2c, 8c): which
rotation ranges are measured and what their metrics are called.

Shared by the task's SPEC (metric names) and its training loop; stdlib only, so that
the SPEC stays import-light.
"""
from __future__ import annotations

from typing import List, Tuple

# Rotation ranges of Figs. 2c / 8c as multiples of pi (the figures' x-axis spans 0..pi).
ROTATIONS: Tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
ROT_SEED = 2022   # one set of test-time scalings shared by every model and seed


def rotation_metric(r: float) -> str:
    """acc_rot_0, acc_rot_0.25pi, ..., acc_rot_1pi."""
    return "acc_rot_0" if r == 0 else f"acc_rot_{r:g}pi"


def rotation_metric_names() -> List[str]:
    return [rotation_metric(r) for r in ROTATIONS]
