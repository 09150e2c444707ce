"""The statistics behind every table, plot and verdict: pure functions, arrays in, result objects out
(scipy.stats' layout: private modules, this curated namespace).

Fixed designs (``_fixed``)
    compare_to_baseline → FamilyResult of CellComparison: Welch or paired t, Holm / Bonferroni / BH, TOST,
    Hedges' g, MDE and seeds needed; mde_table.
Group-sequential designs, i.e. adaptive seeds (``_sequential``, ``_replay``)
    plan / plan_for → Design; decide → LookDecision; sequential_verdicts (vectorised); conditional_power;
    spend; replay_looks: a launch's looks replayed from its seeds' values (the runner and the table share it).
Grids and suites (``_anova``, ``_suite``)
    factorial_anova → AnovaResult; probability_of_improvement → ImprovementResult; average_ranks → RankResult.
Intervals of a mean (``_intervals``)
    t_interval, t_ci, t_half_widths: the error bars of every figure.

``python -m analysis.stats`` prints the MDE tables of docs/statistics.md; ``python -m analysis.stats.simulate``
the Monte Carlo tables of the adaptive designs.  Nothing here imports MLflow, Ray, torch or plotting
(tests/analysis/test_stats_package.py), and names load on first use, so importing the package costs
nothing until a statistic is computed (scipy and statsmodels take about a second).
"""
from __future__ import annotations

import importlib
from typing import Any, Dict

# public name -> private module that defines it
_HOME: Dict[str, str] = {
    **dict.fromkeys(("compare_to_baseline", "CellComparison", "FamilyResult", "CORRECTIONS"), "_fixed"),
    **dict.fromkeys(("mde_table", "POWER", "seeds_for", "mde_sd"), "_power"),
    **dict.fromkeys(("plan", "plan_for", "Design", "decide", "LookDecision", "sequential_verdicts", "Verdicts",
                     "conditional_power", "spend", "VERDICTS", "RATIOS"), "_sequential"),
    "replay_looks": "_replay",
    **dict.fromkeys(("factorial_anova", "AnovaResult"), "_anova"),
    **dict.fromkeys(("probability_of_improvement", "ImprovementResult", "average_ranks", "RankResult"), "_suite"),
    **dict.fromkeys(("t_interval", "t_ci", "t_half_widths"), "_intervals"),
}
__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'analysis.stats' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
