"""Issue 21: random store-like inputs (n = 0, 1, 2, ties, zero variance, huge and tiny values, NaN, ±inf) through
every public statistic and the table's adaptive replay: nothing raises, and every decision quantity is defined
(p in [0, 1], a verdict, an interval that is ordered, never NaN)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.stats import (average_ranks, compare_to_baseline, decide, plan, probability_of_improvement,
                            replay_looks)

VALUE = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, 1e12, -1e12, 1e-12]),
                  st.floats(-1e6, 1e6, allow_nan=False), st.floats(-1e300, 1e300, allow_nan=False))
ARM = st.lists(VALUE, min_size=0, max_size=7)
CHOICE = st.sampled_from(["holm", "bonferroni", "bh", "none", "dunnett"])
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decided(c):
    assert 0.0 <= c.p_value <= 1.0 and 0.0 <= c.p_adj <= 1.0 and 0.0 <= c.p_equivalence <= 1.0
    assert c.verdict in ("better", "worse", "equivalent", "undecided")
    assert not math.isnan(c.ci_low) and not math.isnan(c.ci_high) and c.ci_low <= c.ci_high
    assert not math.isnan(c.mde) and c.seeds_needed is None or c.seeds_needed >= 2


@FAST
@given(cells=st.lists(ARM, min_size=1, max_size=4), base=ARM, correction=CHOICE,
       min_effect=st.one_of(st.none(), st.floats(1e-3, 1e3)), paired=st.booleans())
def test_compare_to_baseline_never_raises_or_leaves_a_decision_undefined(cells, base, correction, min_effect,
                                                                         paired):
    kw = {}
    if paired:
        kw = dict(test="paired", seeds={f"c{i}": list(range(len(v))) for i, v in enumerate(cells)},
                  baseline_seeds=list(range(len(base))))
    res = compare_to_baseline({f"c{i}": v for i, v in enumerate(cells)}, base, correction=correction,
                              min_effect=min_effect, **kw)
    for c in res.comparisons.values():
        decided(c)
    assert isinstance(res.footnote(), str)


@FAST
@given(cell=st.lists(VALUE, max_size=12), base=st.lists(VALUE, max_size=12), look=st.integers(0, 3),
       min_effect=st.one_of(st.none(), st.floats(1e-3, 1e3)))
def test_decide_and_replay_never_raise(cell, base, look, min_effect):
    d = plan([3, 5, 8, 12], n_cells=2, spending="pocock", correction="holm", test="paired")
    n = d.looks[look]
    r = decide(d, look, cell[:n], base[:n], mode="max", min_effect=min_effect)
    assert r.verdict in ("continue", "better", "worse", "equivalent", "undecided")
    assert 0.0 <= r.p_nominal <= 1.0 and not math.isnan(r.rci_low) and not math.isnan(r.rci_high)
    got = replay_looks(d, {"a": dict(enumerate(cell)), "b": dict(enumerate(base[::-1]))}, dict(enumerate(base)),
                       mode="min", min_effect=min_effect)
    assert all(v.verdict != "continue" for v in got.values())


@FAST
@given(studies=st.lists(st.tuples(ARM, ARM), min_size=1, max_size=4))
def test_probability_of_improvement_never_raises(studies):
    r = probability_of_improvement([a for a, _ in studies], [b for _, b in studies], n_boot=50)
    assert 0.0 <= r.estimate <= 1.0 and r.ci_low <= r.ci_high


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])   # ~0.5 s per example
@given(rows=st.lists(st.lists(VALUE, min_size=3, max_size=3), min_size=1, max_size=7))
def test_average_ranks_never_raises(rows):
    r = average_ranks(pd.DataFrame(rows, columns=["a", "b", "c"]))
    assert r.pairwise is not None and ((r.pairwise["p_value"] >= 0) & (r.pairwise["p_value"] <= 1)).all()
    assert np.isfinite(r.ranks.to_numpy()).all()
