"""Per-cell nuisance search inside one Ray Tune run.

Ray Tune's searchers refuse ``grid_search`` and plain TPE over ``tune.choice``
does not cover a grid, so the grid is not handed to Optuna at all: every
scientific cell gets its own OptunaSearch (TPE) over the nuisance axes only,
and a thin Searcher hands out trials round-robin across cells until each has
``trials_per_cell``.  Likewise ASHA must compare a trial only with trials of
the same cell (a dense and a CDLinear net are not competing for a
learning-rate), so a thin scheduler routes each trial to its cell's own
ASHAScheduler.  Both wrappers only route; the searching and early stopping
are Optuna's and Ray's.
"""
from __future__ import annotations

import pickle
from typing import Any, Dict, List, Optional

import numpy as np
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from ..language.study import Dist


def tune_space(nuisance: Dict[str, Dist]) -> Dict[str, Any]:
    out = {}
    for k, d in nuisance.items():
        lo_hi = d.args
        if d.kind == "loguniform":
            out[k] = tune.loguniform(*lo_hi)
        elif d.kind == "uniform":
            out[k] = tune.uniform(*lo_hi)
        elif d.kind == "int":
            out[k] = tune.randint(lo_hi[0], lo_hi[1] + 1)
        else:
            out[k] = tune.choice(d.args)
    return out


class CellwiseSearcher(Searcher):
    """Round-robin over cells; each cell's nuisance values come from its own TPE.

    Args:
        base: cell id → trial dict (task, params without nuisance, cell, ...).
        nuisance: the study's nuisance distributions.
        trials_per_cell: search budget per cell.
        metric, mode: what TPE optimises (the study's search metric).
        seed: TPE seed, so a search is reproducible.
    """

    def __init__(self, base: Dict[str, Dict[str, Any]], nuisance: Dict[str, Dist], trials_per_cell: int,
                 metric: str, mode: str, seed: int = 0):
        super().__init__(metric=metric, mode=mode)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._base = base
        self._subs = {cid: OptunaSearch(space=tune_space(nuisance), metric=metric, mode=mode,
                                        sampler=optuna.samplers.TPESampler(seed=seed + i))
                      for i, cid in enumerate(base)}
        self._left = {cid: trials_per_cell for cid in base}
        self._owner: Dict[str, str] = {}
        self._n = 0

    def suggest(self, trial_id: str) -> Optional[Dict[str, Any]]:
        open_cells = [c for c, n in self._left.items() if n > 0]
        if not open_cells:
            return Searcher.FINISHED
        cid = open_cells[self._n % len(open_cells)]
        self._n += 1
        values = self._subs[cid].suggest(trial_id)
        if values is None:
            return None
        self._left[cid] -= 1
        self._owner[trial_id] = cid
        base = self._base[cid]
        trial = dict(base, params={**base["params"], **values})
        trial["key"] = f"{base['key']}|search#{self._left[cid]}"
        return {"trial": trial}

    def on_trial_result(self, trial_id: str, result: Dict) -> None:
        if trial_id in self._owner:
            self._subs[self._owner[trial_id]].on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: Optional[Dict] = None, error: bool = False) -> None:
        cid = self._owner.get(trial_id)
        if cid is None:
            return
        failed = error or result is None or "ablate_failure" in result or self.metric not in result
        self._subs[cid].on_trial_complete(trial_id, None if failed else result, error=failed)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def rung_epochs(max_t: int, grace_period: int = 1, reduction_factor: int = 3) -> List[int]:
    """The epochs at which ASHA (one bracket, ``time_attr`` = one result per epoch)
    may stop a trial: grace_period × reduction_factor^k below max_t, and max_t.

    The same rungs ASHAScheduler builds (``_Bracket``: int(log(max_t/g)/log(rf)) + 1
    rungs); the trial reporter checkpoints there, so a trial stopped at a rung keeps
    its state (tests/sweeps/test_throughput.py compares with Ray's own brackets)."""
    for name, v, lo in (("max_t", max_t, 1), ("grace_period", grace_period, 1),
                        ("reduction_factor", reduction_factor, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    g = min(grace_period, max_t)
    n = int(np.log(max_t / g) / np.log(reduction_factor) + 1)
    return sorted({int(g * reduction_factor ** k) for k in range(n)} | {int(max_t)})


class CellwiseASHA(FIFOScheduler):
    """One ASHAScheduler per scientific cell; trials are routed by their cell."""

    def __init__(self, metric: str, mode: str, max_t: int, grace_period: int = 1, reduction_factor: int = 3):
        super().__init__()
        self._metric, self._mode = metric, mode
        self._args = dict(metric=metric, mode=mode, max_t=max_t, grace_period=min(grace_period, max_t),
                          reduction_factor=reduction_factor, time_attr="training_iteration")
        self._cells: Dict[str, ASHAScheduler] = {}

    def _of(self, trial) -> ASHAScheduler:
        cid = trial.config["trial"]["cell"]
        if cid not in self._cells:
            self._cells[cid] = ASHAScheduler(**self._args)
        return self._cells[cid]

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True

    def on_trial_add(self, tune_controller, trial):
        self._of(trial).on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result):
        if "ablate_failure" in result:
            return TrialScheduler.CONTINUE
        return self._of(trial).on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller, trial, result):
        self._of(trial).on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial):
        self._of(trial).on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller, trial):
        self._of(trial).on_trial_error(tune_controller, trial)

    def debug_string(self) -> str:
        return f"CellwiseASHA over {len(self._cells)} cells"


def best_per_cell(results: List[Dict[str, Any]], metric: str, mode: str, names: List[str]) -> Dict[str, Dict[str, Any]]:
    """cell id → nuisance values of the best search trial of that cell.

    Only trials that ran the most epochs in their cell are compared (an ASHA-
    stopped trial's early metric is not comparable with a finished trial's).
    """
    by_cell: Dict[str, List[Dict[str, Any]]] = {}
    for r in results:
        if r.get("metric") is None or r.get("failed"):
            continue
        by_cell.setdefault(r["cell"], []).append(r)
    best = {}
    for cid, rs in by_cell.items():
        top = max(r["epochs"] for r in rs)
        rs = [r for r in rs if r["epochs"] == top]
        pick = (max if mode == "max" else min)(rs, key=lambda r: r["metric"])
        best[cid] = {k: pick["params"][k] for k in names}
    return best
