"""The evidence in ablation tables: every column equals scipy / statsmodels (or analysis.stats / sequential)
called directly on the runs' values, on a real sqlite MLflow store written the way the tracker writes it."""
from __future__ import annotations

import io
import json
import math
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind

from analysis import stats as astats
from analysis.stats import decide, plan
from analysis.stats import replay_looks as replay
from analysis.store import load_metric_histories, load_runs
from analysis.stats import average_ranks, factorial_anova, probability_of_improvement
from analysis.costs import COLUMNS as COST_COLUMNS
from analysis.tables import ablation_table, csv_columns, render, render_suite_csv, render_suite_summary

# scipy's own "Precision loss" warning when this file calls it directly on a constant arm (the table's calls
# are checked to be silent with warnings turned into errors)
pytestmark = pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")

BASE = "model.kind=plain"
VALUES = {BASE: [0.80, 0.82, 0.81, 0.83],
          "model.kind=fancy,model.width=2": [0.86, 0.86, 0.88, 0.87],       # ties
          "model.kind=fancy,model.width=4": [0.70, 0.95],                   # n = 2
          "model.kind=fancy,model.width=8": [0.79, 0.81, None, 0.80],       # one FAILED run (seed 2)
          "model.kind=fancy,model.width=16": [0.84, 0.84, 0.84, 0.84]}      # zero variance


