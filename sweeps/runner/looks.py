"""Adaptive seeds: the final phase as the looks of a group-sequential design.

``seeds: {looks: [3, 5, 8, 12]}``: look 0 runs every cell on seeds 0..2; after
each look the design (analysis/sequential.py, boundaries planned for these
looks before anything runs) decides every cell still running from all its
FINISHED runs so far; cells that are better, worse or equivalent stop, the rest
get the seeds of the next look, and so does the baseline while any cell goes
on.  Each look is one Tune run (phase ``look<k>``); its runs are ordinary final
runs tagged ``ablate.look``.  The decisions are recomputed from the store by
``analysis.sequential_table.replay``, the same function the table uses, so the
runner and the table cannot disagree; the cells each look runs are recorded in
the launch state before it starts, so ``--resume`` finishes a half-done look
with exactly its trials and never reruns a finished one.
"""
from __future__ import annotations

from typing import Any, Dict, List

from .expand import baseline_cell, cells, final_trials
from .phase import counts, run_phase


def design_of(study, correction=None):
    from analysis.sequential import plan_for

    return plan_for(study.looks, {**study.analysis, "correction": correction or study.analysis["correction"]},
                    len(cells(study)) - 1)


def _values(study, uri: str, launch: str):
    """{cell: {seed: value}} of the launch's FINISHED final runs, from the store."""
    from analysis.store import load_runs

    out: Dict[str, Dict[int, float]] = {}
    try:
        runs = load_runs(study.experiment, uri, launch=launch, epoch_times=False)
    except LookupError:
        return out
    col = f"metrics.{study.metric}"
    if col not in runs:
        return out
    ok = runs[(runs["status"] == "FINISHED") & runs[col].notna()]
    for cell, seed, v in zip(ok["cell"], ok["seed"], ok[col]):
        out.setdefault(cell, {})[int(seed)] = float(v)
    return out


def decisions(study, design, uri: str, launch: str, upto_look: int):
    from analysis.sequential_table import replay

    vals = _values(study, uri, launch)
    base = baseline_cell(study, cells(study))
    others = {c.id: vals.get(c.id, {}) for c in cells(study) if c.id != base.id}
    return replay(design, others, vals.get(base.id, {}), mode=study.mode,
                  min_effect=study.analysis["min_effect"], upto_look=upto_look,
                  futility=study.analysis.get("futility"))


def _cells_of_look(study, design, uri, state, k: int) -> List[str]:
    if k == 0:
        return [c.id for c in cells(study)]
    going = [c for c, d in decisions(study, design, uri, state["launch"], k - 1).items() if d.verdict == "continue"]
    base = baseline_cell(study, cells(study))
    return going + [base.id] if going else []


def run_looks(study, state: Dict[str, Any], save, storage, uri: str, exp_id: str, tags: Dict[str, str],
              resume: bool, echo, verbose: int, summary: Dict[str, Any]) -> None:
    from .callback import MLflowTracker
    from .progress import Progress

    plan_ = state.setdefault("looks", {})
    # A launch begun before the Holm step-down existed has planned looks but no correction: it goes on with the
    # Bonferroni decisions it started with, and its runs say so (the table replays the tag).
    corr = state.setdefault("looks_correction", "bonferroni" if plan_ else study.analysis["correction"])
    tags = {**tags, "ablate.looks_correction": corr}
    design = design_of(study, corr)
    for k, n_k in enumerate(study.looks):
        name = f"look{k}"
        if name in state["done"]:
            continue
        if str(k) not in plan_:
            plan_[str(k)] = _cells_of_look(study, design, uri, state, k)
            save()
        run_cells = plan_[str(k)]
        if not run_cells:
            echo(f"{study.name}: every cell decided after look {k}; looks {k + 1}..{len(study.looks)} not needed")
            break
        seeds = set(range(study.looks[k - 1] if k else 0, n_k))
        trials = [t for t in final_trials(study, state.get("best_nuisance"))
                  if t.cell.id in run_cells and t.seed in seeds]
        echo(f"{study.name}: look {k + 1} of {len(study.looks)}: {len(run_cells)} cells × seeds "
             f"{min(seeds)}..{max(seeds)} = {len(trials)} trials")
        tracker = [MLflowTracker(uri, exp_id, {**tags, "ablate.look": str(k)}, study.artifacts["checkpoints"]),
                   Progress(f"look {k + 1} of {len(study.looks)}")]
        results = run_phase(study, name, state, storage, tracker, resume, echo, verbose, trials=trials, look=k)
        state["done"].append(name)
        save()
        summary["phases"][name] = counts(results)
        _echo_look(study, design, uri, state["launch"], k, echo)
    state["done"].append("final")
    save()
    summary["phases"]["final"] = _totals(study, uri, state["launch"])


def _totals(study, uri: str, launch: str) -> Dict[str, int]:
    from analysis.store import load_runs

    runs = load_runs(study.experiment, uri, launch=launch)
    return {"trials": len(runs), "finished": int((runs["status"] == "FINISHED").sum()),
            "failed": int((runs["status"] == "FAILED").sum())}


def _echo_look(study, design, uri, launch, k, echo) -> None:
    dec = decisions(study, design, uri, launch, k)
    shown = ", ".join(f"[{c}] {d.verdict}" + (f" at look {d.look + 1}" if d.verdict != "continue" else "")
                      for c, d in dec.items())
    echo(f"{study.name}: after look {k + 1}: {shown}")
