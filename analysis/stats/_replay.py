"""Replaying a group-sequential (adaptive seeds) launch look by look: the one function that says which cells
stopped where, shared by the table and by the runner that picks the cells that get more seeds.

Method: the design of analysis/stats/_sequential.py (Jennison & Turnbull 2000, ch. 7 and 9; Lan & DeMets 1983).
Look k tests each cell still running on its seeds 0..looks[k]−1 against the baseline's seeds 0..looks[k]−1 with
``analysis.sequential.decide``; a cell that stopped (better, worse, equivalent) is never looked at again, so its
verdict and repeated CI are those of the look it stopped at. Under the Holm step-down a cell is tested at
α/(m − r), r the cells already better or worse (at earlier looks, or earlier in this look's step-down).
Written here because a replay is bookkeeping over decide(), which neither scipy nor statsmodels has a notion of.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional

import numpy as np

from ._sequential import Design, LookDecision, decide


def _seed_values(name: str, values: Any) -> Dict[int, float]:
    """{seed: value} with integer seeds ≥ 0; NaN (a failed or unlogged run) and ±inf (a diverged one) dropped."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{name} must map seed -> value; got {type(values).__name__}")
    out = {}
    for s, v in values.items():
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0:
            raise ValueError(f"{name} has seed {s!r}; allowed: integers >= 0 (seeds are 0..n-1)")
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{s}] must be a number; got {v!r}") from None
        if math.isfinite(v):
            out[int(s)] = v
    return out


def replay_looks(design: Design, cells: Mapping[str, Mapping[int, float]], baseline: Mapping[int, float], *,
           mode: str, min_effect: Optional[float] = None, upto_look: Optional[int] = None,
           futility: Optional[float] = None) -> Dict[str, LookDecision]:
    """Each cell's LookDecision: at the look it stopped, or (``upto_look=k``) its state after look k.

    Args:
        design: from ``analysis.sequential.plan`` (looks, boundaries, test).
        cells: cell label -> {seed: value} of its FINISHED runs (seeds 0..n−1; NaN and ±inf dropped: a failed
            run; the boundaries are then calibrated for the seeds present, ``Design.observed_bounds``).
        baseline: {seed: value} of the baseline's FINISHED runs.
        mode: "max" or "min" (which direction is better).
        min_effect: equivalence margin in metric units, or None (no equivalence stop). Default None.
        upto_look: None (default): walk every look, cells never stopped end "undecided" at the last;
            k: stop after look k (0-based), cells still going are "continue" (what the runner asks after look k).
        futility: conditional power below which a cell stops "undecided" before the last look (default None).
    Returns {cell: LookDecision} in the order of ``cells``; its ``look`` is the look it stopped at (or k).
    """
    if not isinstance(design, Design):
        raise ValueError(f"design must be a Design from analysis.sequential.plan; got {type(design).__name__}")
    if not isinstance(cells, Mapping):
        raise ValueError(f"cells must map a cell label to {{seed: value}}; got {type(cells).__name__}")
    last = len(design.looks) - 1
    if upto_look is not None and (isinstance(upto_look, bool) or not isinstance(upto_look, (int, np.integer))
                                  or not 0 <= upto_look <= last):
        raise ValueError(f"upto_look must be None or an integer in [0, {last}]; got {upto_look!r}")
    base = _seed_values("baseline", baseline)
    values = {label: _seed_values(f"cells[{label!r}]", v) for label, v in cells.items()}
    end = last if upto_look is None else int(upto_look)
    out: Dict[str, LookDecision] = {}
    for k in range(end + 1):
        n = design.looks[k]
        b = {s: v for s, v in base.items() if s < n}
        going = {label: {s: v for s, v in vals.items() if s < n} for label, vals in values.items()
                 if not (label in out and out[label].stopped)}      # stopped cells are not looked at again
        out.update(_look(design, k, going, b, mode, min_effect, _decided(out), futility))
    return {label: out[label] for label in values}


def _decided(out: Mapping[str, LookDecision]) -> int:
    return sum(d.verdict in ("better", "worse") for d in out.values())


def _look(design: Design, k: int, going: Mapping[str, Mapping[int, float]], base: Mapping[int, float],
          mode: str, min_effect: Optional[float], decided: int, futility: Optional[float]) -> Dict[str, LookDecision]:
    """Decisions of look k for the cells still going. Holm: a cell is tested at α/(m − decided); every
    better/worse at this look raises the level of the others, which are tested again, until none crosses."""
    def at(label: str, remaining: int) -> LookDecision:
        x = going[label]
        return decide(design, k, list(x.values()), list(base.values()), mode=mode, min_effect=min_effect,
                      cell_seeds=list(x), base_seeds=list(base), remaining=remaining, futility=futility)

    m, got = design.n_cells, {}
    while True:
        remaining = max(1, m - decided)
        now = {label: at(label, remaining) for label in going if label not in got}
        crossed = {label: d for label, d in now.items() if d.verdict in ("better", "worse")}
        if design.correction != "holm" or not crossed or len(got) + len(crossed) == len(going):
            return {**got, **now}
        got.update(crossed)
        decided += len(crossed)
