"""Adaptive seeds: the final phase as the looks of a group-sequential design.

``seeds: {looks: [3, 5, 8, 12]}``: look 0 runs every cell on seeds 0..2; after
each look the design (analysis/stats, boundaries planned for these
looks before anything runs) decides every cell still running from all its
FINISHED runs so far; cells that are better, worse or equivalent stop, the rest
get the seeds of the next look, and so does the baseline while any cell goes
on.  Each look is one Tune run (phase ``look<k>``); its runs are ordinary final
runs tagged ``ablate.look``.  The decisions are recomputed from the store by
``analysis.stats.replay_looks``, the same function the table uses, so the
runner and the table cannot disagree; the cells each look runs are recorded in
the launch state before it starts, so ``--resume`` finishes a half-done look
with exactly its trials and never reruns a finished one.
"""
from __future__ import annotations

from typing import Dict, List, Mapping

from analysis import contract as C

from ..language.expand import baseline_cell, cells, final_trials
from .phase import counts
from .state import Launch

SeedValues = Dict[str, Dict[int, float]]


def design_of(study, correction=None):
    from analysis.stats import plan_for

    return plan_for(study.looks, {**study.analysis, "correction": correction or study.analysis["correction"]},
                    len(cells(study)) - 1)


def store_values(run: Launch) -> SeedValues:
    """{cell: {seed: value}} of the launch's FINISHED final runs, from the store."""
    from analysis.store import load_runs

    study, out = run.study, {}
    try:
        runs = load_runs(study.experiment, run.uri, launch=run.state.launch, epoch_times=False)
    except LookupError:
        return out
    col = f"metrics.{study.metric}"
    if col not in runs:
        return out
    ok = runs[(runs["status"] == "FINISHED") & runs[col].notna()]
    for cell, seed, v in zip(ok["cell"], ok["seed"], ok[col]):
        out.setdefault(cell, {})[int(seed)] = float(v)
    return out


def decisions(study, design, values: Mapping[str, Mapping[int, float]], upto_look: int):
    """Each cell's decision after look ``upto_look`` (0-based) from its seeds' values, by the same replay the
    table uses (analysis.stats.replay_looks), so the runner and the table cannot disagree."""
    from analysis.stats import replay_looks

    base = baseline_cell(study, cells(study))
    others = {c.id: dict(values.get(c.id, {})) for c in cells(study) if c.id != base.id}
    return replay_looks(design, others, dict(values.get(base.id, {})), mode=study.mode,
                        min_effect=study.analysis["min_effect"], upto_look=upto_look,
                        futility=study.analysis.get("futility"))


def cells_of_look(study, design, values: SeedValues, k: int) -> List[str]:
    """The cells look ``k`` runs: every cell at look 0; later, the undecided ones and the baseline (none: the
    study is decided)."""
    if k == 0:
        return [c.id for c in cells(study)]
    going = [c for c, d in decisions(study, design, values, k - 1).items() if d.verdict == "continue"]
    base = baseline_cell(study, cells(study))
    return going + [base.id] if going else []


def run_looks(run: Launch) -> None:
    """The final phase as the looks of the design; ``run.values`` (default: the store) gives the seeds' values
    each decision is made on."""
    study, state = run.study, run.state
    values = run.values or store_values
    if state.looks is None:
        state.looks = {}
    # A launch begun before the Holm step-down existed has planned looks but no correction: it goes on with the
    # Bonferroni decisions it started with, and its runs say so (the table replays the tag).
    if state.looks_correction is None:
        state.looks_correction = "bonferroni" if state.looks else study.analysis["correction"]
    corr = state.looks_correction
    design = design_of(study, corr)
    for k, n_k in enumerate(study.looks):
        name = f"look{k}"
        if state.is_done(name):
            continue
        if str(k) not in state.looks:
            state.looks[str(k)] = cells_of_look(study, design, values(run), k)
            state.save()
        run_cells = state.looks[str(k)]
        if not run_cells:
            run.echo(f"{study.name}: every cell decided after look {k}; looks {k + 1}..{len(study.looks)} not needed")
            break
        seeds = set(range(study.looks[k - 1] if k else 0, n_k))
        trials = [t for t in final_trials(study, state.best_nuisance) if t.cell.id in run_cells and t.seed in seeds]
        run.echo(f"{study.name}: look {k + 1} of {len(study.looks)}: {len(run_cells)} cells × seeds "
                 f"{min(seeds)}..{max(seeds)} = {len(trials)} trials")
        results = run.phase(name, f"look {k + 1} of {len(study.looks)}",
                            {C.LOOKS_CORRECTION: corr, C.LOOK: str(k)}, trials=trials, look=k)
        state.mark_done(name)
        run.summary["phases"][name] = counts(results)
        _echo_look(study, design, values(run), k, run.echo)
    state.mark_done("final")
    run.summary["phases"]["final"] = _totals(run)


def _totals(run: Launch) -> Dict[str, int]:
    """Trial counts of the whole launch (looks run by earlier drivers included), from the store."""
    from analysis.store import load_runs

    try:
        runs = load_runs(run.study.experiment, run.uri, launch=run.state.launch, epoch_times=False)
    except LookupError:                  # nothing recorded (every look's trials failed to start)
        return {k: sum(p[k] for n, p in run.summary["phases"].items() if n.startswith("look"))
                for k in ("trials", "finished", "failed")}
    return {"trials": len(runs), "finished": int((runs["status"] == "FINISHED").sum()),
            "failed": int((runs["status"] == "FAILED").sum())}


def _echo_look(study, design, values, k, echo) -> None:
    dec = decisions(study, design, values, k)
    shown = ", ".join(f"[{c}] {d.verdict}" + (f" at look {d.look + 1}" if d.verdict != "continue" else "")
                      for c, d in dec.items())
    echo(f"{study.name}: after look {k + 1}: {shown}")
