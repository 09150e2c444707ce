"""Argument checks and quiet numerics shared by the statistics: one-line errors naming the argument, the
value and what is allowed (never NaN silently)."""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Sequence

import numpy as np


def choice_arg(name: str, value: Any, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def unit_arg(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number in (0, 1); got {value!r}")
    return float(value)


def finite_values(name: str, values: Any) -> np.ndarray:
    """1-D float array, ±inf turned into NaN: a run whose metric is infinite diverged, and like a failed or unlogged
    run (NaN) it is left out by the callers, never averaged."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a 1-D array of numbers; got {values!r}") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of numbers; got {values!r}")
    return np.where(np.isinf(arr), np.nan, arr)


@contextlib.contextmanager
def quiet():
    # scipy warns "Precision loss" whenever one arm is constant although its result is exact; the power
    # solvers warn on non-convergence, which the callers check (non-finite result -> None / nan).
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        yield
