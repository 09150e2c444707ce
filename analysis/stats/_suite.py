"""Statistics of a grid and of a suite: the factorial ANOVA of a complete grid,
and, across the studies of a suite that share cell labels, the probability of
improvement and average ranks with a Friedman test / critical-difference diagram.

Sources: OLS + type-II ANOVA (``statsmodels.formula.api.ols``, ``anova_lm``);
Demšar 2006 (JMLR 7) for ranks, Friedman and Nemenyi via autorank; Agarwal et
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
from itertools import product
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats

from .stats import choice_arg, finite_values, unit_arg


# ---------------------------------------------------------------- factorial grids
@dataclass(frozen=True)
class AnovaResult:
    """Type-II ANOVA of a complete factorial grid.

    Args:
        table: anova_lm's frame (rows: each axis, each interaction "a:b", Residual) plus ``eta_sq_partial``;
            None when the grid cannot be analysed.
        reason: plain-English reason when table is None, else None.
        axes: the axes analysed. formula: the model fitted (internal names x0, x1, ...), or None.
        n_obs: runs used (NaN responses dropped).
    """
    table: Optional[pd.DataFrame]
    reason: Optional[str]
    axes: Tuple[str, ...]
    formula: Optional[str]
    n_obs: int


def _grid_problem(data: pd.DataFrame, axes: Sequence[str]) -> Optional[str]:
    if len(axes) < 2:
        return f"a factorial ANOVA needs ≥ 2 axes; got {len(axes)}: compare cells to the baseline instead"
    absent = [a for a in axes if data[a].isna().any()]
    if absent:
        return f"incomplete grid: axis {', '.join(absent)} is absent in some runs (a conditional axis)"
    levels = [pd.unique(data[a]) for a in axes]
    single = [a for a, lv in zip(axes, levels) if len(lv) < 2]
    if single:
        return f"axis {', '.join(single)} has a single level: nothing to compare"
    counts = data.groupby(list(axes), sort=False).size()
    missing = [c for c in product(*levels) if c not in counts.index]
    if missing:
        shown = "; ".join(", ".join(f"{a}={v}" for a, v in zip(axes, c)) for c in missing[:3])
        return f"incomplete grid: {len(missing)} of {len(counts) + len(missing)} combinations have no run ({shown})"
    if counts.min() < 2:
        return f"too few replicates: a combination has {counts.min()} run; ≥ 2 per combination leave residual df"
    return None


def factorial_anova(df: pd.DataFrame, axes: Sequence[str], y: str) -> AnovaResult:
    """OLS ``y ~ C(a) * C(b) * ...`` and ``anova_lm(typ=2)`` over a complete grid with ≥ 2 runs per combination.

    Axis names may contain dots (``model.block_size``): columns are renamed to x0, x1, ... and levels coded
    as integers for the formula, and the table's rows carry the original names. Args: df (runs frame),
    axes (column names), y (numeric response column). Incomplete grids return table None and a reason.
    """
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"df must be a pandas DataFrame; got {type(df).__name__}")
    axes = tuple(axes)
    missing = [c for c in (*axes, y) if c not in df.columns]
    if missing or len(set(axes)) != len(axes) or y in axes:
        raise ValueError(f"axes and y must be distinct columns of df; missing {missing}, got axes={axes}, y={y!r}")
    if not pd.api.types.is_numeric_dtype(df[y]):
        raise ValueError(f"y must name a numeric column; {y!r} has dtype {df[y].dtype}")
    data = df.loc[df[y].notna(), [*axes, y]]
    problem = _grid_problem(data, axes)
    if problem is None and (data.groupby(list(axes))[y].nunique() == 1).all():
        problem = "no replicate variance: every combination's runs are identical, so F is undefined"
    if problem:
        return AnovaResult(None, problem, axes, None, len(data))
    coded = pd.DataFrame({f"x{i}": pd.factorize(data[a])[0] for i, a in enumerate(axes)})
    coded["y"] = data[y].to_numpy(float)
    formula = "y ~ " + " * ".join(f"C(x{i})" for i in range(len(axes)))
    table = anova_lm(ols(formula, coded).fit(), typ=2)
    names = {f"C(x{i})": a for i, a in enumerate(axes)}
    table.index = [":".join(names.get(t, t) for t in row.split(":")) for row in table.index]
    resid = table.loc["Residual", "sum_sq"]
    table["eta_sq_partial"] = (table["sum_sq"] / (table["sum_sq"] + resid)).where(table.index != "Residual")
    return AnovaResult(table, None, axes, formula, len(data))


# ---------------------------------------------------------------- suites: several studies (tasks)
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

