"""analysis/stats/_fixed.py against scipy / statsmodels called directly on fixed vectors, and Monte Carlo checks of
the error rates, coverage and power it promises (fixed seeds, vectorised over simulated tables with numpy;
a few hundred tables also go through compare_to_baseline to show the vectorised path is the same)."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestIndPower, TTestPower
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from analysis.stats import compare_to_baseline, mde_table
from analysis.stats import average_ranks, factorial_anova, probability_of_improvement

# Any RuntimeWarning (scipy's "Precision loss", 0/0) or UserWarning (statsmodels' ConvergenceWarning)
# leaking from analysis.stats fails the test; direct reference calls below silence their own.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning", "error::UserWarning")

ALPHA = 0.05
BASE = [0.712, 0.698, 0.731]
CELLS = {"ties": [0.712, 0.712, 0.731], "n2": [0.75, 0.78], "n1": [0.80], "const": [0.70, 0.70, 0.70],
         "better": [0.80, 0.81, 0.79, 0.805], "with_nan": [0.72, np.nan, 0.74, 0.70]}


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def finite(v):
    v = np.asarray(v, float)
    return v[~np.isnan(v)]


def hedges(x, y):
    """Hedges' g from its textbook definition (independent of the module's code path)."""
    n1, n2 = len(x), len(y)
    ss = ((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum()
    return (1 - 3 / (4 * (n1 + n2) - 9)) * (x.mean() - y.mean()) / math.sqrt(ss / (n1 + n2 - 2))


# ------------------------------------------------------------------------------------------ numbers
def test_welch_columns_equal_scipy_and_statsmodels():
    res = compare_to_baseline(CELLS, BASE, alpha=ALPHA, min_effect=0.02)
    y = np.array(BASE)
    family = ["ties", "n2", "const", "better", "with_nan"]            # n1 has no p: not in the family
    assert res.family_size == 5 and res.excluded == ("n1",) and res.level == ALPHA / 5
    p = [quiet(stats.ttest_ind, finite(CELLS[k]), y, equal_var=False).pvalue for k in family]
    p_holm = multipletests(p, ALPHA, method="holm")[1]
    for k, pa in zip(family, p_holm):
        x, c = finite(CELLS[k]), res.comparisons[k]
        r = quiet(stats.ttest_ind, x, y, equal_var=False)
        ci = r.confidence_interval(1 - ALPHA)
        assert (c.n, c.n_base, c.n_pairs, c.in_family) == (len(x), 3, None, True)
        assert c.delta == pytest.approx(x.mean() - y.mean(), abs=1e-15)
        assert (c.ci_low_unadj, c.ci_high_unadj) == pytest.approx((ci.low, ci.high), rel=1e-12)
        # the printed interval is the one Holm decided with: the t interval at the cell's step level
        step = quiet(stats.ttest_ind, x, y, equal_var=False).confidence_interval(c.ci_level)
        assert (c.ci_low, c.ci_high) == pytest.approx((step.low, step.high), rel=1e-9)
        rank = sorted(p).index(p[family.index(k)])
        assert c.ci_level == pytest.approx(1 - ALPHA / (5 - rank) if c.verdict == "better" else 1 - ALPHA / 4)
        assert c.p_value == pytest.approx(r.pvalue, rel=1e-12) and c.p_adj == pytest.approx(pa, rel=1e-12)
        assert c.p_equivalence == pytest.approx(quiet(ttost_ind, x, y, -0.02, 0.02, usevar="unequal")[0], rel=1e-12)
        assert c.hedges_g == pytest.approx(hedges(x, y), rel=1e-12)
        sd = math.sqrt((((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum()) / (len(x) + 1))
        pooled = TTestIndPower().solve_power(effect_size=None, nobs1=len(x), ratio=3 / len(x), alpha=ALPHA / 5,
                                             power=0.8) * sd
        assert c.mde >= pooled * (1 - 1e-6)      # Welch is never more powerful than the pooled t at equal SDs
    assert res.comparisons["better"].verdict == "better"
    assert res.comparisons["better"].seeds_needed is None            # resolved: no seeds asked for


def test_n1_keeps_a_delta_but_has_no_p_ci_or_mde():
    # issue 21: no NaN from a statistic; without a test p = 1 (no evidence) and the interval is unbounded
    res = compare_to_baseline({"n1": [0.80]}, BASE)
    c = res.comparisons["n1"]
    direct = quiet(stats.ttest_ind, [0.80], BASE, equal_var=False)
    assert math.isnan(direct.pvalue)                                   # scipy: undefined
    assert c.delta == pytest.approx(0.80 - np.mean(BASE))
    assert (c.p_value, c.p_adj, c.ci_low, c.ci_high, c.mde) == (1.0, 1.0, -math.inf, math.inf, math.inf)
    assert not c.in_family and c.verdict == "undecided" and res.family_size == 0
    assert c.hedges_g == pytest.approx(hedges(np.array([0.80]), np.array(BASE)))   # pooled SD from the baseline
    assert c.seeds_needed is not None and "1 cell(s) without a test" in res.footnote()


def test_n2_and_ties_equal_scipy():
    for x in ([0.75, 0.78], [0.712, 0.712, 0.731], [1.0, 1.0, 2.0]):
        c = compare_to_baseline({"x": x}, [1.0, 2.0, 2.0] if x[0] == 1.0 else BASE).comparisons["x"]
        r = stats.ttest_ind(x, [1.0, 2.0, 2.0] if x[0] == 1.0 else BASE, equal_var=False)
        assert c.p_value == pytest.approx(r.pvalue, rel=1e-12)
        assert (c.ci_low, c.ci_high) == pytest.approx(tuple(r.confidence_interval(0.95)), rel=1e-12)


def test_one_constant_arm_equals_scipy_without_leaking_its_warning():
    x = [0.1, 0.1, 0.1]                       # mean 0.10000000000000002: np.var is 1e-34, not 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = stats.ttest_ind(x, BASE, equal_var=False)
    assert any("Precision loss" in str(w.message) for w in caught)   # the warning exists upstream...
    c = compare_to_baseline({"x": x}, BASE, min_effect=0.5).comparisons["x"]   # ...and is silenced here
    assert c.p_value == pytest.approx(r.pvalue, rel=1e-9)
    assert (c.ci_low, c.ci_high) == pytest.approx(tuple(r.confidence_interval(0.95)), rel=1e-9)
    assert c.p_equivalence == pytest.approx(quiet(ttost_ind, np.array(x), np.array(BASE), -0.5, 0.5,
                                                  usevar="unequal")[0], rel=1e-9)


def test_both_constant_arms_are_not_in_the_family():
    # scipy answers p = 0 (t = inf) for different constants and nan for equal ones: the Welch df is 0/0.
    assert quiet(stats.ttest_ind, [2.0, 2.0, 2.0], [1.0, 1.0, 1.0], equal_var=False).pvalue == 0.0
    res = compare_to_baseline({"diff": [2.0, 2.0, 2.0], "same": [1.0, 1.0, 1.0], "ok": [1.0, 2.0, 3.0]},
                              [1.0, 1.0, 1.0], min_effect=0.1)
    for k in ("diff", "same"):
        c = res.comparisons[k]
        assert c.p_value == 1.0 and c.ci_low == -math.inf and not c.in_family    # issue 21: no NaN, no claim
        assert c.verdict == "undecided" and c.seeds_needed is None and c.p_equivalence == 1.0
    assert res.comparisons["diff"].hedges_g == math.inf and res.comparisons["same"].hedges_g == 0.0
    assert res.comparisons["diff"].delta == 1.0 and res.comparisons["same"].delta == 0.0
    assert res.family_size == 1 and res.excluded == ("diff", "same")
    assert res.comparisons["ok"].p_adj == res.comparisons["ok"].p_value     # a family of one


@pytest.mark.parametrize("baseline", [None, [], [np.nan, np.nan]])
def test_missing_baseline_gives_no_comparisons(baseline):
    res = compare_to_baseline({"a": [1.0, 2.0, 3.0]}, baseline)
    assert res.comparisons == {} and res.family_size == 0 and "no baseline" in res.reason
    assert res.footnote() == res.reason and res.to_frame().empty


def test_nan_values_are_dropped():
    a = compare_to_baseline({"x": [0.72, np.nan, 0.74, 0.70]}, BASE + [np.nan]).comparisons["x"]
    b = compare_to_baseline({"x": [0.72, 0.74, 0.70]}, BASE).comparisons["x"]
    assert a == b and a.n == 3 and a.n_base == 3


@pytest.mark.parametrize("correction,method", [("holm", "holm"), ("bonferroni", "bonferroni"), ("bh", "fdr_bh"),
                                               ("none", None)])
def test_corrections_equal_multipletests(correction, method):
    rng = np.random.default_rng(7)
    cells = {f"c{i}": rng.normal(0.3 * i, 1, 4) for i in range(6)}
    cells["single"] = [0.5]
    base = rng.normal(0, 1, 5)
    res = compare_to_baseline(cells, base, correction=correction)
    p = np.array([stats.ttest_ind(cells[f"c{i}"], base, equal_var=False).pvalue for i in range(6)])
    want = p if method is None else multipletests(p, ALPHA, method=method)[1]
    assert [res.comparisons[f"c{i}"].p_adj for i in range(6)] == pytest.approx(want, rel=1e-12)
    assert res.family_size == 6 and res.level == (ALPHA if method is None else ALPHA / 6)
    name = {"holm": "Holm-adjusted", "bonferroni": "Bonferroni-adjusted", "bh": "Benjamini–Hochberg-adjusted",
            "none": "unadjusted"}[correction]
    assert res.footnote().startswith(f"Welch t-test vs baseline, {name} over 6 cells, α = 0.05")
    for i in range(6):
        c = res.comparisons[f"c{i}"]
        assert (c.verdict in ("better", "worse")) == (c.p_adj < ALPHA)


def test_paired_equals_ttest_rel_with_one_seed_missing():
    # baseline seed 2 failed (NaN); the cell's seeds come in another order; seed 9 exists only in the cell
    cell, cell_seeds = [0.85, 0.80, 0.86, 0.83, 0.90], [3, 0, 2, 1, 9]
    base, base_seeds = [0.79, 0.80, np.nan, 0.82], [0, 1, 2, 3]
    res = compare_to_baseline({"c": cell}, base, test="paired", seeds={"c": cell_seeds}, baseline_seeds=base_seeds,
                              min_effect=0.03)
    c = res.comparisons["c"]
    a, b = np.array([0.80, 0.83, 0.85]), np.array([0.79, 0.80, 0.82])     # seeds 0, 1, 3
    r = stats.ttest_rel(a, b)
    d = a - b
    assert (c.n, c.n_base, c.n_pairs) == (5, 3, 3)
    assert c.delta == pytest.approx(d.mean()) and c.p_value == pytest.approx(r.pvalue, rel=1e-12)
    assert (c.ci_low_unadj, c.ci_high_unadj) == pytest.approx(tuple(r.confidence_interval(0.95)), rel=1e-12)
    assert (c.ci_low, c.ci_high) == (c.ci_low_unadj, c.ci_high_unadj)        # a family of one: level α
    assert c.p_equivalence == pytest.approx(ttost_paired(a, b, -0.03, 0.03)[0], rel=1e-12)
    sd = d.std(ddof=1)
    assert c.hedges_g == pytest.approx((1 - 3 / (4 * 2 - 1)) * d.mean() / sd, rel=1e-12)   # bias-corrected d_z
    assert c.mde == pytest.approx(TTestPower().solve_power(effect_size=None, nobs=3, alpha=ALPHA, power=0.8) * sd,
                                  rel=1e-5)
    # issue 21: with min_effect set, seeds are planned to detect ±min_effect, not the observed Δ
    need = math.ceil(TTestPower().solve_power(effect_size=0.03 / sd, nobs=None, alpha=ALPHA, power=0.8))
    assert c.verdict == "undecided" and c.seeds_needed == need and c.seeds_basis == "min_effect"
    assert c.seeds_low <= need <= c.seeds_high
    assert "paired t-test on seed-matched runs" in res.footnote()


def test_paired_constant_differences_are_undefined():
    c = compare_to_baseline({"c": [1.5, 2.5, 3.5]}, [1.0, 2.0, 3.0], test="paired", seeds={"c": [0, 1, 2]},
                            baseline_seeds=[0, 1, 2]).comparisons["c"]
    assert quiet(stats.ttest_rel, [1.5, 2.5, 3.5], [1.0, 2.0, 3.0]).pvalue == 0.0    # scipy: t = inf
    assert c.delta == pytest.approx(0.5) and c.p_value == 1.0 and c.seeds_needed is None


def test_verdict_direction_follows_mode():
    lo, hi = [1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 1.9, 2.05]
    assert compare_to_baseline({"x": hi}, lo, mode="max").comparisons["x"].verdict == "better"
    assert compare_to_baseline({"x": hi}, lo, mode="min").comparisons["x"].verdict == "worse"
    assert compare_to_baseline({"x": lo}, hi, mode="min").comparisons["x"].verdict == "better"
    c = compare_to_baseline({"x": hi}, lo, mode="min").comparisons["x"]
    assert c.hedges_g > 0 and c.delta > 0                                       # g's sign is delta's


def test_equivalence_verdict_is_tost():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 0.01, 12), rng.normal(0, 0.01, 12)
    c = compare_to_baseline({"x": x}, y, min_effect=0.02).comparisons["x"]
    p = ttost_ind(x, y, -0.02, 0.02, usevar="unequal")[0]
    assert p < ALPHA and c.p_equivalence == pytest.approx(p) and c.verdict == "equivalent"
    assert c.seeds_needed is None
    c = compare_to_baseline({"x": x}, y).comparisons["x"]
    assert c.verdict == "undecided" and c.p_equivalence == 1.0


def test_seeds_needed_none_for_zero_delta_and_consistent_with_the_mde_table():
    assert compare_to_baseline({"x": [1.0, 2.0, 3.0]}, [3.0, 2.0, 1.0]).comparisons["x"].seeds_needed is None
    rng = np.random.default_rng(11)
    for shift in (0.3, 0.8, 1.5):
        x, y = rng.normal(shift, 1, 3), rng.normal(0, 1, 3)
        res = compare_to_baseline({"a": x, "b": y + 0.01}, y)
        c = res.comparisons["a"]
        sd = math.sqrt((x.var(ddof=1) + y.var(ddof=1)) / 2)
        d, need = abs(c.delta) / sd, c.seeds_needed
        table = mde_table(seeds=(need - 1, need) if need > 2 else (need,), alphas=(res.level,))
        assert table.iloc[-1, 0] <= d * (1 + 1e-9)                      # `need` seeds detect it ...
        if need > 2:
            assert table.iloc[0, 0] > d                                  # ... one fewer does not
        pooled = math.ceil(TTestIndPower().solve_power(effect_size=d, nobs1=None, alpha=res.level, power=0.8))
        assert pooled <= need <= pooled + 2                              # Welch needs a little more at small n


def test_mde_table_reproduces_statistics_md_and_fixes_statsmodels_nan_tail():
    pooled = mde_table(seeds=(3, 5, 10, 20), alphas=(0.05, 0.005), test="pooled").round(2)
    assert pooled.iloc[:, 0].tolist() == [3.07, 2.02, 1.32, 0.91]          # /work/shared/statistics.md
    assert pooled.iloc[[0, 2], 1].tolist() == [5.76, 1.84]
    for n, a in [(3, 0.05), (5, 0.05), (10, 0.005), (20, 0.05)]:         # statsmodels where its power is finite
        assert mde_table((n,), (a,), "pooled").iloc[0, 0] == pytest.approx(
            TTestIndPower().solve_power(effect_size=None, nobs1=n, alpha=a, power=0.8), rel=1e-5)
        assert mde_table((n,), (a,), "paired").iloc[0, 0] == pytest.approx(
            TTestPower().solve_power(effect_size=None, nobs=n, alpha=a, power=0.8), rel=1e-5)
    # statsmodels' own answer at n = 3, α = 0.005 is a non-root (scipy's nct.cdf NaN in the lower tail):
    broken = TTestIndPower().solve_power(effect_size=None, nobs1=3, alpha=0.005, power=0.8)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, 200_000, 3))
    for d, want in ((broken, 0.775), (mde_table((3,), (0.005,), "pooled").iloc[0, 0], 0.800)):
        power = (stats.ttest_ind(z[0] + d, z[1], axis=1).pvalue < 0.005).mean()   # pooled t, by simulation
        assert power == pytest.approx(want, abs=0.004)
    welch = mde_table(seeds=(3, 10, 20), alphas=(0.05, 0.005)).round(2)
    assert welch.to_numpy().tolist() == [[3.51, 8.14], [1.33, 1.86], [0.91, 1.22]]


# ------------------------------------------------------------------------------------------ Monte Carlo
def vec_welch(x, y, alpha=ALPHA):
    """Welch delta, p and CI over the last axis, any leading shape (numpy + scipy.stats.t only)."""
    n1, n2 = x.shape[-1], y.shape[-1]
    v1, v2 = x.var(-1, ddof=1) / n1, y.var(-1, ddof=1) / n2
    delta, se = x.mean(-1) - y.mean(-1), np.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1 ** 2 / (n1 - 1) + v2 ** 2 / (n2 - 1))
    half = stats.t.isf(alpha / 2, df) * se
    return delta, 2 * stats.t.sf(np.abs(delta) / se, df), delta - half, delta + half, se, df


def vec_paired(x, y, alpha=ALPHA):
    d = x - y
    n = d.shape[-1]
    delta, se = d.mean(-1), d.std(-1, ddof=1) / np.sqrt(n)
    half = stats.t.isf(alpha / 2, n - 1) * se
    return delta, 2 * stats.t.sf(np.abs(delta) / se, n - 1), delta - half, delta + half, se, n - 1


def vec_holm(p):
    order = np.argsort(p, axis=-1)
    m = p.shape[-1]
    adj = np.minimum(np.maximum.accumulate(np.take_along_axis(p, order, -1) * np.arange(m, 0, -1), axis=-1), 1)
    out = np.empty_like(adj)
    np.put_along_axis(out, order, adj, -1)
    return out


def null_tables(rng, sims, n, paired, cells=10):
    sd = np.linspace(0.5, 2.0, cells + 1)[None, :, None]         # unequal SDs: Welch's case
    x = rng.standard_normal((sims, cells + 1, n)) * sd
    if paired:
        x = x + 3 * rng.standard_normal((sims, 1, n))           # seed i shared by every cell
    return x


def through_module(x, test, **kw):
    seeds = list(range(x.shape[-1]))
    res = compare_to_baseline({f"c{j}": x[j] for j in range(1, x.shape[0])}, x[0], test=test,
                              seeds={f"c{j}": seeds for j in range(1, x.shape[0])}, baseline_seeds=seeds, **kw)
    return [res.comparisons[f"c{j}"] for j in range(1, x.shape[0])]


@pytest.mark.parametrize("test", ["welch", "paired"])
@pytest.mark.parametrize("n", [3, 10])
def test_global_null_familywise_error_of_holm(test, n):
    sims = 4000
    x = null_tables(np.random.default_rng(1000 + n), sims, n, test == "paired")
    fn = vec_paired if test == "paired" else vec_welch
    delta, p = fn(x[:, 1:], x[:, :1])[:2]
    p_adj = vec_holm(p)
    for s in range(50):                                          # the vectorised path is the module's
        got = through_module(x[s], test)
        assert [c.p_adj for c in got] == pytest.approx(p_adj[s], rel=1e-9)
        assert [c.verdict in ("better", "worse") for c in got] == (p_adj[s] < ALPHA).tolist()
    rate = (p_adj < ALPHA).any(axis=1).mean()
    se = math.sqrt(ALPHA * (1 - ALPHA) / sims)
    assert rate <= ALPHA + 3 * se
    assert (p < ALPHA).any(axis=1).mean() > 0.2                  # uncorrected, the same tables fail badly


@pytest.mark.parametrize("test", ["welch", "paired"])
def test_interval_coverage_of_the_true_delta(test):
    sims, n = 4000, 4
    rng = np.random.default_rng(21)
    true = np.linspace(-1.0, 1.0, 10)
    x = null_tables(rng, sims, n, test == "paired")
    x[:, 1:] += true[None, :, None]
    fn = vec_paired if test == "paired" else vec_welch
    _, _, lo, hi, _, _ = fn(x[:, 1:], x[:, :1])
    for s in range(10):
        got = through_module(x[s], test)
        assert [c.ci_low_unadj for c in got] == pytest.approx(lo[s], rel=1e-9)
        assert [c.ci_high_unadj for c in got] == pytest.approx(hi[s], rel=1e-9)
    cover = ((lo <= true) & (true <= hi)).mean()
    assert abs(cover - 0.95) <= 0.015


@pytest.mark.parametrize("test,n,n_base,m", [("welch", 3, 3, 1), ("welch", 3, 3, 10), ("welch", 3, 5, 1),
                                              ("welch", 10, 10, 10), ("welch", 2, 6, 1), ("welch", 3, 12, 10),
                                              ("paired", 3, 3, 10), ("paired", 10, 10, 1)])
def test_power_at_the_reported_mde_is_0_8(test, n, n_base, m):
    rng = np.random.default_rng(5 + n + m)
    seeds = list(range(max(n, n_base)))
    cells = {f"c{j}": rng.normal(0, 1, n) for j in range(m)}
    base = rng.normal(0, 1, n_base)
    res = compare_to_baseline(cells, base, test=test, seeds={k: seeds[:n] for k in cells},
                              baseline_seeds=seeds[:n_base])
    x = cells["c0"]
    if test == "paired":
        sd = (x - base[:n]).std(ddof=1)
    else:
        sd = math.sqrt(((n - 1) * x.var(ddof=1) + (n_base - 1) * base.var(ddof=1)) / (n + n_base - 2))
    d = res.comparisons["c0"].mde / sd                           # the MDE in SDs: the same for any data
    sims = 40_000
    if test == "paired":
        diff = rng.standard_normal((sims, n)) + d                # true delta = mde at true SD 1
        p = vec_paired(diff, np.zeros_like(diff))[1]
    else:
        p = vec_welch(rng.standard_normal((sims, n)) + d, rng.standard_normal((sims, n_base)))[1]
    assert (p < ALPHA / m).mean() == pytest.approx(0.8, abs=0.02)


def vec_tost(x, y, bound):
    delta, _, _, _, se, df = vec_welch(x, y)
    return np.maximum(stats.t.sf((delta + bound) / se, df), stats.t.cdf((delta - bound) / se, df))


@pytest.mark.parametrize("true_delta,n,check", [(1.0, 10, "low"), (0.0, 30, "high")])
def test_equivalence_rates_follow_tost(true_delta, n, check):
    sims, bound = 3000, 1.0
    rng = np.random.default_rng(31 + n)
    x, y = rng.standard_normal((sims, n)) + true_delta, rng.standard_normal((sims, n))
    p_eq = vec_tost(x, y, bound)
    p = vec_welch(x, y)[1]
    equivalent = (p_eq < ALPHA) & ~(p < ALPHA)                   # better / worse take precedence
    for s in range(15):
        c = compare_to_baseline({"x": x[s]}, y[s], min_effect=bound).comparisons["x"]
        assert c.p_equivalence == pytest.approx(p_eq[s], rel=1e-9)
        assert (c.verdict == "equivalent") == equivalent[s]
    rate = equivalent.mean()
    if check == "low":     # at |true delta| = min_effect equivalence is a false claim: ≤ α
        assert rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / sims)
    else:
        assert rate > 0.9


def test_probability_of_improvement_null_expectation_with_ties():
    rng = np.random.default_rng(41)
    sims, studies, n = 2000, 4, 5
    x, y = rng.integers(0, 4, (sims, studies, n)), rng.integers(0, 4, (sims, studies, n))   # many ties
    per = stats.mannwhitneyu(x, y, axis=-1).statistic / (n * n)
    avg = per.mean(axis=1)
    for s in range(10):
        r = probability_of_improvement(list(x[s]), list(y[s]), n_boot=50)
        assert r.estimate == pytest.approx(avg[s]) and r.per_study == pytest.approx(tuple(per[s]))
    assert abs(avg.mean() - 0.5) <= 3 * avg.std() / math.sqrt(sims)
    assert (x[..., :, None] > y[..., None, :]).mean() < 0.45     # ties counted ½ is what keeps it at 0.5


def test_probability_of_improvement_bootstrap_covers_truth():
    rng = np.random.default_rng(43)
    shifts = np.array([0.0, 0.3, 0.6, 1.0, -0.5])
    truth = stats.norm.cdf(shifts / math.sqrt(2)).mean()          # P(X > Y) for N(δ,1) vs N(0,1)
    hits, sims = 0, 200
    for _ in range(sims):
        cells = [rng.normal(s, 1, 10) for s in shifts]
        bases = [rng.normal(0, 1, 10) for _ in shifts]
        r = probability_of_improvement(cells, bases, n_boot=1000, seed=int(rng.integers(1 << 31)))
        hits += r.ci_low <= truth <= r.ci_high
    assert 0.88 <= hits / sims <= 0.99


def test_probability_of_improvement_numbers_and_mode():
    a, b = [[1.0, 2.0, 3.0], [0.5, 0.5]], [[2.0, 2.0, 5.0], [0.5, 0.1, 0.7]]
    r = probability_of_improvement(a, b, n_boot=500, seed=1)
    want = [stats.mannwhitneyu(x, y).statistic / (len(x) * len(y)) for x, y in zip(a, b)]
    assert r.per_study == pytest.approx(tuple(want)) and r.estimate == pytest.approx(np.mean(want))
    assert r.ci_low <= r.estimate <= r.ci_high
    assert r == probability_of_improvement(a, b, n_boot=500, seed=1)           # reproducible
    low = probability_of_improvement(a, b, mode="min", n_boot=500)
    want_min = [stats.mannwhitneyu(y, x).statistic / (len(x) * len(y)) for x, y in zip(a, b)]
    assert low.per_study == pytest.approx(tuple(want_min))


# ------------------------------------------------------------------------------------------ grids and suites
def grid_frame(reps=2, drop=None):
    rng = np.random.default_rng(9)
    rows = []
    for bs, lr, act in [(b, l, a) for b in (8, 16) for l in (0.1, 0.01, 0.001) for a in ("relu", "gelu")]:
        if drop and (bs, lr) == drop:
            continue
        for r in range(reps + (1 if (bs, lr, act) == (8, 0.1, "relu") else 0)):    # one extra: unbalanced
            rows.append({"model.block_size": bs, "optim.lr": lr, "model.act": act,
                         "metrics.acc": 0.7 + 0.01 * (bs == 16) + 0.3 * lr + rng.normal(0, 0.01)})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("axes", [("model.block_size", "optim.lr"), ("model.block_size", "optim.lr", "model.act")])
def test_factorial_anova_equals_statsmodels(axes):
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    df = grid_frame()
    res = factorial_anova(df, axes, "metrics.acc")
    formula = 'Q("metrics.acc") ~ ' + " * ".join(f'C(Q("{a}"))' for a in axes)
    want = anova_lm(ols(formula, df).fit(), typ=2)
    assert res.reason is None and res.n_obs == len(df)
    assert np.allclose(res.table[["sum_sq", "df", "F", "PR(>F)"]].to_numpy(float),
                       want[["sum_sq", "df", "F", "PR(>F)"]].to_numpy(float), equal_nan=True, rtol=1e-9)
    assert list(res.table.index[:len(axes)]) == list(axes) and res.table.index[-1] == "Residual"
    assert f"{axes[0]}:{axes[1]}" in res.table.index
    eta = res.table["eta_sq_partial"]
    assert eta[axes[0]] == pytest.approx(want["sum_sq"].iloc[0] / (want["sum_sq"].iloc[0] + want["sum_sq"].iloc[-1]))


def test_factorial_anova_refuses_grids_it_cannot_analyse():
    axes = ("model.block_size", "optim.lr")
    r = factorial_anova(grid_frame(drop=(16, 0.001)), axes, "metrics.acc")
    assert r.table is None and "incomplete grid" in r.reason and "optim.lr=0.001" in r.reason
    cond = grid_frame()
    cond["model.order"] = np.where(cond["model.act"] == "relu", 3.0, np.nan)        # a conditional axis
    r = factorial_anova(cond, ("model.block_size", "model.order"), "metrics.acc")
    assert r.table is None and "conditional" in r.reason
    one = grid_frame().groupby(["model.block_size", "optim.lr", "model.act"]).head(1)
    r = factorial_anova(one, ("model.block_size", "optim.lr", "model.act"), "metrics.acc")
    assert r.table is None and "replicates" in r.reason
    assert "≥ 2 axes" in factorial_anova(grid_frame(), ("optim.lr",), "metrics.acc").reason
    fixed = grid_frame().assign(**{"metrics.acc": lambda f: f["model.block_size"] * 0.01})   # deterministic metric
    assert "no replicate variance" in factorial_anova(fixed, axes, "metrics.acc").reason
    with pytest.raises(ValueError, match="axes"):
        factorial_anova(grid_frame(), ("nope", "optim.lr"), "metrics.acc")
    with pytest.raises(ValueError, match="y"):
        factorial_anova(grid_frame(), axes, "model.act")


def suite_means(studies=6):
    rng = np.random.default_rng(13)
    return pd.DataFrame(rng.normal(0, 1, (studies, 4)) + [0.0, 0.5, 1.0, 2.0], columns=["a", "b", "c", "d"],
                        index=[f"task{i}" for i in range(studies)])


def test_average_ranks_equal_rankdata_friedman_and_pairwise_wilcoxon_holm():
    # Suites rank with Friedman and compare every pair by a Wilcoxon signed-rank test with Holm across pairs
    # (Benavoli, Corani & Mangili 2016), which replaced autorank's Nemenyi (issue 21): autorank is always None.
    means = suite_means()
    means.iloc[0, :2] = 0.25                                                       # a tie
    r = average_ranks(means, mode="max")
    assert np.array_equal(r.ranks.to_numpy(), stats.rankdata(-means.to_numpy(), axis=1))
    assert r.mean_ranks.index[0] == "d" and r.mean_ranks.is_monotonic_increasing
    fr = stats.friedmanchisquare(*means.to_numpy().T)
    assert (r.statistic, r.p_value) == pytest.approx((fr.statistic, fr.pvalue)) and r.reason is None
    assert r.autorank is None
    pw = r.pairwise.set_index(["a", "b"])
    assert len(pw) == 6                                                            # every pair of 4 cells once
    for (a, b), row in pw.iterrows():
        x, y = means[a].to_numpy(), means[b].to_numpy()
        if np.all(x == y):
            assert row.p_value == 1.0
        else:
            assert row.p_value == pytest.approx(stats.wilcoxon(x, y).pvalue)
    holm = multipletests(pw["p_value"].to_numpy(), method="holm")[1]
    assert pw["p_adj"].to_numpy() == pytest.approx(holm)
    assert (pw["differ"] == (pw["p_adj"] < r.alpha)).all()
    low = average_ranks(means, mode="min")
    assert low.mean_ranks.sort_index().to_numpy() == pytest.approx(5 - r.mean_ranks.sort_index().to_numpy())


def test_average_ranks_says_why_no_test():
    r = average_ranks(suite_means(3)[["a", "b"]])
    assert math.isnan(r.p_value) and "≥ 3 cells" in r.reason and r.autorank is None
    means = suite_means(6)
    means.loc["task2", "c"] = np.nan
    r = average_ranks(means)
    assert r.dropped == ("task2",) and len(r.ranks) == 5 and r.reason is None and len(r.pairwise) == 6
    for studies in (3, 6):
        tied = average_ranks(pd.DataFrame(np.ones((studies, 3)), columns=list("abc")))
        assert "ties" in tied.reason and math.isnan(tied.p_value)


# ------------------------------------------------------------------------------------------ input errors
@pytest.mark.parametrize("kwargs,name", [
    (dict(alpha=0), "alpha"), (dict(alpha=1), "alpha"), (dict(alpha=float("nan")), "alpha"),
    (dict(alpha=True), "alpha"), (dict(alpha="0.05"), "alpha"), (dict(correction="sidak"), "correction"),
    (dict(test="student"), "test"), (dict(min_effect=0), "min_effect"), (dict(min_effect=-1.0), "min_effect"),
    (dict(min_effect=math.inf), "min_effect"), (dict(min_effect=float("nan")), "min_effect"),
    (dict(min_effect=True), "min_effect"), (dict(mode="maximize"), "mode"),
    (dict(test="paired"), "seeds"), (dict(test="paired", seeds={"a": [0, 1, 2]}), "baseline"),
    (dict(test="paired", seeds={"a": [0, 1]}, baseline_seeds=[0, 1, 2]), "seeds of cells"),
    (dict(test="paired", seeds={"a": [0, 0, 1]}, baseline_seeds=[0, 1, 2]), "unique"),
])
def test_compare_to_baseline_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        compare_to_baseline({"a": [1.0, 2.0, 3.0]}, [1.0, 2.0, 3.0], **kwargs)


@pytest.mark.parametrize("cells,baseline,name", [
    ({"a": [[1.0, 2.0]]}, [1.0, 2.0], "cells\\['a'\\]"), ({"a": ["x", "y"]}, [1.0, 2.0], "cells\\['a'\\]"),
    ([1.0, 2.0], [1.0, 2.0], "cells"),
])
def test_compare_to_baseline_rejects_bad_values(cells, baseline, name):
    with pytest.raises(ValueError, match=name):
        compare_to_baseline(cells, baseline)


@pytest.mark.parametrize("call,name", [
    (lambda: probability_of_improvement([[1.0]], [[1.0]], mode="up"), "mode"),
    (lambda: probability_of_improvement([[1.0]], [[1.0]], n_boot=0), "n_boot"),
    (lambda: probability_of_improvement([[1.0]], [[1.0]], confidence=1.0), "confidence"),
    (lambda: probability_of_improvement([[1.0]], [[1.0], [2.0]]), "study_cells"),
    (lambda: average_ranks(suite_means(), mode="best"), "mode"),
    (lambda: average_ranks(suite_means(), alpha=2), "alpha"),
    (lambda: average_ranks(suite_means()[["a"]]), "means"),
    (lambda: mde_table(seeds=(1,)), "seeds"), (lambda: mde_table(alphas=(0,)), "alphas"),
    (lambda: mde_table(test="z"), "test"),
    (lambda: factorial_anova("not a frame", ("a", "b"), "y"), "df"),
])
def test_other_functions_reject_bad_arguments(call, name):
    with pytest.raises(ValueError, match=name):
        call()
