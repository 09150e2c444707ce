"""The factorial ANOVA of a complete grid of two or more scientific axes: main effects and interactions
under the ablation table.

Source: OLS + type-II ANOVA (``statsmodels.formula.api.ols``, ``anova_lm``); this module only builds the
formula from the grid's axes, refuses grids it cannot analyse with a reason, and adds partial eta squared.
Pure: a frame in, a frozen dataclass out.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import product
from typing import Optional, Sequence, Tuple

import pandas as pd


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
    # imported only for a grid that has an ANOVA (~0.3 s): `ablate table` of any other grid never loads them
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

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
