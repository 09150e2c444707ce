"""Statistics of a suite: across the studies of a suite that share cell labels,
the probability of improvement and average ranks with a Friedman test /
critical-difference diagram.

Sources: Demšar 2006 (JMLR 7) for ranks, Friedman and Nemenyi via autorank; Agarwal et
al. 2021 ("Deep RL at the edge of the statistical precipice") for the
probability of improvement U / (n·m) with a stratified bootstrap, as rliable
defines it (rliable does not import with pandas 3 / arch 7, hence the few lines
here).  Pure: arrays and frames in, frozen dataclasses out.
"""
from __future__ import annotations

import contextlib
import io
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
        if not x.size or not y.size:
            raise ValueError(f"study {i} has no finite values in {'study_cells' if not x.size else 'study_bases'}")
        arms.append((x, y))
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
        reason: why there is no Friedman test (or why autorank was not run), else None.
        autorank: ``autorank.autorank`` result (Friedman + Nemenyi, for ``autorank.plot_stats``) or None.
        dropped: studies left out because a cell has no value there.
    """
    ranks: pd.DataFrame
    mean_ranks: pd.Series
    statistic: float
    p_value: float
    reason: Optional[str]
    autorank: Any
    dropped: Tuple[Any, ...]


def average_ranks(means: pd.DataFrame, mode: str = "max", alpha: float = 0.05) -> RankResult:
    """Rank cells within each study, average, Friedman-test; autorank when ≥ 5 studies and ≥ 2 cells.

    Args: means (rows = studies, columns = cells, one summary per cell and study), mode ("max": higher is
    better), alpha (0.05, autorank's family level). Studies with a missing cell are dropped (autorank needs
    no NaN). autorank runs with force_mode="nonparametric" so its diagram is the Friedman/Nemenyi one.
    """
    choice_arg("mode", mode, ("max", "min"))
    alpha = unit_arg("alpha", alpha)
    if not isinstance(means, pd.DataFrame) or means.shape[1] < 2:
        raise ValueError(f"means must be a DataFrame with ≥ 2 cell columns; got {getattr(means, 'shape', means)!r}")
    try:
        values = means.astype(float)
    except (TypeError, ValueError):
        raise ValueError("means must hold numbers (one summary per study and cell)") from None
    if np.isinf(values.to_numpy()).any():
        raise ValueError("means must be finite or NaN (a missing cell)")
    keep = values.notna().all(axis=1)
    values = values[keep]
    ranks = pd.DataFrame(stats.rankdata(-values if mode == "max" else values, axis=1),
                         index=values.index, columns=values.columns)
    stat = p = np.nan
    n, k = values.shape                                  # studies, cells
    tied = bool((values.nunique(axis=1) == 1).all())
    reason = None
    if k < 3 or n < 2:
        reason = f"Friedman needs ≥ 3 cells and ≥ 2 complete studies; got {k} and {n}"
    elif tied:
        reason = "every study ties all cells: no ranking to test"
    else:
        stat, p = map(float, stats.friedmanchisquare(*values.to_numpy().T))
    result = None
    if n >= 5 and not tied:
        import autorank as ar
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")   # autorank prints and warns about its own test choice
            result = ar.autorank(values, alpha=alpha, verbose=False, order="descending" if mode == "max" else
                                 "ascending", force_mode="nonparametric")
    elif reason is None:
        reason = f"autorank (critical-difference diagram) needs ≥ 5 complete studies; got {n}"
    return RankResult(ranks, ranks.mean().sort_values(), stat, p, reason, result, tuple(means.index[~keep]))

