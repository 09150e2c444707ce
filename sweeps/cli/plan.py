"""``ablate run --dry-run``: the plan of a study, printed without starting anything."""
from __future__ import annotations

import json

from ..language.expand import baseline_cell, cells, final_trials


def print_plan(study, verbose: bool = False, header: bool = False, checked=()) -> None:
    """Phases, trial list and totals; nuisance values show as tuned per cell; ``checked``: the pre-flight's
    component configurations (sweeps/language/preflight.py), each with its parameter count."""
    cs = cells(study)
    base = baseline_cell(study, cs)
    finals = final_trials(study)
    if header:
        print(f"\n=== {study.name} ({study.task.name}) ===")
    print(f"sweep {study.name} ({study.file}), task {study.task.name}, metric {study.metric} ({study.mode})"
          f"{' [smoke]' if study.smoke else ''}")
    n_search = 0
    if study.nuisance:
        s = study.search
        n_search = len(cs) * s["trials_per_cell"]
        sched = (f"ASHA per cell (grace {s['grace_period']}, reduction {s['reduction_factor']})"
                 if s["scheduler"] == "asha" else "no early stopping")
        apart = ("ALSO an evaluation seed (search.seed asked for it; the table flags it)" if s.get("seed_overlaps")
                 else "outside the evaluation seeds")
        print(f"search phase: {len(cs)} cells × {s['trials_per_cell']} Optuna TPE trials = {n_search} trials on "
              f"tuning seed {s['seed']} ({apart}), {sched}, optimising {s['metric']} ({s['mode']})")
        for k, d in study.nuisance.items():
            print(f"  {k} ~ {d.kind}{d.args}: tuned per cell")
    tuned = f" with {', '.join(study.nuisance)} tuned per cell (its best search trial)" if study.nuisance else ""
    if study.looks:
        from analysis.stats.simulate import expected_line

        from ..runner.looks import design_of

        design, fut = design_of(study), study.analysis.get("futility")
        print(design.describe())
        print(expected_line(design, fut))
        if fut and len(study.looks) > 2:
            print(f"Futility: at looks 2..{len(study.looks) - 1}, a cell whose conditional power under the current "
                  f"trend is below {fut:g} stops undecided.")
        elif fut:
            print("Futility: none possible with two looks (never at the first look, nor at the last).")
        print(f"final phase in looks: look 1 runs every cell on seeds 0..{study.looks[0] - 1}; later looks only the "
              f"cells still undecided (and the baseline); listed below: the most it can take{tuned}")
    else:
        print(f"final phase: {len(cs)} cells × {len(study.seeds)} seeds = {len(finals)} trials{tuned}")
    for i, t in enumerate(finals):
        mark = " (baseline)" if base is not None and t.cell.id == base.id else ""
        print(f"  [{i:3d}] {t.cell.id} seed={t.seed}{mark}")
    for c in checked:
        print(f"  component {c.describe()}")
    print(f"total: {n_search + len(finals)} trials ({n_search} search + {len(finals)} final); "
          f"resources per trial: {study.resources}")
    if verbose and finals:
        cfg = dict(finals[0].config)
        cfg.update({k: "<tuned per cell>" for k in study.nuisance})
        print(json.dumps(cfg, indent=1, default=str))
