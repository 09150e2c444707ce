"""Fixed-design comparisons of every cell of a table with its baseline cell: the interval the verdict was decided
with, the multiplicity-adjusted p, equivalence under the same family-wise control, effect size, MDE and the seeds
a decision would need.

Methods and sources (how to read them: docs/statistics.md):
- Welch t-test and its Welch–Satterthwaite interval (the formulas of ``scipy.stats.ttest_ind(equal_var=False)``),
  or the paired t-test on seed-matched runs (``ttest_rel``); ``_tstat`` writes them out so that no input gives
  NaN or an exception.
- Multiplicity over the cells of one table: Holm / Bonferroni / Benjamini–Hochberg
  (``statsmodels.stats.multitest.multipletests``), or ``dunnett``, a max-t step-down over the shared baseline
  calibrated for Welch (``_manytoone``; Hasler & Hothorn 2008).
- The interval printed is the one the verdict was decided with: the cell's t interval at the level its test used
  in the procedure (Holm: α/(m − j) at its step; BH: Rα/m, Benjamini & Yekutieli 2005; Bonferroni: α/m;
  dunnett: the max-t critical value of its step). It excludes 0 exactly when the verdict is better/worse. Holm's
  and the step-down max-t's intervals match their decisions but are not simultaneous (Strassburger & Bretz 2008);
  Bonferroni's and single-step max-t's are. The unadjusted (1 − α) interval is kept beside it.
- Equivalence: TOST (Schuirmann 1987) within ±min_effect, its p adjusted over the table's cells by the same
  correction (Holm for dunnett): equivalence claims have the family-wise (BH: false-discovery) control of
  better/worse claims. "equivalent" ⇔ the (1 − 2λ) interval lies inside ±min_effect, λ the cell's adjusted level.
- Hedges' g with J = 1 − 3/(4·df − 1) (Hedges & Olkin 1985); paired: the bias-corrected d_z. Power, MDE and
  seeds: ``_power``. Seeds needed are planned from min_effect when it is set, else from the observed Δ, labelled,
  with the range its interval allows.

Pure: arrays in, frozen dataclasses out; nothing here imports ray, tasks or components.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
import pandas as pd
from scipy import special, stats
from statsmodels.stats.multitest import multipletests

from ._checks import choice_arg, finite_values, unit_arg
from ._manytoone import correlation_paired, maxt_stepdown, welch_corr
from ._power import POWER, _seeds_for, mde_sd
from ._tstat import TStat, pair_up, paired, welch

CORRECTIONS = ("holm", "bonferroni", "bh", "none", "dunnett")
_METHOD = {"holm": "holm", "bonferroni": "bonferroni", "bh": "fdr_bh", "none": None, "dunnett": "holm"}
_ADJ_NAME = {"holm": "Holm-adjusted", "bonferroni": "Bonferroni-adjusted", "bh": "Benjamini–Hochberg-adjusted",
             "none": "unadjusted", "dunnett": "max-t (Dunnett, Welch) step-down-adjusted"}
_CI_NAME = {"holm": "at each cell's Holm step level (matches its verdict; not simultaneous)",
            "bonferroni": "simultaneous (Bonferroni, level α/m)",
            "bh": "at level Rα/m (Benjamini–Yekutieli false-coverage intervals)",
            "none": "unadjusted",
            "dunnett": "at each cell's max-t step critical value (matches its verdict; not simultaneous)"}


@dataclass(frozen=True)
class CellComparison:
    """One non-baseline cell against the baseline cell.

    Args:
        n, n_base: finite values in the cell and in the baseline (NaN and ±inf dropped, as failed runs).
        n_pairs: seed-matched pairs used by the paired test (None for Welch).
        delta: mean(cell) − mean(baseline) in metric units (paired: mean of the pair differences); nan only when
            the cell has no value.
        ci_low, ci_high: the interval the verdict was decided with, at confidence ``ci_level`` (the directional
            level; for "equivalent", the 1 − 2λ equivalence interval); (−inf, inf) when no test is defined.
        p_value: two-sided Welch / paired p; 1.0 when no test is defined (n < 2, or no variance at all).
        p_adj: p_value adjusted over the family (1.0 outside it).
        hedges_g: bias-corrected standardised delta (pooled SD; paired: d_z); ±inf at SD 0, nan below 2 df.
        mde: smallest |delta| detectable with power 0.8 at this n and SD at the family's planning level (inf when
            no test is defined).
        seeds_needed: seeds per cell (ratio 1) for an undecided cell to reach a decision (see seeds_basis); None
            when decided, or when no finite number would do.
        verdict: "better", "worse", "equivalent" or "undecided".
        p_equivalence: TOST p for |delta| < min_effect (1.0 without min_effect or without a test).
        in_family: whether p_value is one of the family_size p-values that were adjusted.
        ci_level: confidence of ci_low / ci_high. ci_low_unadj, ci_high_unadj: the unadjusted (1 − α) interval.
        p_eq_adj: p_equivalence adjusted over the family (the equivalence verdict's p).
        seeds_basis: "min_effect" (to detect ±min_effect at the SD seen) or "observed" (to detect the observed
            delta; a noisy planning number), "" when no seeds are given.
        seeds_low, seeds_high: the range of seeds_needed over the (1 − α) interval of the SD (basis min_effect) or
            of delta (basis observed); seeds_high None = unbounded.
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
    ci_level: float = 1.0
    ci_low_unadj: float = -math.inf
    ci_high_unadj: float = math.inf
    p_eq_adj: float = 1.0
    seeds_basis: str = ""
    seeds_low: Optional[int] = None
    seeds_high: Optional[int] = None


@dataclass(frozen=True)
class FamilyResult:
    """All comparisons of one table against its baseline.

    Args:
        comparisons: cell label → CellComparison, in the order given; empty without a baseline.
        alpha, correction, test, mode, min_effect: the arguments used.
        family_size: m, the number of defined p-values that were adjusted together.
        level: per-comparison planning level of mde / seeds_needed (α / max(m, 1), or α for "none").
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
        text += f"; intervals {_CI_NAME[self.correction]}"
        if self.excluded:
            text += (f"; {len(self.excluded)} cell(s) without a test (n < 2 or no variance): "
                     f"{', '.join(self.excluded)}")
        if self.min_effect is not None:
            eq = _ADJ_NAME["holm" if self.correction == "dunnett" else self.correction]
            text += (f"; equivalent = TOST within ±{self.min_effect:g}, {eq} over the same cells "
                     f"(the same family-wise control as better/worse)")
            seeds = f"seeds needed to detect ±{self.min_effect:g} at the seed SD seen"
        else:
            seeds = "seeds needed to detect the observed Δ (a noisy planning number; range over its interval)"
        return text + f"; MDE and {seeds}, at power {POWER:g}, level {self.level:.3g}"

    def to_frame(self) -> pd.DataFrame:
        """One row per compared cell (index: the cell label), the CellComparison fields as columns."""
        return pd.DataFrame.from_dict({k: asdict(v) for k, v in self.comparisons.items()}, orient="index")


def _arm(name: str, values: Any, seeds: Any, paired_: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    vals = finite_values(name, values)
    keep = np.isfinite(vals)
    if not paired_:
        return vals[keep], None
    if seeds is None:
        raise ValueError(f"test='paired' needs the seeds of {name}; got None")
    sds = np.asarray(seeds)
    if sds.shape != vals.shape:
        raise ValueError(f"seeds of {name} must match its values one to one; got {sds.shape} for {vals.shape}")
    if len(np.unique(sds[keep])) != keep.sum():
        raise ValueError(f"seeds of {name} must be unique; got {sds.tolist()!r}")
    return vals[keep], sds[keep]


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p, max_{i<=j} (m − i)·p_(i) capped at 1: statsmodels' multipletests(method="holm") computes
    exactly this but runs gc.collect() on every call (0.1–0.4 s on a loaded heap, half of a table's time)."""
    order = np.argsort(p, kind="stable")
    adj = np.empty_like(p, dtype=float)
    adj[order] = np.minimum(np.maximum.accumulate(p[order] * np.arange(p.size, 0, -1)), 1.0)
    return adj


def _levels_stepdown(p: np.ndarray, alpha: float, method: str) -> Tuple[np.ndarray, np.ndarray]:
    """Adjusted p (statsmodels) and each hypothesis' decision level: the level its test used in the procedure,
    so that "p < level" is its rejection and the (1 − level) interval matches it."""
    m = p.size
    if m == 0:
        return p, p
    if method == "none":
        return p.copy(), np.full(m, alpha)
    adj = _holm(p) if method == "holm" else multipletests(p, alpha, method=_METHOD[method])[1]
    rej = adj < alpha
    if method == "bonferroni":
        return adj, np.full(m, alpha / m)
    if method == "bh":
        return adj, np.full(m, max(int(rej.sum()), 1) * alpha / m)
    order = np.argsort(p, kind="stable")                  # Holm: rank j tested at α/(m − j); the rest at α/(m − r)
    level = np.empty(m)
    r = int(rej.sum())
    for j, i in enumerate(order):
        level[i] = alpha / (m - j) if rej[i] else alpha / (m - r)
    return adj, level


def _dunnett(st: Dict[str, TStat], family, alpha: float, test: str, aligned) -> Tuple[np.ndarray, np.ndarray]:
    """(p_adj, decision level) by the max-t step-down; the level is the two-sided t level of each cell's crit."""
    t = np.array([st[k].t for k in family])
    df = np.array([st[k].df for k in family])
    if test == "paired":
        corr = correlation_paired([aligned[k] for k in family])
    else:
        corr = welch_corr(np.array([aligned["__base_se__"] / st[k].se for k in family]))
    adj, crit = maxt_stepdown(t, df, corr, alpha)
    return adj, np.array([2 * special.stdtr(d, -c) if math.isfinite(c) else 0.0 for d, c in zip(df, crit)])


def _seeds(st: TStat, n_ci: Tuple[float, float], level: float, alpha: float, test: str,
           min_effect: Optional[float]):
    """(seeds_needed, basis, low, high) of an undecided cell; see CellComparison."""
    sd = st.sd
    if not (math.isfinite(sd) and sd > 0):
        return None, "", None, None
    if min_effect is not None:
        need, low, high = _seeds_for(min_effect / sd, level, test), None, None
        if st.sd_df >= 1:        # the SD's (1 − α) chi-square interval: fewer seeds at its low end, more at its high
            q = stats.chi2.ppf([1 - alpha / 2, alpha / 2], st.sd_df)
            low = _seeds_for(min_effect / (sd * math.sqrt(st.sd_df / q[0])), level, test)
            high = _seeds_for(min_effect / (sd * math.sqrt(st.sd_df / q[1])), level, test)
        return need, "min_effect", low, high
    if not (math.isfinite(st.delta) and st.delta != 0):
        return None, "", None, None
    need = _seeds_for(abs(st.delta) / sd, level, test)
    lo, hi = n_ci
    far = max(abs(lo), abs(hi)) if math.isfinite(lo) and math.isfinite(hi) else math.inf
    near = 0.0 if not (math.isfinite(lo) and math.isfinite(hi)) or lo <= 0 <= hi else min(abs(lo), abs(hi))
    low = _seeds_for(far / sd, level, test) if math.isfinite(far) else 2
    return need, "observed", low, _seeds_for(near / sd, level, test) if near > 0 else None


def _hedges(st: TStat) -> float:
    # J = 1 − 3/(4·df − 1) with df = n1 + n2 − 2 (paired: n − 1); J is 0 at 1 df, where d has no finite mean
    if not math.isfinite(st.delta) or st.sd_df < 2 or not math.isfinite(st.sd):
        return math.nan
    if st.sd == 0:
        return 0.0 if st.delta == 0 else math.copysign(math.inf, st.delta)
    return (1 - 3 / (4 * st.sd_df - 1)) * st.delta / st.sd


def compare_to_baseline(cells: Mapping[str, Any], baseline: Any, *, mode: str = "max", alpha: float = 0.05,
                        correction: str = "holm", test: str = "welch", min_effect: Optional[float] = None,
                        seeds: Optional[Mapping[str, Any]] = None, baseline_seeds: Any = None) -> FamilyResult:
    """Every non-baseline cell against the baseline: delta, decision interval, p, adjusted p, g, MDE, seeds, verdict.

    ``cells`` maps a label to the metric values of its FINISHED runs (NaN and ±inf dropped); ``baseline`` holds
    the baseline cell's values, or None. For test="paired", ``seeds[label]`` and ``baseline_seeds`` give each
    value's seed and pairs are formed on the seeds both arms have. Defaults: mode "max", alpha 0.05,
    correction "holm" (or bonferroni, bh, none, dunnett), test "welch", min_effect None (no equivalence verdict;
    seeds needed from the observed delta).
    """
    choice_arg("mode", mode, ("max", "min"))
    alpha = unit_arg("alpha", alpha)
    choice_arg("correction", correction, CORRECTIONS)
    is_paired = choice_arg("test", test, ("welch", "paired")) == "paired"
    if min_effect is not None and (isinstance(min_effect, bool) or not isinstance(min_effect, (int, float))
                                   or not math.isfinite(min_effect) or min_effect <= 0):
        raise ValueError(f"min_effect must be None or a finite number > 0; got {min_effect!r}")
    if not isinstance(cells, Mapping):
        raise ValueError(f"cells must be a mapping label -> values; got {type(cells).__name__}")
    if is_paired and not isinstance(seeds, Mapping):
        raise ValueError(f"seeds must map each cell label to its seeds for test='paired'; got {seeds!r}")
    meta = dict(alpha=alpha, correction=correction, test=test, mode=mode, min_effect=min_effect)
    base, base_seeds = _arm("baseline", [] if baseline is None else baseline, baseline_seeds, is_paired)
    if base.size == 0:
        return FamilyResult({}, **meta, family_size=0, level=alpha, excluded=(),
                            reason="no baseline values (no FINISHED baseline run): no comparisons")
    st, sizes, aligned = {}, {}, {}
    all_seeds = np.unique(base_seeds) if is_paired else None
    for label, values in cells.items():
        x, sx = _arm(f"cells[{label!r}]", values, seeds.get(label) if is_paired else None, is_paired)
        sizes[label] = x.size
        if is_paired:
            a, b = pair_up(x, sx, base, base_seeds)
            st[label] = paired(a, b)
            d = dict(zip(np.intersect1d(sx, base_seeds).tolist(), (a - b).tolist()))
            aligned[label] = np.array([d.get(s, np.nan) for s in all_seeds.tolist()])
        else:
            st[label] = welch(x, base)
    if not is_paired:
        scale = max(float(np.abs(base).max()), 1e-300)
        aligned["__base_se__"] = (float((base / scale).std(ddof=1)) * scale / math.sqrt(base.size)
                                  if base.size > 1 and np.ptp(base) > 0 else 0.0)
    family = [k for k, s in st.items() if s.testable]
    m = len(family)
    p = np.array([st[k].p for k in family])
    if correction == "dunnett" and m:
        adj, lev = _dunnett(st, family, alpha, test, aligned)
    else:
        adj, lev = _levels_stepdown(p, alpha, "holm" if correction == "dunnett" else correction)
    eq_method = "holm" if correction == "dunnett" else correction
    p_eq = np.array([st[k].p_equivalence(min_effect) for k in family])
    eq_adj, eq_lev = _levels_stepdown(p_eq, alpha, eq_method) if min_effect is not None else (p_eq, p_eq * 0)
    level = alpha if correction == "none" else alpha / max(m, 1)
    got = {k: dict(p_adj=float(a), lev=float(lv), p_eq=float(e), eq_adj=float(ea), eq_lev=float(el))
           for k, a, lv, e, ea, el in zip(family, adj, lev, p_eq, eq_adj, eq_lev)}
    comparisons = {k: _finish(st[k], sizes[k], base.size, got.get(k), alpha, level, mode, min_effect, test)
                   for k in st}
    return FamilyResult(comparisons, **meta, family_size=m, level=level,
                        excluded=tuple(k for k in st if k not in got))


def _finish(s: TStat, n: int, n_base: int, fam: Optional[dict], alpha: float, level: float, mode: str,
            min_effect: Optional[float], test: str) -> CellComparison:
    fam = fam or dict(p_adj=1.0, lev=0.0, p_eq=1.0, eq_adj=1.0, eq_lev=0.0)
    verdict, ci, ci_level = "undecided", s.interval(fam["lev"]), 1 - fam["lev"]
    if fam["p_adj"] < alpha:
        verdict = "better" if (s.delta > 0) == (mode == "max") else "worse"
    elif min_effect is not None and fam["eq_adj"] < alpha:
        verdict, ci, ci_level = "equivalent", s.interval(2 * fam["eq_lev"]), 1 - 2 * fam["eq_lev"]
    unadj = s.interval(alpha)
    need, basis, low, high = (_seeds(s, unadj, level, alpha, test, min_effect) if verdict == "undecided"
                              else (None, "", None, None))
    n_mde = s.n_pairs if s.n_pairs is not None else n
    mde = mde_sd(n_mde, n_base, level, test) * s.sd if s.testable and s.sd > 0 else math.inf
    return CellComparison(n=n, n_base=n_base, n_pairs=s.n_pairs, delta=float(s.delta), ci_low=float(ci[0]),
                          ci_high=float(ci[1]), p_value=s.p, p_adj=fam["p_adj"], hedges_g=float(_hedges(s)),
                          mde=float(mde), seeds_needed=need, verdict=verdict, p_equivalence=fam["p_eq"] if
                          s.testable else 1.0, in_family=s.testable, ci_level=float(ci_level),
                          ci_low_unadj=float(unadj[0]), ci_high_unadj=float(unadj[1]), p_eq_adj=fam["eq_adj"],
                          seeds_basis=basis, seeds_low=low, seeds_high=high)
