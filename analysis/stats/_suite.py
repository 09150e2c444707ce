"""Statistics of a suite: across the studies of a suite that share cell labels,
the probability of improvement and average ranks with a Friedman test and
pairwise Wilcoxon signed-rank tests with Holm's correction (the
critical-difference picture is drawn from them).

Sources: Demšar 2006 (JMLR 7) for average ranks and the Friedman test; Benavoli,
Corani & Mangili 2016 (JMLR 17, "Should we really use post-hoc tests based on
mean-ranks?") for pairwise Wilcoxon signed-rank tests + Holm instead of the
Nemenyi post-hoc, whose verdict on a pair depends on the other cells in the
pool (scipy.stats.wilcoxon, statsmodels' multipletests); Agarwal et al. 2021 ("Deep RL at the edge of the statistical precipice") for the
probability of improvement U / (n·m) with a stratified bootstrap, as rliable
defines it (rliable does not import with pandas 3 / arch 7, hence the few lines
here).  Pure: arrays and frames in, frozen dataclasses out.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

from ._checks import choice_arg, finite_values, unit_arg


@dataclass(frozen=True)
class ImprovementResult:
    """Average probability of improvement of a cell over its baseline across studies.

    Args:
        estimate: mean over studies of P(X_cell > X_base) + ½ P(tie) ("min": lower is the improvement).
        ci_low, ci_high: stratified percentile-bootstrap interval at ``confidence``.
        per_study: the per-study probabilities. n_boot, confidence, mode: the arguments used.
    """
    estimate: float
    ci_low: float
    ci_high: float
    per_study: Tuple[float, ...]
    n_boot: int
    confidence: float
    mode: str


def _poi(x: np.ndarray, y: np.ndarray, mode: str) -> np.ndarray:
    # U of the first sample = #(x > y) + ½ #(x = y) (scipy), over the last axis, so resamples go at once
    p = stats.mannwhitneyu(x, y, axis=-1, method="asymptotic").statistic / (x.shape[-1] * y.shape[-1])
    return p if mode == "max" else 1.0 - p


def probability_of_improvement(study_cells: Sequence[Any], study_bases: Sequence[Any], mode: str = "max",
                               n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> ImprovementResult:
    """rliable's average probability of improvement with its stratified (per study, per arm) bootstrap.

    Args: study_cells / study_bases (one array of run values per study, same order), mode ("max"), n_boot
    (2000), confidence (0.95), seed (0, for numpy.random.default_rng). Runs are resampled with replacement
    within each study and arm, the average recomputed, and the percentile interval taken.
    """
    choice_arg("mode", mode, ("max", "min"))
    confidence = unit_arg("confidence", confidence)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be an integer ≥ 1; got {n_boot!r}")
    if isinstance(study_cells, (str, bytes)) or len(study_cells) != len(study_bases) or not len(study_cells):
        raise ValueError(f"study_cells and study_bases must be equally long, non-empty sequences; "
                         f"got {len(study_cells)} and {len(study_bases)}")
    arms = []
    for i, (c, b) in enumerate(zip(study_cells, study_bases)):
        x, y = (finite_values(f"{name}[{i}]", v) for name, v in (("study_cells", c), ("study_bases", b)))
        x, y = x[~np.isnan(x)], y[~np.isnan(y)]
        if x.size and y.size:                 # a study whose cell or baseline has no finished run says nothing
            arms.append((x, y))
    if not arms:
        return ImprovementResult(0.5, 0.0, 1.0, (), int(n_boot), confidence, mode)
    rng = np.random.default_rng(seed)
    per = np.array([float(_poi(x, y, mode)) for x, y in arms])
    boot = np.zeros(n_boot)
    for x, y in arms:
        boot += _poi(x[rng.integers(0, x.size, (n_boot, x.size))], y[rng.integers(0, y.size, (n_boot, y.size))], mode)
    lo, hi = np.quantile(boot / len(arms), [(1 - confidence) / 2, (1 + confidence) / 2])
    return ImprovementResult(float(per.mean()), float(lo), float(hi), tuple(per), int(n_boot), confidence, mode)


@dataclass(frozen=True)
class RankResult:
    """Average ranks of cells across studies (Demšar 2006).

    Args:
        ranks: studies × cells, rank 1 = best in that study, ties averaged.
        mean_ranks: mean rank per cell, best first.
        statistic, p_value: Friedman chi-square test; nan when not run.
        reason: why there is no Friedman test, else None.
        autorank: always None (kept for callers of the Nemenyi version; the pairwise tests replace it).
        dropped: studies left out because a cell has no value there.
        pairwise: one row per pair of cells (a, b): wilcoxon (the signed-rank statistic), p_value (two-sided,
            exact for small suites; 1.0 when every study ties the pair), p_adj (Holm over all pairs), differ
            (p_adj < alpha); empty with fewer than 2 studies.
        alpha: the family level of ``differ``.
    """
    ranks: pd.DataFrame
    mean_ranks: pd.Series
    statistic: float
    p_value: float
    reason: Optional[str]
    autorank: Any
    dropped: Tuple[Any, ...]
    pairwise: Optional[pd.DataFrame] = None
    alpha: float = 0.05


def pairwise_wilcoxon(values: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Wilcoxon signed-rank test of every pair of columns over the rows (studies), Holm-adjusted over the pairs
    (Benavoli et al. 2016). Ties within a study are dropped (Wilcoxon's zero method); a pair tied everywhere gets
    p = 1. Columns: a, b, wilcoxon, p_value, p_adj, differ."""
    from statsmodels.stats.multitest import multipletests

    cols, rows = list(values.columns), []
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            d = (values[a] - values[b]).to_numpy(float)
            d = d[np.isfinite(d)]
            stat, p = np.nan, 1.0
            if d.size and np.any(d != 0):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = stats.wilcoxon(d)
                stat, p = float(r.statistic), float(r.pvalue) if np.isfinite(r.pvalue) else 1.0
            rows.append(dict(a=a, b=b, wilcoxon=stat, p_value=p))
    out = pd.DataFrame(rows, columns=["a", "b", "wilcoxon", "p_value"])
    out["p_adj"] = multipletests(out["p_value"], alpha, method="holm")[1] if len(out) else []
    out["differ"] = out["p_adj"] < alpha
    return out


