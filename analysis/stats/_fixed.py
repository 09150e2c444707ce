"""Per-cell statistics of ablation tables: intervals, multiplicity, power, equivalence, grids, suites.

Methods and sources (details and how to read them: docs/statistics.md):
- Welch t-test and its Welch–Satterthwaite interval (``scipy.stats.ttest_ind(equal_var=False)``), or the
  paired t-test on seed-matched runs (``ttest_rel``); Holm / Benjamini–Hochberg over the cells of one table
  (``statsmodels.stats.multitest.multipletests``); TOST equivalence (``ttost_ind`` / ``ttost_paired``).
- Hedges' g with J = 1 − 3/(4·df − 1) (Hedges & Olkin 1985). Power, MDE and seeds (Colas et al. 2018,
  "How many random seeds?") with statsmodels' solvers (``statsmodels.stats.power``) over the power of the test
  actually run: statsmodels has only the pooled t-test's, which overstates Welch's at small n (n = 3,
  α = 0.005: 0.54, not 0.8), so Welch's exact power is written here; and its noncentral-t tail is NaN-safe.
- Factorial grids: OLS + type-II ANOVA (``statsmodels.formula.api.ols``, ``anova_lm``).
- Suites: average ranks + Friedman test, Nemenyi critical-difference via autorank (Demšar 2006, JMLR 7);
  probability of improvement P(X > Y) = U / (n·m) averaged over tasks with a stratified percentile bootstrap,
  as rliable defines them (Agarwal et al. 2021, "Deep RL at the edge of the statistical precipice";
  rliable/metrics.py, library.py). rliable does not import with pandas 3 (arch 7), hence the few lines here.

Everything is pure: arrays in, frozen dataclasses out; nothing here imports ray, tasks or components.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import integrate, special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from ._checks import choice_arg, finite_values, quiet, unit_arg

POWER = 0.8
_METHOD = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh", "none": None}
_ADJ_NAME = {"holm": "Holm-adjusted", "bonferroni": "Bonferroni-adjusted", "bh": "Benjamini–Hochberg-adjusted",
             "none": "unadjusted"}


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
    fewer; from 1000 seeds on the two differ by < 1e-6 in power, so the pooled n stands)."""
    solver, key = (_PairedPower(), "nobs") if test == "paired" else (_IndPower(False), "nobs1")
    if solver.power(d, 2, level) >= POWER:    # the solver's bracket starts at 2 seeds
        n = 2.0
    else:
        with quiet():
            n = solver.solve_power(effect_size=d, alpha=level, power=POWER, **{key: None})
    if not np.isfinite(n):
        return None
    n = int(math.ceil(n))
    while test == "welch" and n < 1000 and _welch_power(d, n, n, level) < POWER:
        n += 1
    return n


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


# ---------------------------------------------------------------- one table: cells vs the baseline
@dataclass(frozen=True)
class CellComparison:
    """One non-baseline cell against the baseline cell (no defaults: every field is computed).

    Args:
        n, n_base: finite values in the cell and in the baseline (NaN dropped).
        n_pairs: seed-matched pairs used by the paired test (None for Welch).
        delta: mean(cell) − mean(baseline) in metric units (paired: mean of the pair differences).
        ci_low, ci_high: the (1 − α) t-interval of delta; nan where p_value is nan.
        p_value: two-sided Welch / paired p; nan when undefined (n < 2, or no variance at all).
        p_adj: p_value adjusted over the family (nan when p_value is nan).
        hedges_g: bias-corrected standardised delta (pooled SD; paired: d_z), nan below 2 df or at SD 0.
        mde: smallest |delta| detectable with power 0.8 at this n and SD, at the family's first-step level.
        seeds_needed: seeds per cell (ratio 1) to detect delta at that level; None unless undecided.
        verdict: "better", "worse", "equivalent" or "undecided".
        p_equivalence: TOST p for |delta| < min_effect; nan without min_effect or when undefined.
        in_family: whether p_value is one of the family_size p-values that were adjusted.
    """
    n: int
    n_base: int
    n_pairs: Optional[int]
    delta: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adj: float
    hedges_g: float
    mde: float
    seeds_needed: Optional[int]
    verdict: str
    p_equivalence: float
    in_family: bool


