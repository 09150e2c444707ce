"""analysis/stats/_sequential.py's futility stop (analysis.futility): conditional power under the current trend, stops
only between the first and the last look, never adds a claim, and buys the null trials the fixed design wastes.
Seeds differ from the calibration's (0) and from docs/statistics.md's (1..4)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analysis.stats import _sequential as seq
from analysis.stats import simulate as sim
from analysis.stats import replay_looks as replay

LOOKS, ALPHA, M = (3, 5, 8, 12), 0.05, 5


@pytest.fixture(scope="module")
def designs():
    return {(c, t): seq.plan(LOOKS, alpha=ALPHA, n_cells=M, test=t, correction=c)
            for c in seq.CORRECTIONS for t in seq.TESTS}


def test_conditional_power_is_the_b_value_crossing_probability(designs):
    # Brownian motion with drift θ = z_k/√t (the current trend): B(1) = z_k√t + θ(1 − t) + N(0, 1 − t)
    d = designs["bonferroni", "welch"]
    rng = np.random.default_rng(51)
    zc = stats.norm.isf(d.p_bounds[-1] / 2)
    for k, z in ((1, 0.8), (2, 1.7), (2, 0.2)):
        t = LOOKS[k] / LOOKS[-1]
        b1 = z * math.sqrt(t) + z / math.sqrt(t) * (1 - t) + math.sqrt(1 - t) * rng.standard_normal(400_000)
        mc = float((b1 > zc).mean())
        cp = float(seq.conditional_power(2 * stats.norm.sf(z), k, d))
        assert cp == pytest.approx(mc, abs=4 * math.sqrt(mc * (1 - mc) / 400_000) + 1e-4), (k, z)
    assert seq.conditional_power(0.5, 1, designs["holm", "welch"], 1) > seq.conditional_power(0.5, 1, d)


@pytest.mark.parametrize("test", seq.TESTS)
def test_futility_stops_only_between_the_first_and_last_look_and_adds_no_claim(designs, test):
    d = designs["holm", test]
    rng = np.random.default_rng(52)
    cells = rng.standard_normal((3000, M, 12)) + np.array([0.0, 0.0, 1.0, 2.0, -1.5])[:, None]
    base = rng.standard_normal((3000, 12))
    plain, fut = (seq.sequential_verdicts(d, cells, base, min_effect=1.0, futility=f) for f in (None, 0.05))
    early = (fut.verdict == "undecided") & (fut.stop_look < len(LOOKS) - 1)
    assert early.any() and set(np.unique(fut.stop_look[early])) <= {1, 2}
    claims = np.isin(fut.verdict, ("better", "worse"))
    assert (fut.verdict[claims] == plain.verdict[claims]).all(), "a futility stop must never create a claim"
    assert (fut.trials <= plain.trials).all() and fut.trials.mean() < 0.9 * plain.trials.mean()
    assert (early[:, :2].mean() > 3 * early[:, 3].mean()), "it is the null cells that stop"


@pytest.mark.parametrize("test", seq.TESTS)
@pytest.mark.parametrize("correction", seq.CORRECTIONS)
def test_replay_equals_the_vectorised_verdicts_with_futility(designs, test, correction):
    d = designs[correction, test]
    rng = np.random.default_rng(53)
    cells = rng.standard_normal((100, M, 12)) + np.array([0.0, 0.7, 2.5, -2.5, 0.0])[:, None]
    base = rng.standard_normal((100, 12))
    v = seq.sequential_verdicts(d, cells, base, min_effect=1.5, futility=0.05)
    for s in range(100):
        got = replay(d, {f"c{j}": dict(enumerate(cells[s, j])) for j in range(M)}, dict(enumerate(base[s])),
                     mode="max", min_effect=1.5, futility=0.05)
        assert [(got[f"c{j}"].verdict, got[f"c{j}"].look) for j in range(M)] == \
            list(zip(v.verdict[s], v.stop_look[s])), s
        for j in range(M):
            if got[f"c{j}"].verdict == "undecided":
                assert got[f"c{j}"].seeds_needed is not None


def test_the_null_trials_target_with_the_fixed_designs_power(designs):
    """docs/statistics.md's futility rows on other seeds: ≥ 30 % fewer trials under the null, power within
    0.05 of the fixed 12-seed Holm design at 1 and 2 SD, false claims within α + 3 SE."""
    for test, rho in (("welch", 0.0), ("paired", 0.5)):
        d = designs["holm", test]
        fixed = sim.comparators(d)[0]
        null = sim.simulate(d, [0.0] * M, n_studies=4000, min_effect_sd=1.0, rho=rho, seed=54, futility=0.01)
        assert null.mean_trials <= 0.70 * null.max_trials, (test, null.mean_trials)
        assert null.false_claim <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 4000)
        for eff in (1.0, 2.0):
            a, f = (sim.simulate(x, [eff] * M, n_studies=4000, rho=rho, seed=55, futility=fu)
                    for x, fu in ((d, 0.01), (fixed, None)))
            assert np.mean(a.power) >= np.mean(f.power) - 0.05, (test, eff, a.power, f.power)


def test_futility_is_validated(designs):
    d = designs["holm", "welch"]
    for bad in (0.0, 1.0, -0.1, True, "0.1"):
        with pytest.raises(ValueError, match="futility"):
            seq.decide(d, 1, [1.0, 2.0, 3.0], [1.0, 1.5, 2.0], mode="max", futility=bad)
        with pytest.raises(ValueError, match="futility"):
            seq.sequential_verdicts(d, np.zeros((2, M, 12)), np.zeros((2, 12)), futility=bad)
    first = seq.decide(d, 0, [1.0, 1.1, 0.9], [1.0, 1.05, 0.95], mode="max", futility=0.99)
    assert first.verdict == "continue", "never a futility stop at the first look"
    second = seq.decide(d, 1, [1.0, 1.1, 0.9, 1.0, 1.0], [1.0, 1.05, 0.95, 1.0, 1.0], mode="max", futility=0.99)
    assert second.verdict == "undecided" and second.look == 1
