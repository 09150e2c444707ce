"""The t statistics every verdict rests on, for any input the store can hold: Welch's two-sample t and the paired
t, their intervals at any level and the TOST equivalence p, never NaN and never raising.

The formulas are scipy's ``ttest_ind(equal_var=False)`` / ``ttest_rel`` and statsmodels' ``ttost_ind(usevar=
"unequal")`` / ``ttost_paired`` (tests/analysis/test_stats.py checks them to 1e-12). They are written out here
because the library calls return NaN or warn on the degenerate inputs a launch produces (one seed, constant arms,
values near the float limits) and compute one interval level per call, where the tables need several (the
adjusted interval beside the unadjusted one, the equivalence interval). Degenerate cases get the values that keep
every claim valid: p = 1 (no evidence) and an unbounded interval when the statistic is undefined.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

_BIG, _TINY = 1e100, 1e-100        # outside these magnitudes values are rescaled first (variances over/underflow)


@dataclass(frozen=True)
class TStat:
    """One comparison's t statistic.

    Args:
        delta: mean(cell) − mean(baseline) (paired: mean of the pair differences); nan when an arm is empty.
        se: its standard error (0 when no arm varies; inf when an arm has one value).
        df: degrees of freedom (Welch–Satterthwaite, or pairs − 1); 0 when there is none.
        sd: pooled seed SD (paired: SD of the differences); nan when there is no variance estimate.
        sd_df: the degrees of freedom of sd.
        n_pairs: pairs used (paired only, else None).
    """
    delta: float
    se: float
    df: float
    sd: float
    sd_df: int
    n_pairs: object = None

    @property
    def testable(self) -> bool:
        """Whether a t test is defined: finite delta, df ≥ 1 and a positive, finite SE."""
        return bool(math.isfinite(self.delta) and self.df >= 1 and 0 < self.se < math.inf)

    @property
    def t(self) -> float:
        return self.delta / self.se if self.testable else 0.0

    @property
    def p(self) -> float:
        """Two-sided p; 1.0 when untestable (no evidence either way)."""
        if not self.testable:
            return 1.0
        return float(min(1.0, 2.0 * special.stdtr(self.df, -abs(self.t))))

    def crit(self, level: float) -> float:
        """The two-sided t critical value at ``level`` (level 0: inf)."""
        if not self.testable or not level > 0:
            return math.inf
        return float(special.stdtrit(self.df, 1.0 - min(level, 1.0) / 2.0))

    def interval(self, level: float):
        """The (1 − level) two-sided interval of delta; (−inf, inf) when untestable."""
        h = self.crit(level) * self.se if self.testable else math.inf
        if not math.isfinite(h):
            return (-math.inf, math.inf)
        return (self.delta - h, self.delta + h)

    def p_equivalence(self, margin) -> float:
        """TOST p for |delta| < margin: the larger of the two one-sided p (Schuirmann 1987); 1.0 when untestable
        or without a margin."""
        if margin is None or not self.testable:
            return 1.0
        lo = special.stdtr(self.df, -(self.delta + margin) / self.se)      # H0: delta <= -margin
        hi = special.stdtr(self.df, (self.delta - margin) / self.se)       # H0: delta >= margin
        return float(min(1.0, max(lo, hi)))


def _scale(*arms) -> float:
    vals = np.concatenate([np.abs(a) for a in arms if a.size]) if any(a.size for a in arms) else np.zeros(0)
    top = float(vals.max()) if vals.size else 0.0
    return top if top > _BIG or 0 < top < _TINY else 1.0


def _var(a: np.ndarray) -> float:
    # ptp: three copies of 0.1 have a float variance of ~1e-34, which is 0
    return float(a.var(ddof=1)) if a.size > 1 and np.ptp(a) > 0 else 0.0


def welch(x: np.ndarray, y: np.ndarray) -> TStat:
    """Welch's t of finite arrays x (cell) and y (baseline)."""
    s = _scale(x, y)
    x, y = x / s, y / s
    if not x.size or not y.size:
        return TStat(math.nan, math.inf, 0.0, math.nan, 0)
    delta = float(x.mean() - y.mean())
    dfp = x.size + y.size - 2
    sd = math.sqrt(((x.size - 1) * _var(x) + (y.size - 1) * _var(y)) / dfp) if dfp >= 1 else math.nan
    if x.size < 2 or y.size < 2:
        return TStat(delta * s, math.inf, 0.0, sd * s, dfp)
    vx, vy = _var(x) / x.size, _var(y) / y.size
    se = math.sqrt(vx + vy)
    # Welch–Satterthwaite df in the variance shares a = vx / (vx + vy): scale-free, so no overflow of (vx + vy)²
    a = vx / (vx + vy) if se > 0 else 0.0
    df = 1.0 / (a ** 2 / (x.size - 1) + (1.0 - a) ** 2 / (y.size - 1)) if se > 0 else 0.0
    return TStat(delta * s, se * s, float(df), sd * s, dfp)


def paired(a: np.ndarray, b: np.ndarray) -> TStat:
    """Paired t of seed-matched arrays a (cell) and b (baseline)."""
    s = _scale(a, b)
    d = a / s - b / s
    if not d.size:
        return TStat(math.nan, math.inf, 0.0, math.nan, 0, 0)
    sd = math.sqrt(_var(d)) if d.size > 1 else math.nan
    se = sd / math.sqrt(d.size) if d.size > 1 else math.inf
    return TStat(float(d.mean()) * s, se * s, float(d.size - 1) if se > 0 else 0.0, sd * s, d.size - 1, int(d.size))


def pair_up(x, sx, y, sy):
    """The values of x and y on the seeds both have, in seed order."""
    common = np.intersect1d(sx, sy)
    take = lambda v, s: v[np.argsort(s, kind="stable")][np.searchsorted(np.sort(s), common)]
    return take(x, sx), take(y, sy)