@dataclass(frozen=True)
class FamilyResult:
    """All comparisons of one table against its baseline.

    Args:
        comparisons: cell label → CellComparison, in the order given; empty without a baseline.
        alpha, correction, test, mode, min_effect: the arguments used.
        family_size: m, the number of defined p-values that were adjusted together.
        level: per-comparison level of mde / seeds_needed (α / max(m, 1), or α for "none").
        excluded: cells whose p-value is undefined and so are not in the family.
        reason: why there are no comparisons (no baseline values), else None. Default None.
    """
    comparisons: Dict[str, CellComparison]
    alpha: float
    correction: str
    test: str
    mode: str
    min_effect: Optional[float]
    family_size: int
    level: float
    excluded: Tuple[str, ...]
    reason: Optional[str] = None

    def footnote(self) -> str:
        """One line for under the table, e.g. "Welch t-test vs baseline, Holm-adjusted over 3 cells, α = 0.05"."""
        if self.reason:
            return self.reason
        kind = "Welch t-test" if self.test == "welch" else "paired t-test on seed-matched runs"
        cells = f"{self.family_size} cell{'' if self.family_size == 1 else 's'}"
        text = f"{kind} vs baseline, {_ADJ_NAME[self.correction]} over {cells}, α = {self.alpha:g}"
        if self.excluded:
            text += (f"; {len(self.excluded)} cell(s) without a p-value (n < 2 or no variance): "
                     f"{', '.join(self.excluded)}")
        if self.min_effect is not None:
            text += f"; equivalent = TOST within ±{self.min_effect:g} at α"
        return text + f"; MDE and seeds at power {POWER:g}, level {self.level:.3g}"

    def to_frame(self) -> pd.DataFrame:
        """One row per compared cell (index: the cell label), the CellComparison fields as columns."""
        return pd.DataFrame.from_dict({k: asdict(v) for k, v in self.comparisons.items()}, orient="index")