def average_ranks(means: pd.DataFrame, mode: str = "max", alpha: float = 0.05) -> RankResult:
    """Rank cells within each study, average, Friedman-test, and test every pair of cells (Wilcoxon signed-rank
    over the studies, Holm over the pairs).

    Args: means (rows = studies, columns = cells, one summary per cell and study), mode ("max": higher is
    better), alpha (0.05, the pairs' family level). Studies with a missing cell are dropped.
    """
    choice_arg("mode", mode, ("max", "min"))
    alpha = unit_arg("alpha", alpha)
    if not isinstance(means, pd.DataFrame) or means.shape[1] < 2:
        raise ValueError(f"means must be a DataFrame with ≥ 2 cell columns; got {getattr(means, 'shape', means)!r}")
    try:
        values = means.astype(float)
    except (TypeError, ValueError):
        raise ValueError("means must hold numbers (one summary per study and cell)") from None
    values = values.where(np.isfinite(values.to_numpy()))       # ±inf: a diverged cell, missing like NaN
    keep = values.notna().all(axis=1)
    values = values[keep]
    ranks = pd.DataFrame(stats.rankdata(-values if mode == "max" else values, axis=1) if len(values) else
                         np.zeros(values.shape), index=values.index, columns=values.columns)
    stat = p = np.nan
    n, k = values.shape                                  # studies, cells
    tied = bool(n and (values.nunique(axis=1) == 1).all())
    reason = None
    if k < 3 or n < 2:
        reason = f"Friedman needs ≥ 3 cells and ≥ 2 complete studies; got {k} and {n}"
    elif tied:
        reason = "every study ties all cells: no ranking to test"
    else:
        stat, p = map(float, stats.friedmanchisquare(*values.to_numpy().T))
    signed = values if mode == "max" else -values
    pairs = pairwise_wilcoxon(signed, alpha) if n >= 2 else pairwise_wilcoxon(signed.iloc[:0], alpha)
    return RankResult(ranks, ranks.mean().sort_values(), stat, p, reason, None, tuple(means.index[~keep]), pairs,
                      alpha)