def write_runs(uri, name, values, *, baseline=BASE, analysis=None, looks=None, epoch_s=None, peak=None,
               mode="max", launch="L1", extra_tags=None):
    """One FINISHED run per value (FAILED for None), tagged, with params, the metric and an epoch_seconds
    history, like sweeps/runner/tracker.py writes them; seeds are the positions (seed i of every cell)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    exp = c.create_experiment(name)
    now = int(time.time() * 1000)
    for idx, (cell, vals) in enumerate(values.items()):
        for seed, v in (vals.items() if isinstance(vals, dict) else enumerate(vals)):
            tags = {"ablate.cell": cell, "ablate.seed": str(seed), "ablate.launch": launch, "ablate.phase": "final",
                    "ablate.metric": "score", "ablate.mode": mode, "ablate.baseline_cell": baseline,
                    "ablate.cell_index": str(idx), "ablate.n_params": str(100 + idx),
                    "ablate.analysis": json.dumps({**astats_defaults(), **(analysis or {})}),
                    "ablate.metric_modes": json.dumps({"score": mode, "peak_mem_mb": "min"})}
            if looks:
                tags["ablate.looks"] = json.dumps(looks)
                tags["ablate.look"] = str(next(k for k, n in enumerate(looks) if seed < n))
            r = c.create_run(exp, tags={**tags, **(extra_tags or {})})
            params = [Param("seed", str(seed))] + [Param(*kv.split("=")) for kv in cell.split(",")]
            metrics = [Metric("epoch_seconds", (epoch_s or default_epoch)(idx, seed, e), now, e + 1) for e in range(3)]
            if v is not None:
                metrics.append(Metric("score", float(v), now, 3))
                if peak:
                    metrics.append(Metric("peak_mem_mb", peak(idx, seed), now, 3))
            c.log_batch(r.info.run_id, metrics=metrics, params=params)
            c.set_terminated(r.info.run_id, "FINISHED" if v is not None else "FAILED")
    return load_runs(name, uri)


def astats_defaults():
    return {"alpha": 0.05, "correction": "holm", "test": "welch", "min_effect": None, "spending": "obrien_fleming"}


def default_epoch(idx, seed, e):
    return 0.1 + 0.01 * idx + 0.003 * seed + 0.02 * e ** 2


def finite(cell, values=VALUES):
    return np.array([v for v in values[cell] if v is not None], float)


def by_cell(t):
    return t.set_index("cell")


def test_fixed_columns_equal_scipy_and_statsmodels(mlflow_store):
    runs = write_runs(mlflow_store, "tab-fixed", VALUES, peak=lambda i, s: 50.0 + i + s)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                      # nothing may reach the user's terminal
        t = ablation_table(runs)
        text = render(t, "md") + render(t, "latex") + render(t, "csv")
    assert "Traceback" not in text
    rows, base = by_cell(t), finite(BASE)
    defined = [c for c in VALUES if c != BASE and len(finite(c)) > 1 and np.ptp(finite(c)) + np.ptp(base) > 0]
    p = {c: stats.ttest_ind(finite(c), base, equal_var=False).pvalue for c in defined}
    holm = dict(zip(defined, multipletests([p[c] for c in defined], 0.05, method="holm")[1]))
    for cell in VALUES:
        x, r = finite(cell), rows.loc[cell]
        assert r["n"] == len(x) and r["failed"] == (cell.endswith("=8")) and r["running"] == 0
        assert r["mean"] == pytest.approx(x.mean()) and r["std"] == pytest.approx(x.std(ddof=1))
        med = np.median([np.median([default_epoch(list(VALUES).index(cell), s, e) for e in range(3)])
                         for s, v in enumerate(VALUES[cell]) if v is not None])
        assert r["epoch_s"] == pytest.approx(med)
        assert r["peak_mem_mb"] == pytest.approx(np.median([50.0 + list(VALUES).index(cell) + s
                                                            for s, v in enumerate(VALUES[cell]) if v is not None]))
        if cell == BASE:
            assert r["baseline"] and r["delta"] == 0 and r["verdict"] is None and math.isnan(r["p_adj"])
            continue
        assert r["delta"] == pytest.approx(x.mean() - base.mean())
        if cell in defined:
            res = stats.ttest_ind(x, base, equal_var=False)
            assert (r["ci_low_unadj"], r["ci_high_unadj"]) == pytest.approx(tuple(res.confidence_interval(0.95)))
            assert r["p_value"] == pytest.approx(p[cell]) and r["p_adj"] == pytest.approx(holm[cell])
            sd = math.sqrt(((len(x) - 1) * x.var(ddof=1) + (len(base) - 1) * base.var(ddof=1)) / (len(x) + len(base) - 2))
            assert r["hedges_g"] == pytest.approx((1 - 3 / (4 * (len(x) + len(base)) - 9)) * (x.mean() - base.mean()) / sd)
        direct = astats.compare_to_baseline({c: finite(c) for c in VALUES if c != BASE}, base).comparisons[cell]
        assert r["verdict"] == direct.verdict
        assert (r["mde"] == pytest.approx(direct.mde)) or (math.isnan(r["mde"]) and math.isnan(direct.mde))
        assert (pd.isna(r["seeds_needed"]) and direct.seeds_needed is None) or r["seeds_needed"] == direct.seeds_needed
    assert rows.loc["model.kind=fancy,model.width=2", "verdict"] == "better"
    assert t.attrs["footnote"].startswith(f"Welch t-test vs baseline, Holm-adjusted over {len(defined)} cells")


def test_launch_settings_bh_alpha_and_equivalence(mlflow_store):
    vals = {BASE: [0.80, 0.82, 0.81, 0.83, 0.815], "model.kind=fancy,model.width=2": [0.812, 0.818, 0.815, 0.82, 0.81],
            "model.kind=fancy,model.width=4": [0.90, 0.91, 0.89, 0.92, 0.905]}
    t = ablation_table(write_runs(mlflow_store, "tab-bh", vals,
                                  analysis={"correction": "bh", "alpha": 0.1, "min_effect": 0.02}))
    base, cells = np.array(vals[BASE]), [c for c in vals if c != BASE]
    p = [stats.ttest_ind(vals[c], base, equal_var=False).pvalue for c in cells]
    bh = multipletests(p, 0.1, method="fdr_bh")[1]
    for c, want in zip(cells, bh):
        r = by_cell(t).loc[c]
        assert r["p_adj"] == pytest.approx(want)
        ci = stats.ttest_ind(vals[c], base, equal_var=False).confidence_interval(0.9)
        assert (r["ci_low_unadj"], r["ci_high_unadj"]) == pytest.approx(tuple(ci))
    eq = ttost_ind(np.array(vals[cells[0]]), base, -0.02, 0.02, usevar="unequal")[0]
    assert eq < 0.1 and by_cell(t).loc[cells[0], "verdict"] == "equivalent"
    assert by_cell(t).loc[cells[1], "verdict"] == "better"
    md = render(t, "md")
    assert "Δ [adj. CI]" in md and "p (BH)" in md and "Benjamini–Hochberg-adjusted" in md
    other = ablation_table(load_runs("tab-bh", mlflow_store), analysis={"correction": "none"})
    assert by_cell(other).loc[cells[0], "p_adj"] == pytest.approx(p[0])
    with pytest.raises(ValueError, match="unknown keys"):
        ablation_table(load_runs("tab-bh", mlflow_store), analysis={"corection": "bh"})


def test_paired_pairs_on_params_seed_with_a_missing_seed(mlflow_store):
    vals = {BASE: [0.80, 0.83, None, 0.79, 0.85], "model.kind=fancy,model.width=2": [0.82, 0.86, 0.84, 0.80, 0.88],
            "model.kind=fancy,model.width=4": [0.81, None, 0.90, 0.83, 0.84]}
    runs = write_runs(mlflow_store, "tab-paired", vals, analysis={"test": "paired"})
    assert runs["params.seed"].map(type).eq(int).all()
    t = by_cell(ablation_table(runs))
    for cell in list(vals)[1:]:
        common = [s for s in range(5) if vals[cell][s] is not None and vals[BASE][s] is not None]
        a, b = np.array([vals[cell][s] for s in common]), np.array([vals[BASE][s] for s in common])
        res = stats.ttest_rel(a, b)
        assert t.loc[cell, "p_value"] == pytest.approx(res.pvalue)
        assert (t.loc[cell, "ci_low_unadj"], t.loc[cell, "ci_high_unadj"]) == pytest.approx(
            tuple(res.confidence_interval(0.95)))
        assert t.loc[cell, "delta"] == pytest.approx((a - b).mean())
    assert "paired t-test on seed-matched runs" in render(ablation_table(runs), "md")


def test_missing_baseline_and_all_failed(mlflow_store):
    vals = {c: v for c, v in VALUES.items() if c != BASE}
    t = ablation_table(write_runs(mlflow_store, "tab-nobase", vals))       # narrowed away by --set
    assert t[["delta", "p_adj", "verdict"]].isna().all().all() and not t["baseline"].any()
    assert "is not among these runs" in render(t, "md") and "no comparisons" in render(t, "latex")
    failed = {BASE: [None, None], "model.kind=fancy,model.width=2": [0.8, 0.9]}
    t = ablation_table(write_runs(mlflow_store, "tab-basefail", failed))
    assert "has no FINISHED run" in render(t, "md") and t["verdict"].isna().all()
    every = {BASE: [None, None], "model.kind=fancy,model.width=2": [None]}
    t = ablation_table(write_runs(mlflow_store, "tab-allfail", every))
    assert t["n"].tolist() == [0, 0] and t["failed"].tolist() == [2, 1]
    assert render(t, "csv").count("\n") == 3 and "n/a" in render(t, "md")


def test_csv_has_exactly_the_named_columns(mlflow_store):
    runs = write_runs(mlflow_store, "tab-csv", VALUES)
    t = ablation_table(runs)
    head = ["model.kind", "model.width", "n", "failed", "running", "params", "mean", "std", "delta", "ci_low",
            "ci_high", "p_value", "p_adj", "hedges_g", "mde", "seeds_needed", "verdict", "ci_level", "ci_low_unadj",
            "ci_high_unadj", "p_eq_adj", "seeds_basis", "seeds_low", "seeds_high", "epoch_s", "best", "baseline"]
    frame = pd.read_csv(io.StringIO(render(t, "csv")), keep_default_na=False)
    assert list(frame.columns) == head + list(COST_COLUMNS) and len(frame) == len(VALUES)   # analysis/costs.py
    assert frame["seeds_needed"].astype(str).str.fullmatch(r"\d*").all()          # integers, not 12.0
    runs_p = write_runs(mlflow_store, "tab-csv-peak", VALUES, peak=lambda i, s: 1.0)
    assert csv_columns(ablation_table(runs_p)) == head[:-2] + ["peak_mem_mb", "best", "baseline", *COST_COLUMNS]
    adaptive = ablation_table(write_runs(mlflow_store, "tab-csv-seq", {BASE: [0.1, 0.2, 0.3],
                                                                       "model.kind=fancy": [0.4, 0.5, 0.6]},
                                         looks=[3, 5]))
    assert csv_columns(adaptive) == head[:1] + head[2:] + ["look", "p_bound", *COST_COLUMNS]


def test_markdown_and_latex_show_interval_verdict_and_footnote(mlflow_store):
    t = ablation_table(write_runs(mlflow_store, "tab-md", VALUES))
    md, tex = render(t, "md"), render(t, "latex")
    r = by_cell(t).loc["model.kind=fancy,model.width=8"]
    want = f"{r['delta']:+.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]".replace("-", "−")
    assert want in md, md
    assert md.splitlines()[0].startswith("| model.kind | model.width | score ↑ (mean ± std) | n | failed | params")
    assert "Δ [adj. CI]" in md and "p (Holm)" in md and "| better" in md and "undecided (~" in md
    assert "_Welch t-test vs baseline, Holm-adjusted over" in md
    assert "**0.8675 ± 0.0096**" in md                                     # best cell in bold
    assert r"\textbf{0.8675 $\pm$ 0.0096}" in tex and "$-$" in tex and "% Welch t-test" in tex
    with pytest.raises(ValueError, match="format must be"):
        render(t, "html")


def test_anova_printed_for_a_complete_grid_and_refused_for_a_conditional_one(mlflow_store):
    rng = np.random.default_rng(5)
    grid = {f"a={a},b={b}": list(rng.normal(a + 0.8 * b + 0.5 * a * b, 0.4, 4)) for a in (0, 1) for b in (0, 1)}
    runs = write_runs(mlflow_store, "tab-anova", grid, baseline="a=0,b=0")
    t = ablation_table(runs)
    df = pd.DataFrame([{"a": int(c[2]), "b": int(c[6]), "y": v} for c, vs in grid.items() for v in vs])
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    direct = anova_lm(ols("y ~ C(a) * C(b)", df).fit(), typ=2)
    res = t.attrs["anova"]
    assert res.table is not None
    np.testing.assert_allclose(res.table["F"].to_numpy()[:3], direct["F"].to_numpy()[:3], rtol=1e-10)
    md = render(t, "md")
    line = [ln for ln in md.splitlines() if "ANOVA" in ln]
    assert len(line) == 1 and f"a × b: F(1, 12) = {direct['F'].iloc[2]:.2f}" in line[0]
    assert f"p = {direct['PR(>F)'].iloc[0]:.3f}" in line[0] or f"{direct['PR(>F)'].iloc[0]:.2g}" in line[0]
    tex = render(t, "latex")
    assert tex.count(r"\begin{tabular}") == 2 and r"a $\times$ b & 1 &" in tex
    cond = ablation_table(write_runs(mlflow_store, "tab-anova-cond", VALUES))
    lines = [ln for ln in render(cond, "md").splitlines() if "ANOVA" in ln]
    assert lines == ["_ANOVA not computed: incomplete grid: axis model.width is absent in some runs "
                     "(a conditional axis)_"]
    assert factorial_anova(cond.assign(y=1.0), ["model.kind"], "y").table is None   # one axis: the stats refuse


def _suite(mlflow_store, k, prefix, mode="max"):
    rng = np.random.default_rng(11)
    out = []
    for i in range(k):
        cells = {f"m={m}": list(rng.normal(m * (0.5 + 0.3 * i), 1.0, 5)) for m in (0, 1, 2, 3)}
        if i == 1:
            cells.pop("m=3")                                               # a cell only some studies have
        name = f"{prefix}.t{i}"
        out.append((name, ablation_table(write_runs(mlflow_store, name, cells, baseline="m=0", mode=mode))))
    return out


def test_suite_summary_equals_suite_stats(mlflow_store):
    tables = _suite(mlflow_store, 3, "suiteA")
    frame = pd.read_csv(io.StringIO(render_suite_summary(tables, "csv")))
    assert list(frame["cell"]) == ["m=0", "m=1", "m=2", "m=3"]
    for _, row in frame[frame["cell"] != "m=0"].iterrows():
        have = [t for _, t in tables if row["cell"] in set(t["cell"])]
        want = probability_of_improvement([list(t.attrs["values"][row["cell"]].values()) for t in have],
                                          [list(t.attrs["values"]["m=0"].values()) for t in have])
        assert (row["poi"], row["poi_low"], row["poi_high"]) == pytest.approx((want.estimate, want.ci_low, want.ci_high))
        assert row["poi_studies"] == len(have)
    means = pd.DataFrame([[np.mean(list(t.attrs["values"][c].values())) for c in ("m=0", "m=1", "m=2")]
                          for _, t in tables], columns=["m=0", "m=1", "m=2"])
    ranks = average_ranks(means)
    assert frame.set_index("cell")["mean_rank"].iloc[:3].tolist() == pytest.approx(ranks.mean_ranks[["m=0", "m=1", "m=2"]].tolist())
    assert math.isnan(frame.set_index("cell").loc["m=3", "mean_rank"])                 # not in every study
    md = render_suite_summary(tables, "md")
    assert f"χ²(2) = {ranks.statistic:.2f}" in md and "| baseline" in md and "(2 studies)" in md
    assert "needs >= 2 studies" in render_suite_summary(tables[:1], "md")
    assert r"\begin{tabular}" in render_suite_summary(tables, "latex")
    stacked = pd.read_csv(io.StringIO(render_suite_csv(tables)), keep_default_na=False)
    assert list(stacked.columns[:2]) == ["study", "m"] and len(stacked) == sum(len(t) for _, t in tables)
    assert set(stacked["verdict"]) <= {"", "better", "worse", "equivalent", "undecided"}
    with pytest.raises(ValueError, match="format must be"):
        render_suite_summary(tables, "html")
    with pytest.raises(ValueError, match="study_name, table"):
        render_suite_summary([t for _, t in tables], "md")


def test_suite_rank_diagram_needs_five_studies(mlflow_store, tmp_path):
    from analysis.plots import plot_suite_ranks

    tables = _suite(mlflow_store, 6, "suiteB")
    out = plot_suite_ranks(tables, tmp_path / "ranks.png")
    assert out == tmp_path / "ranks.png" and out.stat().st_size > 5000
    reason = plot_suite_ranks(tables[:3], tmp_path / "no.png")
    assert isinstance(reason, str) and "5 studies" in reason and not (tmp_path / "no.png").exists()


def _walk(design, cells, base, mode, min_effect, end):
    """decide() look by look by hand: the replay's reference."""
    out = {}
    for k in range(end + 1):
        n = design.looks[k]
        b = {s: v for s, v in base.items() if s < n}
        for c, vals in cells.items():
            if c in out and out[c].verdict != "continue":
                continue
            x = {s: v for s, v in vals.items() if s < n}
            out[c] = decide(design, k, list(x.values()), list(b.values()), mode=mode, min_effect=min_effect,
                            cell_seeds=list(x), base_seeds=list(b))
    return out


