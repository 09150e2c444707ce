"""Power of the t-tests the tables run: minimum detectable effects and the seeds a decision needs (Colas et al.
2018, "How many random seeds?"), with statsmodels' solvers (``statsmodels.stats.power``) over the power of the
test actually run: statsmodels has only the pooled t-test's, which overstates Welch's at small n (n = 3,
α = 0.005: 0.54, not 0.8), so Welch's exact power is written here; and its noncentral-t tail is NaN-safe.
Pure: numbers in, numbers out.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import integrate, special, stats
from statsmodels.stats.power import TTestIndPower, TTestPower

from ._checks import choice_arg, quiet, unit_arg

POWER = 0.8


# ---------------------------------------------------------------- power (noncentral t)
def _t_power(d, nobs, alpha, df):
    # Lower tail as sf(crit, df, -nc): scipy's nct.cdf returns NaN far in the lower tail (scipy#25470), and
    # statsmodels' own power then lets solve_power "converge" on a non-root (n = 3, α = 0.005: 5.60 at power 0.775).
    crit, nc = stats.t.isf(alpha / 2, df), d * np.sqrt(nobs)
    return stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc)


@lru_cache(maxsize=256)
def _jacobi(k1: int, k2: int, nodes: int = 32):
    x, w = special.roots_jacobi(nodes, k2 / 2 - 1, k1 / 2 - 1)     # weight r^(k1/2-1) (1-r)^(k2/2-1), r = (x+1)/2
    return (x + 1) / 2, w / w.sum()


def _welch_power(d, n1, n2, alpha):
    """Exact power of Welch's test at equal true variances (statsmodels has only the pooled t-test's).

    With A = (n1−1)s1²/σ², B = (n2−1)s2²/σ², R = A/(A+B) ~ Beta((n1−1)/2, (n2−1)/2) is independent of
    A + B ~ χ²(n1+n2−2) and fixes the Welch df; given R, rejection is a noncentral-t event with n1+n2−2 df.
    So power = E_R[...]: 32-node Gauss–Jacobi (error < 1e-6 against adaptive quadrature and Monte Carlo
    while max(n) ≤ 2·min(n)); beyond that R piles up at one end, so adaptive quad over log F(n1−1, n2−1).
    """
    k1, k2, h = n1 - 1, n2 - 1, 1 / n1 + 1 / n2

    def given(r):
        a, b = r / (k1 * n1), (1 - r) / (k2 * n2)
        crit = stats.t.isf(alpha / 2, (a + b) ** 2 / (a ** 2 / k1 + b ** 2 / k2)) * np.sqrt((k1 + k2) * (a + b) / h)
        return stats.nct.sf(crit, k1 + k2, d / np.sqrt(h)) + stats.nct.sf(crit, k1 + k2, -d / np.sqrt(h))

    if max(n1, n2) <= 2 * min(n1, n2):
        r, w = _jacobi(k1, k2)
        return float(w @ given(r))
    f = lambda t: math.exp(stats.f.logpdf(math.exp(t), k1, k2) + t) * float(given(special.expit(t + math.log(k1 / k2))))
    lo, hi = np.log(stats.f.ppf([1e-12, 1 - 1e-12], k1, k2))
    turn = math.log(n1 / n2)                      # where the two arms' variance terms are equal
    return integrate.quad(f, lo, hi, points=[turn] if lo < turn < hi else None, limit=400, epsabs=1e-10)[0]


class _IndPower(TTestIndPower):
    """statsmodels' solver over the two-sided power of the pooled (welch=False) or Welch t-test."""

    def __init__(self, welch: bool):
        super().__init__()
        self.welch = welch

    def power(self, effect_size, nobs1, alpha, ratio=1, df=None, alternative="two-sided"):
        n2 = nobs1 * ratio
        if self.welch:
            return _welch_power(effect_size, nobs1, n2, alpha)
        return _t_power(effect_size, nobs1 * n2 / (nobs1 + n2), alpha, nobs1 + n2 - 2 if df is None else df)


class _PairedPower(TTestPower):
    """statsmodels' one-sample (paired differences) solver over the NaN-free two-sided power."""

    def power(self, effect_size, nobs, alpha, df=None, alternative="two-sided"):
        return _t_power(effect_size, nobs, alpha, nobs - 1 if df is None else df)


