"""Operating characteristics of the adaptive-seeds design (analysis/stats/_sequential.py) by Monte Carlo: false-claim rate,
power and mean trials against the fixed design and naive peeking, and the Holm step-down's adversarial table.
These are the tables of docs/statistics.md; regenerate them with

    python -m analysis.stats.simulate --describe --holm
    python -m analysis.stats.simulate --dunnett --studies 1500

Written by hand because the designs are this project's (no library simulates t-based group-sequential boundaries);
the random numbers are numpy's, the tests scipy's.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ..contract import LOOKS_CORRECTIONS as CORRECTIONS
from ..contract import SPENDINGS, TESTS
from ._sequential import Design, _int, _p_bounds, plan, sequential_verdicts


@dataclass(frozen=True)
class Simulation:
    """Operating characteristics of a design over simulated studies (run-to-run SD 1, mode "max").

    Args:
        effects_sd: true Δ per cell in SDs; n_studies: studies simulated.
        false_claim: rate of studies with any false claim ("better"/"worse" when the true Δ is 0 or of the
            other sign, "equivalent" when |Δ| >= min_effect); false_claim_se: its binomial SE.
        power: per cell, rate of the correct directional claim (NaN for null cells); equivalent: per cell rate.
        mean_trials: mean trials per study incl. baseline; max_trials: the most (= the fixed design's).
    """
    effects_sd: Tuple[float, ...]
    n_studies: int
    false_claim: float
    false_claim_se: float
    power: Tuple[float, ...]
    equivalent: Tuple[float, ...]
    mean_trials: float
    max_trials: int


def simulate(design: Design, effects_sd: Sequence[float], *, n_studies: int = 2000,
             min_effect_sd: Optional[float] = None, rho: float = 0.0, seed: int = 1,
             futility: Optional[float] = None) -> Simulation:
    """Simulate normal studies, run = cell mean + √rho·(seed's shared effect) + √(1 − rho)·noise (rho > 0 is
    what pairing by seed exploits), and run the design on them."""
    eff = np.asarray(effects_sd, float)
    if eff.shape != (design.n_cells,) or not np.isfinite(eff).all():
        raise ValueError(f"effects_sd must be {design.n_cells} finite numbers, got {effects_sd!r}")
    n_studies, seed = _int("n_studies", n_studies, 1), _int("seed", seed, 0)
    if not (isinstance(rho, (int, float)) and 0 <= rho < 1):
        raise ValueError(f"rho must be in [0, 1), got {rho!r}")
    rng, n = np.random.default_rng(seed), design.looks[-1]
    y = math.sqrt(rho) * rng.standard_normal((n_studies, 1, n)) + \
        math.sqrt(1 - rho) * rng.standard_normal((n_studies, design.n_cells + 1, n))
    v = sequential_verdicts(design, y[:, 1:] + eff[:, None], y[:, 0], mode="max", min_effect=min_effect_sd,
                            futility=futility)
    right = np.where(eff > 0, v.verdict == "better", v.verdict == "worse") & (eff != 0)
    false = np.isin(v.verdict, ("better", "worse")) & ~right
    if min_effect_sd:
        false |= (v.verdict == "equivalent") & (np.abs(eff) >= min_effect_sd)
    rate = float(false.any(1).mean())
    return Simulation(tuple(eff.tolist()), n_studies, rate, math.sqrt(rate * (1 - rate) / n_studies),
                      tuple(np.where(eff != 0, right.mean(0), np.nan).tolist()),
                      tuple((v.verdict == "equivalent").mean(0).tolist()), float(v.trials.mean()), design.max_trials)


def comparators(design: Design) -> Tuple[Design, Design, Design]:
    """The table's comparators at the same α_cell: the fixed n_K-seed design, naive peeking (nominal α_cell at
    every look; invalid) and the z-boundary mistake (normal-theory boundaries applied to the Welch t; invalid)."""
    holm, m, K = design.correction == "holm", design.n_cells, len(design.looks)
    per_j = [design.alpha / j for j in range(1, m + 1)]                 # level α/j, j = 1..m (Holm's steps)
    fixed = dataclasses.replace(design, looks=design.looks[-1:], info_fractions=(1.0,), spending="fixed",
                                alpha_spent=(design.alpha_cell,), p_bounds=(design.alpha_cell,),
                                level_bounds=tuple((a,) for a in per_j) if holm else ())
    naive = dataclasses.replace(design, p_bounds=(design.alpha_cell,) * K, spending="naive",
                                level_bounds=tuple((a,) * K for a in per_j) if holm else ())
    levels = tuple(per_j[::-1]) if holm else (design.alpha_cell,)     # ascending
    z = _p_bounds(design.looks, levels, design.spending, "z", design.n_sim, design.seed, (1.0,), design.gamma)
    return fixed, naive, dataclasses.replace(design, test="welch_z", p_bounds=z[0],
                                             level_bounds=z[::-1] if holm else ())


def expected_line(design: Design, futility: Optional[float] = None, n_studies: int = 2000, seed: int = 0) -> str:
    """One line for `--dry-run`: mean trials with no effect and with every cell at 1 and 2 SD, and the power at
    1 SD against the fixed design, simulated with independent normal seeds (no equivalence stops: min_effect
    is in metric units, the run-to-run SD is not known before the sweep)."""
    m, got = design.n_cells, []
    for i, e in enumerate((0.0, 1.0, 2.0)):
        got.append(simulate(design, [e] * m, n_studies=n_studies, seed=seed + i, futility=futility))
    fixed = simulate(comparators(design)[0], [1.0] * m, n_studies=n_studies, seed=seed + 1)
    trials = ", ".join(f"{s.mean_trials:.1f} ({round(100 * (s.mean_trials / s.max_trials - 1)):+d} %) {what}"
                       for s, what in zip(got, ("with no effect", "with every cell at 1 SD", "at 2 SD")))
    return (f"Expected ({n_studies} simulated studies, independent normal seeds, no equivalence stops): trials "
            f"{trials} of at most {design.max_trials}; power at 1 SD {np.mean(got[1].power):.2f} "
            f"(fixed {design.looks[-1]} seeds: {np.mean(fixed.power):.2f}). Compare designs with "
            f"`python -m analysis.stats.simulate --frontier --looks {' '.join(map(str, design.looks))} --cells {m}`.")


def table(looks=(3, 5, 8, 12), *, alpha=0.05, n_cells=5, n_studies=4000, min_effect_sd=1.0, seed=1) -> str:
    """Markdown table of false-claim rate, power and mean trials: adaptive OBF/Pocock (Holm step-down and
    Bonferroni) vs the fixed design (same correction) vs naive peeking."""
    scen = [(0.0,) * n_cells, (0.0,) * (n_cells - 2) + (1.0, 2.0), (1.0,) * n_cells, (2.0,) * n_cells]
    rows = ["| test | design | false claims: null | false claims: 0,..,0,1,2 SD | power 1 SD | power 2 SD "
            "| trials: null | trials: 1 SD | trials: 2 SD |", "|---" * 9 + "|"]
    for test, rho in (("welch", 0.0), ("paired", 0.5)):
        named = []
        for corr in CORRECTIONS:
            obf, poc = (plan(looks, alpha=alpha, n_cells=n_cells, spending=s, test=test, correction=corr)
                        for s in SPENDINGS)
            fixed, naive, zmis = comparators(obf)
            named += [(f"adaptive OBF, {corr}", obf), (f"adaptive Pocock, {corr}", poc)]
            if corr == "holm":
                named += [(f"adaptive OBF, {corr}, futility {FUTILITY:g}", (obf, FUTILITY)),
                          (f"adaptive Pocock, {corr}, futility {FUTILITY:g}", (poc, FUTILITY))]
            named += [(f"fixed {looks[-1]} seeds, {corr}", fixed)]
            if corr == "bonferroni":
                named += [("naive peeking", naive)] + [("OBF z-boundaries on t (invalid)", zmis)] * (test == "welch")
        for name, d in named:
            d, fut = d if isinstance(d, tuple) else (d, None)
            s = [simulate(d, e, n_studies=n_studies, min_effect_sd=min_effect_sd, rho=rho, seed=seed + i,
                          futility=fut) for i, e in enumerate(scen)]
            tr = [f"{x.mean_trials:.1f} ({round(100 * (x.mean_trials / x.max_trials - 1)):+d} %)"
                  for x in (s[0], *s[2:])]
            rows.append(f"| {test}{' (rho 0.5)' * (rho > 0)} | {name} | {s[0].false_claim:.4f} ± "
                        f"{s[0].false_claim_se:.4f} | {s[1].false_claim:.4f} | {np.mean(s[2].power):.3f} | "
                        f"{np.mean(s[3].power):.3f} | " + " | ".join(tr) + " |")
    return (f"{n_studies} simulated studies per scenario, {n_cells} cells + baseline, looks {list(looks)}, "
            f"alpha = {alpha}, min_effect = {min_effect_sd} SD, seeds {seed}..{seed + 3}; trials vs "
            f"the fixed design's {(n_cells + 1) * looks[-1]}.\n\n" + "\n".join(rows))


FUTILITY = 0.01       # the conditional power of the table's futility rows (docs/statistics.md)
FRONTIER = (("obrien_fleming", None), *(("hsd", float(g)) for g in (-8, -6, -4, -3.5, -3, -2, -1, 0, 1)),
            ("pocock", None))
TARGETS = (-0.05, -0.30, -0.30)   # issue 12: power gap at 1 SD >= -0.05; trials, null and 2 SD, <= -30 %


def frontier_table(looks=(3, 5, 8, 12), *, alpha=0.05, n_cells=5, n_studies=4000, min_effect_sd=1.0, seed=1,
                   futility=FUTILITY) -> str:
    """Markdown table: the spending family from O'Brien–Fleming through Hwang–Shih–DeCani γ to Pocock (Holm,
    futility), power gap to the fixed design at 1 and 2 SD and trials under the null and at 2 SD, and whether
    all three targets hold; Welch also with the (invalid) equal-variance calibration, to show what the
    variance-ratio grid costs. Scenario seeds as in `table` (null seed, 1 SD seed + 2, 2 SD seed + 3)."""
    scen = [(0, (0.0,) * n_cells), (2, (1.0,) * n_cells), (3, (2.0,) * n_cells)]
    rows = ["| test | spending | power gap 1 SD | power gap 2 SD | false claims: null | trials: null | "
            "trials: 2 SD | all three targets |", "|---" * 8 + "|"]
    for label, test, rho, ratios in (("welch", "welch", 0.0, None),
                                     ("welch, equal-variance calibration (invalid)", "welch", 0.0, (1.0,)),
                                     ("paired (rho 0.5)", "paired", 0.5, None),
                                     ("paired (rho 0)", "paired", 0.0, None)):
        kw = dict(alpha=alpha, n_cells=n_cells, test=test, correction="holm",
                  **({"variance_ratios": ratios} if ratios else {}))
        fixed = comparators(plan(looks, **kw))[0]
        ref = [simulate(fixed, e, n_studies=n_studies, min_effect_sd=min_effect_sd, rho=rho, seed=seed + i).power
               for i, e in scen[1:]]
        for spending, gamma in FRONTIER:
            d = plan(looks, spending=spending, gamma=gamma, **kw)
            s = [simulate(d, e, n_studies=n_studies, min_effect_sd=min_effect_sd, rho=rho, seed=seed + i,
                          futility=futility) for i, e in scen]
            gap = [float(np.mean(x.power) - np.mean(r)) for x, r in zip(s[1:], ref)]
            saved = [x.mean_trials / x.max_trials - 1 for x in (s[0], s[2])]
            ok = gap[0] >= TARGETS[0] and saved[0] <= TARGETS[1] and saved[1] <= TARGETS[2]
            rows.append(f"| {label} | {d.spending_name} | {gap[0]:+.3f} | {gap[1]:+.3f} | {s[0].false_claim:.4f} | "
                        f"{100 * saved[0]:+.1f} % | {100 * saved[1]:+.1f} % | {'yes' if ok else 'no'} |")
    return (f"{n_studies} simulated studies per scenario, {n_cells} cells + baseline, looks {list(looks)}, "
            f"alpha = {alpha}, holm, futility {futility:g}, min_effect = {min_effect_sd} SD; power gaps against the "
            f"fixed {looks[-1]}-seed holm design on the same data; targets: gap at 1 SD >= {TARGETS[0]:g}, "
            f"trials <= {100 * TARGETS[1]:g} % under the null and at 2 SD.\n\n" + "\n".join(rows))

ADVERSARIAL = (("global null", (0.0, 0.0, 0.0, 0.0, 0.0)),
               ("one null behind four sure effects", (8.0, 8.0, -8.0, 8.0, 0.0)),
               ("near-zero effects behind sure ones", (8.0, 8.0, 8.0, 0.05, -0.05)),
               ("a cell at the margin behind sure ones", (8.0, 8.0, 8.0, 8.0, 1.0)),
               ("mixed", (0.0, 0.0, 1.0, 2.0, -2.0)))


def holm_table(looks=(3, 5, 8, 12), *, alpha=0.05, n_studies=20000, min_effect_sd=1.0, seed=101) -> str:
    """Markdown table: any false claim under the Holm step-down (5 cells) where passing α on is most dangerous."""
    rows = ["| true effects (SD) | " + " | ".join(f"{t} {s}" for t in TESTS for s in ("OBF", "Pocock")) + " |",
            "|---" * 5 + "|"]
    for i, (label, eff) in enumerate(ADVERSARIAL):
        got = []
        for test in TESTS:
            for sp in SPENDINGS:
                d = plan(looks, alpha=alpha, n_cells=len(eff), spending=sp, test=test, correction="holm")
                r = simulate(d, eff, n_studies=n_studies, min_effect_sd=min_effect_sd,
                             rho=0.5 if test == "paired" else 0.0, seed=seed + i)
                got.append(f"{r.false_claim:.4f} ± {r.false_claim_se:.4f}")
        rows.append(f"| {label}: {', '.join(f'{e:g}' for e in eff)} | " + " | ".join(got) + " |")
    return (f"{n_studies} simulated studies per row, looks {list(looks)}, alpha = {alpha}, min_effect = "
            f"{min_effect_sd} SD, seeds {seed}..{seed + len(ADVERSARIAL) - 1}; any false claim (better/worse of "
            f"a null or of the wrong sign, equivalent at |effect| >= min_effect).\n\n" + "\n".join(rows))


DUNNETT_SDS = (("equal", (1.0,) * 5), ("unequal (SD 3, 3, 1, 1, 0.5)", (3.0, 3.0, 1.0, 1.0, 0.5)))


def _fixed_rate(correction, sds, n, effect, n_tables, seed):
    """Rate over fixed-design tables (compare_to_baseline, the table's path; baseline SD 1) of any better/worse
    claim when effect is 0, else the mean per-cell rate of the correct "better"."""
    from ._fixed import compare_to_baseline

    rng, hits = np.random.default_rng(seed), 0.0
    for _ in range(n_tables):
        base = rng.standard_normal(n)
        cells = {f"c{i}": rng.standard_normal(n) * s + effect for i, s in enumerate(sds)}
        v = [c.verdict for c in compare_to_baseline(cells, base, correction=correction).comparisons.values()]
        hits += any(x in ("better", "worse") for x in v) if effect == 0 else float(np.mean([x == "better" for x in v]))
    return hits / n_tables


def dunnett_table(seeds=(5, 12), *, n_tables=1500, seed=1) -> str:
    """Markdown table: Dunnett (max-t step-down, Welch) against Holm, 5 cells, fixed design: family-wise rate
    under the global null and per-cell power with every cell 1.5 SD (5 seeds) or 1 SD (other seeds) better."""
    rows = ["| variances | seeds | Holm: family-wise | Holm: power | Dunnett: family-wise | Dunnett: power |",
            "|---" * 6 + "|"]
    for label, sds in DUNNETT_SDS:
        for n in seeds:
            got = []
            for corr in ("holm", "dunnett"):
                e = _fixed_rate(corr, sds, n, 0.0, n_tables, seed)
                pw = _fixed_rate(corr, sds, n, 1.5 if n == 5 else 1.0, n_tables, seed + 1)
                got += [f"{e:.4f} ± {math.sqrt(e * (1 - e) / n_tables):.4f}", f"{pw:.3f}"]
            rows.append(f"| {label} | {n} | " + " | ".join(got) + " |")
    return (f"{n_tables} tables per entry, alpha = 0.05, baseline SD 1, seeds {seed} (null) and {seed + 1} "
            f"(power).\n\n" + "\n".join(rows))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m analysis.stats.simulate", description=table.__doc__)
    ap.add_argument("--looks", type=int, nargs="+", default=[3, 5, 8, 12])
    ap.add_argument("--cells", type=int, default=5)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--studies", type=int, default=4000)
    ap.add_argument("--min-effect", type=float, default=1.0, help="equivalence margin, in run-to-run SDs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--describe", action="store_true", help="first print the plans, as --dry-run would")
    ap.add_argument("--holm", action="store_true", help="also print the step-down's adversarial error table")
    ap.add_argument("--frontier", action="store_true",
                    help="only print the spending-family table (O'Brien-Fleming .. Hwang-Shih-DeCani .. Pocock)")
    ap.add_argument("--dunnett", action="store_true",
                    help="only print the Dunnett-vs-Holm fixed-design table (--studies tables per entry)")
    a = ap.parse_args(argv)
    if a.dunnett:
        print(dunnett_table(n_tables=a.studies, seed=a.seed))
        return
    if a.frontier:
        print(frontier_table(tuple(a.looks), alpha=a.alpha, n_cells=a.cells, n_studies=a.studies,
                             min_effect_sd=a.min_effect, seed=a.seed))
        return
    if a.describe:
        for sp in SPENDINGS:
            print(plan(a.looks, alpha=a.alpha, n_cells=a.cells, spending=sp, correction="holm").describe(), end="\n\n")
    print(table(tuple(a.looks), alpha=a.alpha, n_cells=a.cells, n_studies=a.studies, min_effect_sd=a.min_effect,
                seed=a.seed))
    if a.holm:
        print("\n" + holm_table(tuple(a.looks), alpha=a.alpha, min_effect_sd=a.min_effect))


if __name__ == "__main__":
    main()