@pytest.mark.parametrize("test", ["welch", "paired"])
def test_replay_equals_decide_look_by_look(test):
    looks = [3, 5, 8]
    design = plan(looks, alpha=0.05, n_cells=3, test=test)
    rng = np.random.default_rng(2)
    cells = {"big": dict(enumerate(rng.normal(10, 1, 8))), "null": dict(enumerate(rng.normal(0, 1, 8))),
             "small": dict(enumerate(rng.normal(0.3, 1, 8)))}
    cells["null"][6] = float("nan")                                   # a failed run
    base = dict(enumerate(rng.normal(0, 1, 8)))
    for end in range(len(looks)):
        got = replay(design, cells, base, mode="max", min_effect=1.5, upto_look=end)
        assert got == _walk(design, cells, base, "max", 1.5, end)
    full = replay(design, cells, base, mode="max", min_effect=1.5)
    assert full == _walk(design, cells, base, "max", 1.5, len(looks) - 1)
    assert full["big"].verdict == "better" and full["big"].look < 2
    assert all(d.verdict != "continue" for d in full.values())
    assert replay(design, cells, base, mode="min", upto_look=0)["big"].verdict == "continue"
    for bad, match in [(dict(upto_look=3), "upto_look"), (dict(upto_look=True), "upto_look")]:
        with pytest.raises(ValueError, match=match):
            replay(design, cells, base, mode="max", **bad)
    with pytest.raises(ValueError, match="seed"):
        replay(design, {"x": {-1: 0.3}}, base, mode="max")
    with pytest.raises(ValueError, match="design"):
        replay(looks, cells, base, mode="max")
    with pytest.raises(ValueError, match="baseline"):
        replay(design, cells, [0.1, 0.2], mode="max")
    diverged = {**cells, "null": {**cells["null"], 5: math.inf}}     # ±inf is dropped like a failed run (issue 21)
    dropped = {**cells, "null": {s: v for s, v in cells["null"].items() if s != 5}}
    assert replay(design, diverged, base, mode="max") == replay(design, dropped, base, mode="max")