@lru_cache(maxsize=4096)
def _mde_d(n1: int, n2: int, level: float, test: str) -> float:
    """Minimum detectable effect in SDs (power 0.8, two-sided) of test "welch", "pooled" or "paired" (n1 pairs)."""
    with quiet():
        if test == "paired":
            return float(_PairedPower().solve_power(effect_size=None, nobs=n1, alpha=level, power=POWER))
        return float(_IndPower(test == "welch").solve_power(effect_size=None, nobs1=n1, ratio=n2 / n1,
                                                             alpha=level, power=POWER))


def _seeds_for(d: float, level: float, test: str) -> Optional[int]:
    """Seeds per cell (ratio 1) to detect d SDs: statsmodels' solve_power(nobs=None) for the pooled / paired t,
    rounded up; for Welch, then the first n from there at which Welch's power reaches 0.8 (it never needs
    fewer; from 1000 seeds on the two differ by < 1e-6 in power, so the pooled n stands). None where no finite
    number would do (d not finite or below 1e-4 SD, or the solver fails, as statsmodels' does far out)."""
    if not (isinstance(d, (int, float, np.floating)) and math.isfinite(d) and d >= 1e-4 and 0 < level < 1):
        return None
    step = 10.0 ** (math.floor(math.log10(d)) - 3)
    return _seeds_cached(math.floor(d / step) * step, float(level), test)


@lru_cache(maxsize=65536)
def _seeds_cached(d: float, level: float, test: str) -> Optional[int]:
    # d floored to 4 significant digits (never fewer seeds): a planning number from an estimated SD, and the
    # solver costs ~5 ms, so simulations that replay thousands of launches reuse its answers
    solver, key = (_PairedPower(), "nobs") if test == "paired" else (_IndPower(False), "nobs1")
    try:
        if solver.power(d, 2, level) >= POWER:    # the solver's bracket starts at 2 seeds
            n = 2.0
        else:
            with quiet():
                n = float(np.squeeze(solver.solve_power(effect_size=d, alpha=level, power=POWER, **{key: None})))
    except (ValueError, ArithmeticError, RuntimeError):
        return None
    if not np.isfinite(n) or n > 1e9 or (n > 2 and abs(solver.power(d, n, level) - POWER) > 0.01):
        return None
    n = int(math.ceil(n))
    while test == "welch" and n < 1000 and _welch_power(d, n, n, level) < POWER:
        n += 1
    return n


def mde_sd(n1: int, n2: int, level: float, test: str) -> float:
    """Minimum detectable effect in SDs at n1, n2 seeds (paired: n1 pairs); inf below 2 seeds or on failure."""
    if min(n1, n2 if test != "paired" else n1) < 2 or not 0 < level < 1:
        return math.inf
    try:
        d = _mde_d(int(n1), int(n2), float(level), test)
    except (ValueError, ArithmeticError, RuntimeError):
        return math.inf
    return d if math.isfinite(d) and d > 0 else math.inf


def mde_table(seeds: Sequence[int] = (3, 5, 10, 20), alphas: Sequence[float] = (0.05, 0.005),
              test: str = "welch") -> pd.DataFrame:
    """Minimum detectable effect in seed SDs (two-sided, power 0.8): rows seeds per cell, columns α.

    Args:
        seeds: seeds per cell (each ≥ 2). Default (3, 5, 10, 20).
        alphas: per-comparison levels (α / m for a family of m cells). Default (0.05, 0.005).
        test: "welch" (the tables' test), "pooled" (statsmodels' TTestIndPower, as in
            /work/shared/statistics.md) or "paired" (n pairs; SD of the differences). Default "welch".
    """
    choice_arg("test", test, ("welch", "pooled", "paired"))
    for n in seeds:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"seeds must be integers ≥ 2; got {n!r}")
    for a in alphas:
        unit_arg("alphas", a)
    return pd.DataFrame([[_mde_d(int(n), int(n), float(a), test) for a in alphas] for n in seeds],
                        index=pd.Index(list(seeds), name="seeds"), columns=[f"α = {a:g}" for a in alphas])
seeds_for = _seeds_for
