"""analysis.external / analysis.compare: runs ablate did not launch (a DataFrame, a CSV, an MLflow experiment
logged by a plain script into a real sqlite store) → the same table, plot and report as ablate's own runs.
Numbers are checked against scipy and statsmodels computed here from the raw values, by column name."""
from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

import analysis
from analysis.external import MappingError, RunMapping, to_runs
from tests.helpers import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "runs.csv"
SHIFT = {"resnet": 0.0, "vit": 0.05, "mlp": -0.3}


def runs_frame(seeds=5, noise=0.02, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame([{"arch": a, "lr": 0.1, "seed": s, "acc": 0.8 + d + rng.normal(0, noise)}
                         for a, d in SHIFT.items() for s in range(seeds)])


def one_line_error(fn, *words):
    with pytest.raises(MappingError) as e:
        fn()
    msg = str(e.value)
    assert "\n" not in msg and all(w in msg for w in words), msg
    return msg


def test_compare_gives_welch_and_holm_of_the_raw_values():
    df = runs_frame()
    res = analysis.compare(df, cells=["arch"], seed="seed", metric="acc", mode="max", baseline={"arch": "resnet"})
    t = res.table.set_index("arch")
    vals = {a: df.loc[df["arch"] == a, "acc"].to_numpy() for a in SHIFT}
    others = ["vit", "mlp"]
    p = [stats.ttest_ind(vals[a], vals["resnet"], equal_var=False).pvalue for a in others]
    for a, pk, adj in zip(others, p, multipletests(p, 0.05, method="holm")[1]):
        assert t.loc[a, "mean"] == pytest.approx(vals[a].mean(), rel=1e-12)
        assert t.loc[a, "std"] == pytest.approx(vals[a].std(ddof=1), rel=1e-12)
        assert t.loc[a, "delta"] == pytest.approx(vals[a].mean() - vals["resnet"].mean(), rel=1e-12)
        assert t.loc[a, "p_value"] == pytest.approx(pk, rel=1e-9)
        assert t.loc[a, "p_adj"] == pytest.approx(adj, rel=1e-9)
        assert t.loc[a, "ci_low"] < t.loc[a, "delta"] < t.loc[a, "ci_high"]
    assert t.loc["mlp", "verdict"] == "worse" and t.loc["vit", "verdict"] == "better"
    assert bool(t.loc["resnet", "baseline"]) and (t["n"] == 5).all()
    assert res.table.attrs["metric"] == "acc" and res.table.attrs["baseline_cell"] == "arch=resnet"
    md = res.to_markdown()
    assert md == str(res) == res._repr_markdown_() and "Holm" in md and "worse" in md
    assert res.to_latex().startswith(r"\begin{tabular}") and res.render("latex") == res.to_latex()
    csv = pd.read_csv(io.StringIO(res.to_csv()))
    assert list(csv["arch"]) == ["resnet", "vit", "mlp"]           # the order the runs came in


def test_mode_min_reverses_the_verdicts():
    df = runs_frame().rename(columns={"acc": "err"})
    res = analysis.compare(df, cells="arch", metric="err", mode="min", baseline={"arch": "resnet"})
    t = res.table.set_index("arch")
    assert t.loc["mlp", "verdict"] == "better" and t.loc["vit", "verdict"] == "worse"
    assert bool(t.loc["mlp", "best"])


def test_csv_path_and_dataframe_give_the_same_table():
    kw = dict(cells=["loss", "alpha"], seed="seed", metric="test_acc", baseline={"loss": "hinge", "alpha": 0.0001})
    a, b = analysis.compare(EXAMPLE, **kw), analysis.compare(pd.read_csv(EXAMPLE), **kw)
    for fmt in ("md", "latex", "csv"):
        assert a.render(fmt) == b.render(fmt)
    assert "Two-way ANOVA" in a.to_markdown() and "worse" in a.to_markdown()
    assert a.source.startswith("CSV file") and b.source == "a pandas DataFrame"
    assert a.mapping == b.mapping == ("cells: loss, alpha; seed: seed; metric: test_acc (max); "
                                      "baseline: loss=hinge,alpha=0.0001; duplicates: refuse")


def test_conditional_cell_columns_and_ints_read_as_floats(tmp_path):
    # a CSV where "width" exists only for the fancy model: pandas reads 2.0/4.0/NaN, cells are labelled 2, 4
    rows = [{"kind": "plain", "width": None, "seed": s, "score": 1.0 + 0.01 * s} for s in range(3)]
    rows += [{"kind": "fancy", "width": w, "seed": s, "score": 1.2 + 0.01 * s + w / 100} for w in (2, 4)
             for s in range(3)]
    path = tmp_path / "runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    res = analysis.compare(path, cells=["kind", "width"], metric="score", baseline={"kind": "plain"})
    assert list(res.table["cell"]) == ["kind=plain", "kind=fancy,width=2", "kind=fancy,width=4"]
    assert res.table["width"].tolist()[1:] == [2, 4] and res.table["width"].iloc[0] is None
    assert res.table.attrs["baseline_cell"] == "kind=plain"


def test_a_status_column_counts_failed_and_unfinished_runs():
    df = runs_frame().assign(State="finished")
    df.loc[0, "State"], df.loc[1, "State"], df.loc[5, "State"] = "crashed", "failed", "running"
    df.loc[0, "acc"] = np.nan
    t = analysis.compare(df, cells=["arch"], metric="acc", baseline={"arch": "resnet"}).table.set_index("arch")
    assert (t.loc["resnet", "n"], t.loc["resnet", "failed"], t.loc["resnet", "running"]) == (3, 2, 0)
    assert (t.loc["vit", "n"], t.loc["vit", "running"]) == (4, 1)
    one_line_error(lambda: analysis.compare(df.assign(State="ok"), cells=["arch"], metric="acc"),
                   "status column 'State' holds OK, which is not a run status", "allowed: finished")
    # without a status column a run with no value is counted nowhere, and said so under the table
    df = runs_frame()
    df.loc[0, "acc"] = np.nan
    res = analysis.compare(df, cells=["arch"], metric="acc", baseline={"arch": "resnet"})
    assert res.table.set_index("arch").loc["resnet", "n"] == 4
    assert "1 finished run(s) have no value of acc and are not counted" in res.to_markdown()


def test_duplicate_cell_and_seed_refused_or_resolved():
    df = runs_frame()
    extra = df.iloc[[0, 5]].assign(acc=[0.99, 0.10])          # a second run of (resnet, 0) and of (vit, 0)
    dup = pd.concat([df, extra], ignore_index=True)
    kw = dict(cells=["arch"], metric="acc", baseline={"arch": "resnet"})
    msg = one_line_error(lambda: analysis.compare(dup, **kw), "2 runs share cell [arch=resnet] and seed 0",
                         "row 0", "row 15", "1 more", "--duplicates keep-last", "best")
    assert "refuse" not in msg or "--where" in msg
    last = analysis.compare(dup, duplicates="keep-last", **kw)
    assert last.table.attrs["values"]["arch=resnet"][0] == 0.99 and last.table.attrs["values"]["arch=vit"][0] == 0.10
    assert "--duplicates keep-last: 2 run(s) repeating a (cell, seed) of 2 pair(s) left out" in last.to_markdown()
    best = analysis.compare(dup, duplicates="best", **kw).table.attrs["values"]
    assert best["arch=resnet"][0] == 0.99 and best["arch=vit"][0] == df.loc[5, "acc"]
    worst = analysis.compare(dup, duplicates="best", mode="min", **kw).table.attrs["values"]
    assert worst["arch=resnet"][0] == df.loc[0, "acc"] and worst["arch=vit"][0] == 0.10


def test_where_filters_a_csv_with_a_pandas_query():
    df = pd.concat([runs_frame(), runs_frame().assign(lr=0.01)], ignore_index=True)
    res = analysis.compare(df, cells=["arch"], metric="acc", baseline={"arch": "resnet"}, where="lr > 0.05")
    assert (res.table["n"] == 5).all()
    one_line_error(lambda: analysis.compare(df, cells=["arch"], metric="acc", where="lr > 5"),
                   "selects none of the 30 runs")
    one_line_error(lambda: analysis.compare(df, cells=["arch"], metric="acc", where="lrr > 5"),
                   "lrr", "not a pandas query", "columns present: arch, lr, seed, acc")


def test_prefixed_columns_are_found_by_their_bare_names():
    # an MLflow-style frame: cells as params, the seed logged as a metric (3.0), the metric under metrics.
    df = runs_frame().rename(columns={"arch": "params.arch", "acc": "metrics.acc"})
    df["metrics.seed"] = df.pop("seed").astype(float)
    res = analysis.compare(df, cells=["arch"], metric="acc", baseline={"arch": "resnet"})
    assert res.runs.attrs["external"]["columns"] == {"arch": "params.arch", "seed": "metrics.seed",
                                                     "metric": "metrics.acc"}
    assert list(res.table["cell"]) == ["arch=resnet", "arch=vit", "arch=mlp"] and (res.table["n"] == 5).all()
    assert res.runs["seed"].tolist()[:5] == [0, 1, 2, 3, 4]


def test_seed_labels_that_are_not_integers_are_numbered():
    df = runs_frame().assign(seed=lambda d: "run-" + d["seed"].astype(str))
    res = analysis.compare(df, cells=["arch"], metric="acc", baseline={"arch": "resnet"}, analysis={"test": "paired"})
    assert "numbered 0–4 in sorted order" in res.to_markdown() and "paired" in res.table.attrs["footnote"].lower()
    assert sorted(res.runs["seed"].unique()) == [0, 1, 2, 3, 4]


def test_baseline_matching():
    df = runs_frame(seeds=2)
    df = pd.concat([df, df.assign(lr=0.01)], ignore_index=True)
    kw = dict(cells=["arch", "lr"], metric="acc")
    assert analysis.compare(df, baseline={"arch": "resnet", "lr": "0.1"}, **kw).table.attrs["baseline_cell"] \
        == "arch=resnet,lr=0.1"                                    # a value given as text matches the number
    one_line_error(lambda: analysis.compare(df, baseline={"arch": "resnet"}, **kw),
                   "matches 2 cells", "[arch=resnet,lr=0.1]", "[arch=resnet,lr=0.01]")
    one_line_error(lambda: analysis.compare(df, baseline={"arch": "vgg"}, **kw),
                   "baseline arch=vgg matches no cell", "arch has resnet, vit, mlp")
    one_line_error(lambda: analysis.compare(df, baseline={"depth": 3}, **kw),
                   "baseline column 'depth' is not a cell column", "cell columns: arch, lr")
    prefixed = df.rename(columns={"arch": "params.arch"})
    assert analysis.compare(prefixed, cells=["params.arch", "lr"], metric="acc", baseline={"arch": "vit", "lr": 0.1}
                            ).table.attrs["baseline_cell"] == "params.arch=vit,lr=0.1"
    res = analysis.compare(df, **kw)
    assert "no baseline given" in res.to_markdown() and res.table["verdict"].isna().all()


@pytest.mark.parametrize("kw, words", [
    (dict(cells=["archx"]), ("cell column 'archx'", "columns present: arch, lr, seed, acc", "did you mean 'arch'")),
    (dict(seed="run_seed"), ("seed column 'run_seed'", "columns present: arch, lr, seed, acc")),
    (dict(metric="accuracy"), ("metric 'accuracy'", "columns present")),
    (dict(cells=["seed"]), ("cell column 'seed'", "name the table uses itself")),
    (dict(cells=["lr", "lr"]), ("name a column twice",)),
    (dict(cells=["acc"]), ("both a cell column and the metric",)),
    (dict(seed="acc"), ("both the seed column and the metric",)),
    (dict(mode="maximise"), ("mode 'maximise'", "allowed: max")),
    (dict(duplicates="first"), ("duplicates 'first'", "refuse, keep-last, best")),
    (dict(analysis={"corection": "bh"}), ("unknown keys ['corection']",)),
    (dict(analysis={"alpha": 2}), ("alpha 2", "(0, 1)")),
])
def test_bad_mappings_are_one_line_errors(kw, words):
    args = {**dict(cells=["arch"], seed="seed", metric="acc"), **kw}
    one_line_error(lambda: analysis.compare(runs_frame(), **args), *words)


def test_missing_and_non_numeric_values_are_named():
    df = runs_frame().astype({"acc": object})
    df.loc[3, "acc"], df.loc[7, "acc"] = "oops", "n/a?"
    one_line_error(lambda: analysis.compare(df, cells=["arch"], metric="acc"),
                   "metric 'acc' (column 'acc') is not numeric", "'oops'", "in 2 of 15 runs", "row 3",
                   "numeric columns present: lr, seed")
    df = runs_frame().astype({"seed": object})
    df.loc[4, "seed"] = None
    one_line_error(lambda: analysis.compare(df, cells=["arch"], metric="acc"),
                   "seed column 'seed' is empty in 1 of 15 runs (row 4)", "--where")
    df = runs_frame().astype({"arch": object})
    df.loc[2, "arch"] = None
    one_line_error(lambda: analysis.compare(df, cells=["arch"], metric="acc"),
                   "the cell columns arch are all empty in 1 of 15 runs (row 2)")
    empty = pd.DataFrame({"arch": [None], "seed": [None], "acc": [None]})
    one_line_error(lambda: analysis.compare(empty, cells=["arch"], metric="acc"), "none of the 1 runs has a value")
    one_line_error(lambda: analysis.compare(runs_frame().iloc[:0], cells=["arch"], metric="acc"), "holds no runs")
    one_line_error(lambda: to_runs([1, 2], RunMapping(cells=["a"], metric="m")), "must be a pandas DataFrame")


def _plain_script_runs(uri: str, name: str, with_parent: bool = False) -> pd.DataFrame:
    """What a plain script logs (no ablate): params and a per-epoch metric, one run per (arch, seed)."""
    import mlflow

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(name)
    df = runs_frame(seeds=3)
    if with_parent:
        with mlflow.start_run(run_name="sweep parent"):
            pass
    for _, r in df.iterrows():
        with mlflow.start_run():
            mlflow.log_params({"model.arch": r["arch"], "lr": r["lr"], "seed": r["seed"]})
            for step, v in enumerate([r["acc"] - 0.1, r["acc"] - 0.05, r["acc"]]):
                mlflow.log_metric("acc", v, step=step)
    mlflow.set_tracking_uri(before)
    return df


def test_an_mlflow_experiment_of_a_plain_script(tmp_path, mlflow_store):
    import mlflow

    uri = mlflow_store                   # the session's store (creating one takes seconds); experiments apart by name
    df = _plain_script_runs(uri, "plain", with_parent=True)
    before = mlflow.get_tracking_uri()
    res = analysis.compare(experiment="plain", tracking_uri=uri, cells=["model.arch"], metric="acc",
                           baseline={"model.arch": "resnet"})
    assert mlflow.get_tracking_uri() == before                   # a notebook's own store is put back
    ref = analysis.compare(df.rename(columns={"arch": "model.arch"}), cells=["model.arch"], metric="acc",
                           baseline={"model.arch": "resnet"})
    got, want = res.table.set_index("cell"), ref.table.set_index("cell")
    for col in ("n", "mean", "std", "delta", "ci_low", "ci_high", "p_value", "p_adj"):
        np.testing.assert_allclose(got[col].astype(float), want.loc[got.index, col].astype(float), rtol=1e-12)
    assert "1 run(s) with no cell, seed or acc value left out" in res.to_markdown()     # the parent run
    assert res.runs.attrs["external"]["columns"] == {"model.arch": "params.model.arch", "seed": "params.seed",
                                                     "metric": "metrics.acc"}
    by_id = analysis.compare(experiment=res.runs["experiment_id"].iloc[0], tracking_uri=uri, cells="model.arch",
                             metric="acc", where="params.`model.arch` != 'mlp'")
    assert list(by_id.table["cell"]) == ["model.arch=resnet", "model.arch=vit"]
    one_line_error(lambda: analysis.compare(experiment="plain", tracking_uri=uri, cells="arch", metric="acc"),
                   "cell column 'arch'", "params present: lr, model.arch, seed; metrics present: acc")
    one_line_error(lambda: analysis.compare(experiment="plain", tracking_uri=uri, cells="model.arch", metric="acc",
                                            where="lr > "), "not an MLflow filter string")
    with pytest.raises(LookupError, match="no MLflow experiment named 'nope'.*experiments there: .*plain"):
        analysis.compare(experiment="nope", tracking_uri=uri, cells="model.arch", metric="acc")
    page = res.to_html(tmp_path / "r.html")
    assert page.count("<img") == 2 and "Learning curves" in page            # the per-epoch history is drawn
    assert (tmp_path / "r.html").read_text() == page


def test_the_report_says_where_the_runs_came_from(tmp_path):
    res = analysis.compare(EXAMPLE, cells=["loss", "alpha"], metric="test_acc",
                           baseline={"loss": "hinge", "alpha": 0.0001})
    page = res.to_html()
    assert "external runs</b> (not launched by ablate): CSV file" in page and "runs.csv" in page
    assert "cells: loss, alpha; seed: seed; metric: test_acc (max); baseline: loss=hinge,alpha=0.0001" in page
    assert "ablate trial --from-run" not in page and "Sweep file" not in page and "#/experiments/" not in page
    assert page.count("<img") == 1 and "no per-step history" in page         # the plot; a CSV has no curves
    assert res.report_study().external["source"] == res.source
    assert res.plot(tmp_path / "p.png").stat().st_size > 10_000
    assert res.plot(tmp_path / "i.png", kind="interaction").stat().st_size > 10_000


def test_import_analysis_stays_light():
    code = ("import sys, analysis; assert 'pandas' not in sys.modules and 'mlflow' not in sys.modules; "
            "f = analysis.compare; assert callable(f) and 'ray' not in sys.modules and 'torch' not in sys.modules")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    with pytest.raises(AttributeError):
        analysis.no_such_name


def test_cli_duplicate_choices_mirror_the_engine():
    from analysis.external import DUPLICATES
    from sweeps.cli.common import DUPLICATES as CLI

    assert CLI == DUPLICATES