def test_adaptive_table_shows_the_replay(mlflow_store):
    looks = [3, 5, 8]
    rng = np.random.default_rng(4)
    base = dict(enumerate(rng.normal(0, 1, 8)))
    big = dict(enumerate(rng.normal(5, 1, 5)))                # stopped after look 1 (5 seeds) in this draw
    null = dict(enumerate(rng.normal(0, 1, 8)))
    vals = {BASE: list(base.values()), "model.kind=fancy,model.width=2": list(big.values()),
            "model.kind=fancy,model.width=4": list(null.values()),
            "model.kind=fancy,model.width=8": [None, None, None]}                 # every run FAILED
    t = ablation_table(write_runs(mlflow_store, "tab-seq", vals, looks=looks, analysis={"min_effect": 0.5}))
    design = plan(looks, alpha=0.05, n_cells=3)                                 # the failed cell is one of m
    want = replay(design, {"model.kind=fancy,model.width=2": big, "model.kind=fancy,model.width=4": null,
                           "model.kind=fancy,model.width=8": {}}, base, mode="max", min_effect=0.5)
    rows = by_cell(t)
    for cell, d in want.items():
        r = rows.loc[cell]
        assert (r["look"], r["verdict"]) == (d.look, d.verdict)
        assert (r["delta"], r["ci_low"], r["ci_high"], r["p_value"], r["p_bound"]) == pytest.approx(
            (d.delta, d.rci_low, d.rci_high, d.p_nominal, d.p_bound), nan_ok=True)
        assert pd.isna(r["seeds_needed"]) == (d.seeds_needed is None or not math.isfinite(d.seeds_needed))
    assert rows.loc["model.kind=fancy,model.width=2", "verdict"] == "better"
    assert t.attrs["design"] == "adaptive" and t.attrs["footnote"].startswith(design.footnote())
    assert "boundaries calibrated for the seeds they had" in t.attrs["footnote"]   # the all-failed cell (issue 21)
    md = render(t, "md")
    assert "Δ [RCI]" in md and "| 2/3 " in md and design.footnote() in md
    other = ablation_table(load_runs("tab-seq", mlflow_store), metric="epoch_seconds", mode="min")
    assert other.attrs["design"] == "fixed" and "descriptive" in other.attrs["footnote"]
    # a launch still running (only look 0 ran): cells are "continue", and the footnote says so
    part = {c: v[:3] for c, v in vals.items()}
    t0 = ablation_table(write_runs(mlflow_store, "tab-seq-part", part, looks=looks))
    assert set(t0.loc[~t0["baseline"], "verdict"]) <= {"continue", "better", "worse", "equivalent"}
    assert "has run 1 of 3 looks" in t0.attrs["footnote"]


