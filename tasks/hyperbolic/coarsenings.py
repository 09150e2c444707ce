"""The hyperbolic task's choice lists (components/hyperbolic.py, components/wavelets.py
hold the operators).  Standard library only: the task's schema and train.py both read
them, and the schema must not import torch."""
from __future__ import annotations

INVERTIBLE = ("dwt", "learnable_dwt")
COARSEN = INVERTIBLE + ("avgpool", "maxpool")
LAYOUTS = ("reference", "learned_opening")          # components.hyperbolic.LAYOUTS (checked by a test)
WAVELET_SCALES = ("orthonormal", "reference")       # components.wavelets.SCALES (checked by a test)
