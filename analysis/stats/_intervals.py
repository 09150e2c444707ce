"""The t-interval of a mean: the error bars and bands of every figure (scipy.stats.t; this module only
handles fewer than two values and non-finite ones, which a figure must draw as a bare mean)."""
from __future__ import annotations

import math

import numpy as np


def t_interval(vals: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the t interval of the mean (nan below 2 values)."""
    from scipy import stats

    vals = np.asarray(vals, float)
    vals = vals[np.isfinite(vals)]
    if len(vals) < 2:
        return float("nan")
    return float(stats.t.ppf(0.5 + confidence / 2, len(vals) - 1) * vals.std(ddof=1) / math.sqrt(len(vals)))


def t_ci(vals) -> tuple:
    """seaborn ``errorbar=`` callable: (low, high) of the 95 % t-interval (the mean alone below 2 values)."""
    vals = np.asarray(vals, float)
    m, h = float(np.mean(vals)), t_interval(vals)
    h = 0.0 if not math.isfinite(h) else h
    return m - h, m + h


def t_half_widths(n, sd, confidence: float = 0.95) -> np.ndarray:
    """Half-widths of the t-intervals of means from their counts ``n`` and standard deviations ``sd`` (0 where
    n < 2)."""
    from scipy import stats

    n, sd = np.asarray(n, float), np.asarray(sd, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)) * sd / np.sqrt(n)
    return np.where(n >= 2, h, 0.0)
