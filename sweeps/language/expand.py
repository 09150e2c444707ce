"""Study → scientific cells → trial configs.

Scientific axes form a full grid; conditional keys (``Param.when``) are dropped
from cells they do not apply to and the resulting duplicate cells are merged,
so ``block_size: [4, 8]`` multiplies only the cdlinear cells, never the dense
baseline.  Every cell is then run once per seed; nuisance values (found by
the per-cell search, see sweeps/runner/launch.py) are merged in per cell.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from analysis.contract import CELL_ALL

from .study import Study


@dataclass
class Cell:
    values: Dict[str, Any]            # the scientific axes that apply to this cell
    config: Dict[str, Any]            # resolved task config without seed / nuisance

    @property
    def id(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.values.items()) or CELL_ALL


@dataclass
class TrialSpec:
    cell: Cell
    seed: int
    config: Dict[str, Any]            # full flat config incl. seed: the MLflow params
    phase: str = "final"              # "final" (reported) or "search" (nuisance tuning)

    @property
    def key(self) -> str:
        return f"{self.cell.id}|seed={self.seed}"


def runtime_overrides(study: Study) -> Dict[str, Any]:
    """Keys the platform fills for every trial: threads from resources.cpu so a
    local rerun uses the same thread count (and so the same float reductions)."""
    return {"train.threads": max(1, int(study.resources["cpu"]))}


def cells(study: Study, problems: Optional[List[Tuple[str, str]]] = None) -> List[Cell]:
    """All distinct scientific cells in grid order, each resolved and checked.

    Problems (a value a task rejects, a component constraint like a block size
    that does not divide a width) are appended to ``problems`` with the key path
    in the sweep file; without ``problems`` they raise ValueError.
    """
    task = study.task
    axes = list(study.scientific)
    seen, out = set(), []
    local: List[Tuple[str, str]] = []
    combos = itertools.product(*(study.scientific[a] for a in axes)) if axes else [()]
    for combo in combos:
        over = {**study.fixed, **runtime_overrides(study), **dict(zip(axes, combo))}
        # Nuisance keys get a representative value so conditional checks see them.
        for k, d in study.nuisance.items():
            over[k] = d.args[0]
        try:
            cfg = task.resolve(over)
        except (KeyError, ValueError) as e:
            local.append(("scientific", str(e)))
            continue
        values = {a: cfg[a] for a in axes if a in cfg}
        key = tuple(values.items())
        if key in seen:
            continue
        seen.add(key)
        for k, msg in [*task.check_config(cfg), *task.slot_problems(cfg)]:
            section = "scientific" if k in study.scientific else "nuisance" if k in study.nuisance else "fixed"
            bad = cfg.get(k)
            entry = (f"{section}.{k}", f"{bad!r} is not allowed in cell [{','.join(f'{a}={v}' for a, v in values.items())}]: {msg}")
            if entry not in local:
                local.append(entry)
        for k in study.nuisance:
            cfg.pop(k, None)
        out.append(Cell(values=values, config=cfg))
    if local:
        if problems is None:
            raise ValueError("\n".join(f"{p}: {m}" for p, m in local))
        problems.extend(local)
    return out


def baseline_cell(study: Study, cs: List[Cell]) -> Optional[Cell]:
    if not study.baseline:
        return None
    for c in cs:
        if all(c.values.get(k) == v for k, v in study.baseline.items()):
            return c
    return None


def final_trials(study: Study, best_nuisance: Optional[Dict[str, Dict[str, Any]]] = None) -> List[TrialSpec]:
    """Every cell × every seed, with the cell's chosen nuisance values merged in."""
    out = []
    for c in cells(study):
        nuis = (best_nuisance or {}).get(c.id, {})
        for s in study.seeds:
            cfg = study.task.resolve({**c.config, **nuis, "seed": s})
            out.append(TrialSpec(cell=c, seed=s, config=cfg))
    return out