def test_adaptive_table_replays_the_correction_the_launch_was_decided_with(mlflow_store):
    """Holm when the runs say so; Bonferroni for a launch without ablate.looks_correction (from before the
    step-down existed, whose runner used Bonferroni although its analysis said correction: holm)."""
    looks, rng = [3, 5, 8], np.random.default_rng(9)
    base = dict(enumerate(rng.normal(0, 1, 8)))
    cells = {"model.kind=fancy,model.width=2": dict(enumerate(rng.normal(9, 1, 3))),     # decided at look 0
             "model.kind=fancy,model.width=4": dict(enumerate(rng.normal(2.2, 1, 8)))}
    vals = {BASE: list(base.values()), **{c: list(v.values()) for c, v in cells.items()}}
    want = {corr: replay(plan(looks, alpha=0.05, n_cells=2, spending="pocock", correction=corr), cells, base,
                         mode="max") for corr in ("holm", "bonferroni")}
    mid = "model.kind=fancy,model.width=4"
    assert want["holm"][mid].p_bound > want["bonferroni"][mid].p_bound, "the draw must tell the two apart"
    for name, tag, corr in (("tab-holm", {"ablate.looks_correction": "holm"}, "holm"), ("tab-old", {}, "bonferroni")):
        t = ablation_table(write_runs(mlflow_store, name, vals, looks=looks, analysis={"spending": "pocock"},
                                      extra_tags=tag))
        r = by_cell(t).loc[mid]
        assert (r["verdict"], r["look"], r["p_bound"]) == (want[corr][mid].verdict, want[corr][mid].look,
                                                           pytest.approx(want[corr][mid].p_bound)), name
        assert t.attrs["analysis"]["correction"] == corr
        assert ("Holm step-down" in t.attrs["footnote"]) == (corr == "holm")


