"""The evidence columns of an ablation table: every cell against the baseline cell, by the launch's design.

- Fixed seeds: ``analysis.stats.compare_to_baseline`` (Welch or paired t, its interval, Holm / BH over the
  table, Hedges' g, Welch-exact MDE and seeds needed, TOST verdicts; docs/statistics.md).
- Adaptive seeds (``seeds: {looks: [...]}``): ``analysis.sequential_table.replay`` over the design
  ``analysis.sequential.plan`` builds for the launch (Jennison & Turnbull 2000; docs/statistics.md, "Adaptive
  seeds"): the look each cell stopped at, its repeated CI, verdict and seeds needed.
- Complete factorial grids: ``analysis.suite_stats.factorial_anova`` (OLS, type-II ANOVA; seeds as replicates).

Pure: per-cell {seed: value} mappings in, plain frames and strings out (no store access).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import pandas as pd

from .stats import compare_to_baseline

EVIDENCE = ("delta", "ci_low", "ci_high", "p_value", "p_adj", "hedges_g", "mde", "seeds_needed", "verdict")
# beside them in the CSV: the interval's confidence, the unadjusted (1 − α) interval, the equivalence p the verdict
# used, and what the seeds needed were planned from, with their range
DETAIL = ("ci_level", "ci_low_unadj", "ci_high_unadj", "p_eq_adj", "seeds_basis", "seeds_low", "seeds_high")


def int_seeds(values: Mapping[Any, float]) -> bool:
    """Whether every key is a known integer seed ≥ 0 (pooled launches key their runs "launch:seed", runs
    without a recorded seed get negative keys)."""
    return all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 0 for s in values)


def fixed_evidence(values: Mapping[str, Mapping[Any, float]], baseline: str, analysis: Mapping[str, Any],
                   mode: str) -> Tuple[pd.DataFrame, str]:
    """Columns EVIDENCE (index: cell label) for every non-baseline cell with a value, and the footnote.

    Args: values (cell -> {seed: value}, FINISHED runs, NaN dropped; the baseline among them), baseline (its
    label), analysis (alpha, correction, test, min_effect), mode ("max"/"min"). A paired test needs integer
    seeds, one run per seed: pooled launches repeat seeds, so those tables fall back to Welch and say so.
    """
    test, note = analysis["test"], ""
    if test == "paired" and not all(int_seeds(v) for v in values.values()):
        test, note = "welch", "; paired test impossible (launches pooled, or seeds not recorded), Welch used"
    others = {c: v for c, v in values.items() if c != baseline and len(v)}
    base = values.get(baseline, {})
    res = compare_to_baseline({c: list(v.values()) for c, v in others.items()}, list(base.values()), mode=mode,
                              alpha=analysis["alpha"], correction=analysis["correction"], test=test,
                              min_effect=analysis["min_effect"],
                              seeds={c: list(v) for c, v in others.items()} if test == "paired" else None,
                              baseline_seeds=list(base) if test == "paired" else None)
    frame = res.to_frame() if res.comparisons else pd.DataFrame(columns=[*EVIDENCE, *DETAIL])
    return frame.reindex(columns=[*EVIDENCE, *DETAIL]), res.footnote() + note


MIN_SEEDS_FOR_R = 5      # below this a correlation over seeds says nothing (its SE is ~0.5 at 5 seeds)


def seed_correlation(values: Mapping[str, Mapping[Any, float]], baseline: str) -> Dict[str, Tuple[float, int]]:
    """Pearson r, over the seeds each cell shares with the baseline (integer seeds, >= MIN_SEEDS_FOR_R of them),
    of the cell's and the baseline's values: an estimate of ρ, the share of the run-to-run variance that seed i
    shares across cells, which a paired test gains from (docs/statistics.md, "How much seed correlation that
    needs"). Returns {cell: (r, shared seeds)}; cells without variance are left out."""
    base = values.get(baseline, {})
    out = {}
    for cell, v in values.items():
        shared = sorted(s for s in v if s in base) if cell != baseline and int_seeds(v) and int_seeds(base) else []
        if len(shared) < MIN_SEEDS_FOR_R:
            continue
        x, y = (np.array([d[s] for s in shared], float) for d in (v, base))
        if x.std() > 0 and y.std() > 0:
            out[cell] = (float(np.corrcoef(x, y)[0, 1]), len(shared))
    return out


def seed_correlation_note(values: Mapping[str, Mapping[Any, float]], baseline: str, test: str) -> List[str]:
    """One line under the table with the seed correlation (none with too few shared seeds): a paired design's
    premise, or, under Welch, what pairing would gain in the next sweep (never a reason to switch the test of
    this one after seeing it)."""
    got = seed_correlation(values, baseline)
    if not got:
        return []
    r, n = np.array([v[0] for v in got.values()]), sorted({v[1] for v in got.values()})
    seeds = f"{n[0]}" if len(n) == 1 else f"{n[0]}-{n[-1]}"
    text = (f"seed correlation with the baseline (Pearson r over {seeds} shared seeds): median {np.median(r):.2f}, "
            f"{r.min():.2f} to {r.max():.2f} over {len(r)} cell(s)")
    if test == "paired":
        return [text + "; pairing gains where r > 0 (at r near 0 it only costs degrees of freedom)"]
    if np.median(r) >= 0.3:
        return [text + "; a next sweep with analysis.test: paired would use it (choose the test before the data)"]
    return [text]


def look_reached(looks: Sequence[int], tagged: Sequence[Any], seeds: Sequence[int]) -> int:
    """The last look (0-based) the launch ran: the highest ``ablate.look`` tag, else the look the highest
    seed belongs to (seeds 0..looks[k]−1 make look k)."""
    tags = [int(t) for t in tagged if t is not None and t == t]
    if tags:
        return min(max(tags), len(looks) - 1)
    top = max(seeds, default=-1)
    return next((k for k, n in enumerate(looks) if top < n), len(looks) - 1)


def adaptive_evidence(values: Mapping[str, Mapping[int, float]], baseline: str, analysis: Mapping[str, Any],
                      mode: str, looks: Sequence[int], upto: int) -> Tuple[pd.DataFrame, str]:
    """EVIDENCE plus ``look`` and ``p_bound`` per non-baseline cell from the group-sequential replay.

    ci_low / ci_high are the repeated CI of the look the cell stopped at, p_value its nominal p, p_adj and mde
    nan (the design splits α by Bonferroni or Holm's step-down and spends it over looks instead), hedges_g the
    descriptive g of the seeds used there. Args as fixed_evidence, plus looks (planned cumulative seeds) and
    upto (the last look the launch ran: cells still going there are "continue").
    """
    from .stats import plan_for, replay_looks

    others = {c: v for c, v in values.items() if c != baseline}
    design = plan_for(looks, analysis, len(others))
    base = values.get(baseline, {})
    got = replay_looks(design, others, base, mode=mode, min_effect=analysis["min_effect"],
                       upto_look=upto if upto < len(looks) - 1 else None, futility=analysis.get("futility"))
    rows = {}
    for cell, d in got.items():
        n_k = design.looks[d.look]
        x, b = ({s: v for s, v in vals.items() if s < n_k} for vals in (others[cell], base))
        g = np.nan
        if len(x):
            g = compare_to_baseline({cell: list(x.values())}, list(b.values()), mode=mode, correction="none",
                                    test=analysis["test"], seeds={cell: list(x)}, baseline_seeds=list(b)
                                    ).comparisons[cell].hedges_g if len(b) else np.nan
        needed = d.seeds_needed if d.seeds_needed is not None and np.isfinite(d.seeds_needed) else None
        rows[cell] = dict(delta=d.delta, ci_low=d.rci_low, ci_high=d.rci_high, p_value=d.p_nominal, p_adj=np.nan,
                          hedges_g=g, mde=np.nan, seeds_needed=None if needed is None else int(needed),
                          verdict=d.verdict, look=d.look, p_bound=d.p_bound, ci_level=d.rci_level,
                          ci_low_unadj=d.ci_low_unadj, ci_high_unadj=d.ci_high_unadj,
                          seeds_basis=d.seeds_basis if d.verdict == "undecided" else "")
    rows[baseline] = dict(look=upto)                   # the baseline ran every look any cell reached
    frame = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=[*EVIDENCE, *DETAIL, "look", "p_bound"])
    foot = design.footnote()
    if any(d.n < design.looks[d.look] or d.n_base < design.looks[d.look] for d in got.values()):
        foot += (" Cells with failed runs were tested against boundaries calibrated for the seeds they had at each "
                 "look (docs/statistics.md, \"Failed runs\").")
    if analysis.get("futility"):
        foot += (f" Futility stops: a cell whose conditional power under the current trend fell below "
                 f"{analysis['futility']:g} stopped as undecided before the last look.")
    going = [c for c, d in got.items() if d.verdict == "continue"]
    if going:
        foot += (f" The launch has run {upto + 1} of {len(looks)} looks: {len(going)} \"continue\" cell(s) are "
                 f"not decided yet (--resume runs the next look).")
    elif upto < len(looks) - 1:
        foot += f" Every cell was decided by look {upto + 1} of {len(looks)}: the later looks were not needed."
    return frame, foot


def grid_anova(ok: pd.DataFrame, axes: Sequence[str], col: str):
    """factorial_anova over the axes that vary (≥ 2 of them), else None (one axis: nothing factorial)."""
    from .stats import factorial_anova

    varying = [a for a in axes if a in ok and ok[a].nunique(dropna=True) > 1]
    if len(varying) < 2 or ok.empty:
        return None
    data = ok[[*varying, col]].copy()
    data[col] = pd.to_numeric(data[col], errors="coerce")
    return factorial_anova(data, varying, col)


def anova_lines(res) -> List[Tuple[str, float, float, float, float]]:
    """(effect, df, F, p, partial η²) per row of an AnovaResult's table, the residual's df last (F, p nan)."""
    t = res.table
    out = []
    for name, r in t.iterrows():
        label = "residual" if name == "Residual" else name.replace(":", " × ")
        out.append((label, float(r["df"]), float(r.get("F", np.nan)), float(r.get("PR(>F)", np.nan)),
                    float(r.get("eta_sq_partial", np.nan))))
    return out