def _arm(name: str, values: Any, seeds: Any, paired: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    vals = finite_values(name, values)
    if not paired:
        return vals[~np.isnan(vals)], None
    if seeds is None:
        raise ValueError(f"test='paired' needs the seeds of {name}; got None")
    sds = np.asarray(seeds)
    if sds.shape != vals.shape:
        raise ValueError(f"seeds of {name} must match its values one to one; got {sds.shape} for {vals.shape}")
    keep = ~np.isnan(vals)
    if len(np.unique(sds[keep])) != keep.sum():
        raise ValueError(f"seeds of {name} must be unique; got {sds.tolist()!r}")
    return vals[keep], sds[keep]


def _welch(x, y, alpha, min_effect) -> dict:
    out = dict(delta=x.mean() - y.mean() if x.size and y.size else np.nan, n_pairs=None, df=x.size + y.size - 2,
               sd=np.nan, ci=(np.nan, np.nan), p=np.nan, p_eq=np.nan)
    if out["df"] >= 1 and x.size and y.size:
        var = lambda a: a.var(ddof=1) if a.size > 1 and np.ptp(a) > 0 else 0.0   # ptp: 0.1·3/3 is not 0.1
        out["sd"] = math.sqrt(((x.size - 1) * var(x) + (y.size - 1) * var(y)) / out["df"])
    if x.size >= 2 and y.size >= 2 and (np.ptp(x) > 0 or np.ptp(y) > 0):   # both constant: Welch df is 0/0
        with quiet():
            r = stats.ttest_ind(x, y, equal_var=False)
            out.update(p=float(r.pvalue), ci=tuple(map(float, r.confidence_interval(1 - alpha))))
            if min_effect is not None:
                out["p_eq"] = float(ttost_ind(x, y, -min_effect, min_effect, usevar="unequal")[0])
    return out


def _paired(x, sx, y, sy, alpha, min_effect) -> dict:
    common = np.intersect1d(sx, sy)               # pairs on the seeds both arms finished
    take = lambda v, s: v[np.argsort(s)][np.searchsorted(np.sort(s), common)]
    a, b = take(x, sx), take(y, sy)
    d = a - b
    out = dict(delta=d.mean() if d.size else np.nan, n_pairs=int(d.size), df=d.size - 1,
               sd=(d.std(ddof=1) if np.ptp(d) > 0 else 0.0) if d.size > 1 else np.nan,
               ci=(np.nan, np.nan), p=np.nan, p_eq=np.nan)
    if d.size >= 2 and np.ptp(d) > 0:             # constant differences: the t statistic is ±inf or 0/0
        with quiet():
            r = stats.ttest_rel(a, b)
            out.update(p=float(r.pvalue), ci=tuple(map(float, r.confidence_interval(1 - alpha))))
            if min_effect is not None:
                out["p_eq"] = float(ttost_paired(a, b, -min_effect, min_effect)[0])
    return out


def _finish(r: dict, n: int, n_base: int, p_adj: float, level: float, alpha: float, mode: str) -> CellComparison:
    delta, sd, paired = r["delta"], r["sd"], r["n_pairs"] is not None
    verdict = "undecided"
    if np.isfinite(p_adj) and p_adj < alpha:
        verdict = "better" if (delta > 0) == (mode == "max") else "worse"
    elif np.isfinite(r["p_eq"]) and r["p_eq"] < alpha:
        verdict = "equivalent"
    usable_sd = bool(np.isfinite(sd) and sd > 0)
    # J = 1 − 3/(4·df − 1) with df = n1 + n2 − 2 (paired: n − 1); J is 0 at 1 df, where d has no finite mean
    g = (1 - 3 / (4 * r["df"] - 1)) * delta / sd if usable_sd and r["df"] >= 2 else np.nan
    in_family = bool(np.isfinite(r["p"]))
    test = "paired" if paired else "welch"
    mde = _mde_d(r["n_pairs"] if paired else n, n_base, level, test) * sd if in_family else np.nan
    seeds = (_seeds_for(abs(delta) / sd, level, test)
             if verdict == "undecided" and usable_sd and np.isfinite(delta) and delta != 0 else None)
    return CellComparison(n=n, n_base=n_base, n_pairs=r["n_pairs"], delta=float(delta), ci_low=r["ci"][0],
                          ci_high=r["ci"][1], p_value=r["p"], p_adj=p_adj, hedges_g=float(g), mde=float(mde),
                          seeds_needed=seeds, verdict=verdict, p_equivalence=r["p_eq"], in_family=in_family)


def compare_to_baseline(cells: Mapping[str, Any], baseline: Any, *, mode: str = "max", alpha: float = 0.05,
                        correction: str = "holm", test: str = "welch", min_effect: Optional[float] = None,
                        seeds: Optional[Mapping[str, Any]] = None, baseline_seeds: Any = None) -> FamilyResult:
    """Every non-baseline cell against the baseline: delta, CI, p, adjusted p, g, MDE, seeds, verdict.

    ``cells`` maps a label to the metric values of its FINISHED runs (NaN dropped); ``baseline`` holds the
    baseline cell's values, or None. For test="paired", ``seeds[label]`` and ``baseline_seeds`` give each
    value's seed and pairs are formed on the seeds both arms have. Defaults: mode "max", alpha 0.05,
    correction "holm", test "welch", min_effect None (no equivalence verdict).
    """
    choice_arg("mode", mode, ("max", "min"))
    alpha = unit_arg("alpha", alpha)
    choice_arg("correction", correction, tuple(_METHOD))
    paired = choice_arg("test", test, ("welch", "paired")) == "paired"
    if min_effect is not None and (isinstance(min_effect, bool) or not isinstance(min_effect, (int, float))
                                   or not math.isfinite(min_effect) or min_effect <= 0):
        raise ValueError(f"min_effect must be None or a finite number > 0; got {min_effect!r}")
    if not isinstance(cells, Mapping):
        raise ValueError(f"cells must be a mapping label -> values; got {type(cells).__name__}")
    if paired and not isinstance(seeds, Mapping):
        raise ValueError(f"seeds must map each cell label to its seeds for test='paired'; got {seeds!r}")
    meta = dict(alpha=alpha, correction=correction, test=test, mode=mode, min_effect=min_effect)
    base, base_seeds = _arm("baseline", [] if baseline is None else baseline, baseline_seeds, paired)
    if base.size == 0:
        return FamilyResult({}, **meta, family_size=0, level=np.nan, excluded=(),
                            reason="no baseline values (no FINISHED baseline run): no comparisons")
    raw, sizes = {}, {}
    for label, values in cells.items():
        x, sx = _arm(f"cells[{label!r}]", values, seeds.get(label) if paired else None, paired)
        raw[label] = (_paired(x, sx, base, base_seeds, alpha, min_effect) if paired
                      else _welch(x, base, alpha, min_effect))
        sizes[label] = x.size
    family = [k for k, r in raw.items() if np.isfinite(r["p"])]
    p = np.array([raw[k]["p"] for k in family])
    adj = p if correction == "none" or not family else multipletests(p, alpha, method=_METHOD[correction])[1]
    p_adj = dict(zip(family, map(float, adj)))
    level = alpha if correction == "none" else alpha / max(len(family), 1)   # Bonferroni's, Holm's / BH's first step
    comparisons = {k: _finish(r, sizes[k], base.size, p_adj.get(k, np.nan), level, alpha, mode)
                   for k, r in raw.items()}
    return FamilyResult(comparisons, **meta, family_size=len(family), level=level,
                        excluded=tuple(k for k in raw if k not in p_adj))