def test_histories_are_read_in_bulk_and_match_per_run_reads(mlflow_store):
    from mlflow.tracking import MlflowClient

    runs = write_runs(mlflow_store, "tab-hist", VALUES)
    got = load_metric_histories(mlflow_store, runs["run_id"], "epoch_seconds")
    c = MlflowClient(mlflow_store)
    for rid in runs["run_id"]:
        want = [m.value for m in sorted(c.get_metric_history(rid, "epoch_seconds"), key=lambda m: m.step)]
        np.testing.assert_allclose(got[rid], want)
    assert load_metric_histories(mlflow_store, runs["run_id"], "nope") == {}
    assert load_runs("tab-hist", mlflow_store, epoch_times=False)["epoch_s"].isna().all()
    with pytest.raises(ValueError, match="metric"):
        load_metric_histories(mlflow_store, [], "")


def test_seed_correlation_estimates_the_shared_share_of_the_variance():
    from analysis import table_evidence as ev

    rng = np.random.default_rng(17)
    shared = rng.standard_normal(400)                      # seed i's effect, common to every cell
    vals = {c: {s: float(np.sqrt(0.6) * shared[s] + np.sqrt(0.4) * rng.standard_normal()) for s in range(400)}
            for c in ("base", "x", "y")}
    vals["few"] = {s: 1.0 + s for s in range(4)}          # 4 shared seeds: no estimate
    vals["flat"] = {s: 2.0 for s in range(10)}            # no variance: no estimate
    r = ev.seed_correlation(vals, "base")
    assert set(r) == {"x", "y"} and all(n == 400 for _, n in r.values())
    for c in ("x", "y"):
        want = stats.pearsonr([vals[c][s] for s in range(400)], [vals["base"][s] for s in range(400)])[0]
        assert r[c][0] == pytest.approx(want, rel=1e-12) and abs(r[c][0] - 0.6) < 0.1
    sub = {c: {s: v for s, v in d.items() if s in (1, 3, 5, 7, 9, 11)} for c, d in vals.items()}
    assert ev.seed_correlation({**sub, "x": {s: vals["x"][s] for s in range(12)}}, "base")["x"][1] == 6
    paired, welch = ev.seed_correlation_note(vals, "base", "paired"), ev.seed_correlation_note(vals, "base", "welch")
    assert "over 400 shared seeds" in paired[0] and "pairing gains" in paired[0]
    assert "analysis.test: paired would use it" in welch[0]
    noise = {c: {s: float(rng.standard_normal()) for s in range(400)} for c in ("base", "x")}
    assert "paired would" not in ev.seed_correlation_note(noise, "base", "welch")[0]
    pooled = {c: {f"l1:{s}": v for s, v in d.items()} for c, d in vals.items()}
    assert ev.seed_correlation_note(pooled, "base", "welch") == []   # pooled launches repeat seeds
