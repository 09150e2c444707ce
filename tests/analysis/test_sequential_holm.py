"""analysis/stats/_sequential.py's Holm step-down for adaptive seeds: levels, agreement with Bonferroni and with the
replay, and family-wise error by Monte Carlo in the configurations where passing α on is most dangerous
(every other cell decided, so one cell is tested at the full α). Seeds differ from the calibration's (0)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.stats import _sequential as seq
from analysis.stats import simulate as sim
from analysis.stats import replay_looks as replay

LOOKS, ALPHA, M = (3, 5, 8, 12), 0.05, 5


@pytest.fixture(scope="module")
def holm():
    return {(sp, t): seq.plan(LOOKS, alpha=ALPHA, n_cells=M, spending=sp, test=t, correction="holm")
            for sp in seq.SPENDINGS for t in seq.TESTS}


def se(p, n):
    return math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("test", seq.TESTS)
def test_levels_rise_from_bonferroni_to_alpha_and_are_valid(holm, test):
    for sp in seq.SPENDINGS:
        d, bonf = holm[sp, test], seq.plan(LOOKS, alpha=ALPHA, n_cells=M, spending=sp, test=test)
        lv = np.array(d.level_bounds)
        assert lv.shape == (M, len(LOOKS)) and d.bounds(M) == bonf.p_bounds == d.p_bounds
        assert (np.diff(lv[::-1], axis=0) >= 0).all(), "a cell crossing at a lower level must cross at a higher"
        assert d.bounds(None) == d.p_bounds and bonf.bounds(1) == bonf.p_bounds     # Bonferroni ignores it
    # level α/1 is a valid group-sequential test at α: a single null cell crosses with probability <= α
    rng = np.random.default_rng(31)
    one = seq.plan(LOOKS, alpha=ALPHA, n_cells=1, spending="pocock", test=test)
    assert one.p_bounds == holm["pocock", test].bounds(1)
    for ratio in (1.0, 30.0) if test == "welch" else (1.0,):    # Welch: the grid holds at this level too
        cells = math.sqrt(ratio) * rng.standard_normal((40_000, 1, 12))
        v = seq.sequential_verdicts(one, cells, rng.standard_normal((40_000, 12)))
        rate = float(np.isin(v.verdict, ("better", "worse")).mean())
        assert ALPHA / 2 < rate <= ALPHA + 3 * se(ALPHA, 40_000), (ratio, rate)


@pytest.mark.parametrize("test", seq.TESTS)
def test_holm_decides_every_bonferroni_decision_no_later(holm, test):
    d, bonf = holm["pocock", test], seq.plan(LOOKS, alpha=ALPHA, n_cells=M, spending="pocock", test=test)
    rng = np.random.default_rng(32)
    cells = rng.standard_normal((3000, M, 12)) + np.array([0.0, 1.0, 1.5, 2.0, -2.0])[:, None]
    base = rng.standard_normal((3000, 12))
    h, b = (seq.sequential_verdicts(x, cells, base, min_effect=1.0) for x in (d, bonf))
    directional = np.isin(b.verdict, ("better", "worse"))
    assert (h.verdict[directional] == b.verdict[directional]).all()
    assert (h.stop_look[directional] <= b.stop_look[directional]).all()
    gained = np.isin(h.verdict, ("better", "worse")) & ~directional
    assert gained.mean() > 0.02 and h.trials.mean() < b.trials.mean(), "the step-down must buy something"


@pytest.mark.parametrize("test", seq.TESTS)
@pytest.mark.parametrize("mode", ["max", "min"])
def test_replay_equals_the_vectorised_step_down(holm, test, mode):
    d = holm["pocock", test]
    rng = np.random.default_rng(33)
    cells = rng.standard_normal((120, M, 12)) + np.array([0.0, 1.5, 2.5, -2.5, 4.0])[:, None]
    base = rng.standard_normal((120, 12))
    v = seq.sequential_verdicts(d, cells, base, mode=mode, min_effect=1.5)
    for s in range(120):
        got = replay(d, {f"c{j}": dict(enumerate(cells[s, j])) for j in range(M)}, dict(enumerate(base[s])),
                     mode=mode, min_effect=1.5)
        assert [(got[f"c{j}"].verdict, got[f"c{j}"].look) for j in range(M)] == \
            list(zip(v.verdict[s], v.stop_look[s])), s
    assert {"better", "worse", "equivalent", "undecided"} <= set(np.unique(v.verdict))


# sim.ADVERSARIAL: the global null; one null behind four sure effects (it ends at level α); near-zero effects
# behind sure ones (sign errors at α/2 and α/1); a cell at the margin behind sure ones (false "equivalent"); mixed
ADVERSARIAL = [(label, list(eff)) for label, eff in sim.ADVERSARIAL]


@pytest.mark.parametrize("label,effects", ADVERSARIAL, ids=[a[0] for a in ADVERSARIAL])
def test_family_wise_error_of_the_step_down(holm, label, effects):
    n, bound = 4000, ALPHA + 3 * se(ALPHA, 4000)
    for (sp, test), d in holm.items():
        s = sim.simulate(d, effects, n_studies=n, min_effect_sd=1.0, rho=0.5 if test == "paired" else 0.0,
                         seed=34 + ADVERSARIAL.index((label, effects)))
        assert s.false_claim <= bound, (sp, test, s.false_claim)
    if label == "one null behind four sure effects":      # the null cell really is tested at (nearly) α
        paired = sim.simulate(holm["pocock", "paired"], effects, n_studies=n, rho=0.5, seed=40)
        assert paired.false_claim > ALPHA / M + 3 * se(ALPHA / M, n), paired.false_claim


def test_decide_uses_the_level_of_the_remaining_cells(holm):
    d = holm["obrien_fleming", "welch"]
    x, y = np.array([0.85, 0.86, 0.84, 0.86, 0.85, 0.87, 0.84, 0.86]), np.linspace(0.83, 0.85, 8)
    at = {j: seq.decide(d, 2, x, y, mode="max", remaining=j) for j in range(1, M + 1)}
    assert [at[j].p_bound for j in at] == [d.level_bounds[j - 1][2] for j in at]
    widths = [at[j].rci_high - at[j].rci_low for j in range(1, M + 1)]
    assert widths == sorted(widths), "a higher level (fewer remaining cells) gives a narrower interval"
    assert at[M].p_bound == seq.decide(d, 2, x, y, mode="max").p_bound == d.p_bounds[2]
    for bad in (0, M + 1, 2.0, True):
        with pytest.raises(ValueError, match="remaining"):
            seq.decide(d, 2, x, y, mode="max", remaining=bad)


def test_equivalence_is_judged_at_alpha_over_m_whatever_the_level(holm):
    d = holm["pocock", "paired"]
    rng = np.random.default_rng(35)
    y = rng.standard_normal(12)
    x = y + 0.02 * rng.standard_normal(12)
    lone, full = (seq.decide(d, 3, x, y, mode="max", min_effect=0.1, remaining=j) for j in (1, M))
    assert lone.verdict == full.verdict == "equivalent"
    assert (lone.rci_low, lone.rci_high) == (full.rci_low, full.rci_high)


def test_describe_and_footnote_name_the_step_down(holm):
    d = holm["obrien_fleming", "welch"]
    assert "Holm step-down from 0.05/5 = 0.01 per cell" in d.describe() and "alpha/(m - r)" in d.describe()
    assert "Holm step-down" in d.footnote() and "\n" not in d.footnote()
    with pytest.raises(ValueError, match="correction"):
        seq.plan(LOOKS, n_cells=M, correction="bh")
