"""analysis/: MLflow store → frame → table / paper comparison / plots, on a real
sqlite MLflow store written the way the sweep tracker writes it."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from analysis.paper import comparison
from analysis.plots import plot_ablation
from analysis.store import load_runs
from analysis.tables import ablation_table, render

VALUES = {"model.fusion=add": [0.80, 0.82, 0.81],
          "model.fusion=cfu,model.order=1": [0.83, 0.85, 0.86],
          "model.fusion=cfu,model.order=3": [0.70, 0.90, 0.81]}


def make_store(uri, name, plot=None, launches=("L2",), failed_cell=None, extra_params=None, values=None):
    """Runs written like sweeps/runner/tracker.py writes them, in the session's real store."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    exp = c.create_experiment(name)
    for launch in launches:
        for idx, (cell, vals) in enumerate((values or VALUES).items()):
            for seed, v in enumerate(vals):
                tags = {"ablate.cell": cell, "ablate.seed": str(seed), "ablate.launch": launch,
                        "ablate.phase": "final", "ablate.n_params": str(1000 + idx), "ablate.metric": "test_dice",
                        "ablate.mode": "max", "ablate.baseline_cell": "model.fusion=add",
                        "ablate.cell_index": str(idx), "ablate.plot": json.dumps(plot or {})}
                r = c.create_run(exp, tags=tags)
                params = {"seed": seed, "model.fusion": cell.split(",")[0].split("=")[1], "data.name": "synthetic",
                          "noise.kind": "nan", **(extra_params or {})}
                if "order" in cell:
                    params["model.order"] = int(cell.split("order=")[1].split(",")[0])
                for k, pv in params.items():
                    c.log_param(r.info.run_id, k, str(pv))
                bump = 0.0 if launch == launches[-1] else -0.5
                c.log_metric(r.info.run_id, "test_dice", v + bump, step=1)
                for i, rng in enumerate([0.0, 0.5, 1.0]):
                    c.log_metric(r.info.run_id, f"acc_rot_{i}", v - 0.01 * i * (cell == "model.fusion=add"), step=1)
                c.set_terminated(r.info.run_id, "FINISHED")
        if failed_cell:
            r = c.create_run(exp, tags={**tags, "ablate.cell": failed_cell, "ablate.seed": "9",
                                        "ablate.failure_reason": "train_loss became nan at epoch 2"})
            c.set_terminated(r.info.run_id, "FAILED")
    return uri


@pytest.fixture
def fake(mlflow_store, request):
    name = f"fake-{request.node.name}"
    return lambda **kw: (make_store(mlflow_store, name, **kw), name)


def test_table_statistics_are_right(fake):
    uri, name = fake(launches=("L1", "L2"), failed_cell="model.fusion=cfu,model.order=3")
    runs = load_runs(name, uri)
    assert runs.attrs["launch"] == "L2" and len(runs) == 10
    fin = runs[runs["status"] == "FINISHED"]
    assert fin["params.noise.kind"].eq("nan").all(), "a registry string must not become float NaN"
    assert fin["params.seed"].map(type).eq(int).all()
    t = ablation_table(runs)
    assert list(t["cell"]) == list(VALUES)                           # grid order
    base = np.array(VALUES["model.fusion=add"])
    for _, row in t.iterrows():
        v = np.array(VALUES[row["cell"]])
        assert row["mean"] == pytest.approx(v.mean()) and row["std"] == pytest.approx(v.std(ddof=1))
        assert row["n"] == 3
        if not row["baseline"]:
            assert row["delta"] == pytest.approx(v.mean() - base.mean())
            assert row["p_value"] == pytest.approx(stats.ttest_ind(v, base, equal_var=False).pvalue)
    assert t.loc[t["cell"] == "model.fusion=cfu,model.order=3", "failed"].item() == 1
    assert t["best"].tolist() == [False, True, False]
    md = render(t, "md")
    assert "**0.847 ± 0.015**" in md and "baseline" in md and "| –" in md
    assert md.splitlines()[0].startswith("| model.fusion | model.order | test_dice ↑")
    assert render(t, "csv").count("\n") == 4
    assert "\\textbf{0.847 $\\pm$ 0.015}" in render(t, "latex")
    all_runs = load_runs(name, uri, launch=None)
    assert len(all_runs) == 20
    with pytest.raises(LookupError, match="no sweep named 'nope'"):
        load_runs("nope", uri)
    with pytest.raises(KeyError, match="recorded metrics"):
        ablation_table(runs, metric="val_dice")


def test_paper_comparison_matches_only_real_settings(fake):
    uri, name = fake()
    runs = load_runs(name, uri)
    t = ablation_table(runs)
    pub = {name: {"sweep": name, "paper": "P", "notes": "synthetic, not ACDC", "metric": "test_dice", "rows": [
        {"cell": {"model.fusion": "add"}, "value": 0.80, "table": "Table I"},
        {"cell": {"model.fusion": "cfu", "model.order": 1}, "value": 0.81, "table": "Table I"},
        {"cell": {"model.fusion": "cfu", "model.order": 1, "data.name": "acdc"}, "value": 0.9, "table": "T"},
        {"cell": {"model.fusion": "cfu", "model.order": 9}, "value": 0.82, "table": "Table I"}]}}
    df = comparison(name, t, runs, published=pub)
    assert len(df) == 4
    assert df.loc[0, "diff"] == pytest.approx(np.mean(VALUES["model.fusion=add"]) - 0.80)
    assert df.loc[1, "ours"] == pytest.approx(np.mean(VALUES["model.fusion=cfu,model.order=1"]))
    assert math.isnan(df.loc[2, "ours"]), "an ACDC number must not be matched to a synthetic run"
    assert math.isnan(df.loc[3, "ours"])
    with pytest.raises(LookupError):
        comparison("other", t, runs, published=pub)


def test_shipped_published_numbers_are_consistent():
    from analysis.paper import load_published

    pub = load_published()
    assert pub, "analysis/published.yaml is empty"
    for name, e in pub.items():
        assert e["rows"] and e.get("paper") and e.get("notes") and e.get("metric"), name
        for r in e["rows"]:
            assert isinstance(r["cell"], dict) and isinstance(r["value"], (int, float)), (name, r)


@pytest.mark.parametrize("plot", [
    {}, {"kind": "line", "x": "model.order"}, {"kind": "bars", "x": "model.fusion", "hue": "model.order"},
    {"kind": "metric_curve", "metrics": ["acc_rot_0", "acc_rot_1", "acc_rot_2"], "x_values": [0, 0.5, 1.0],
     "hue": "model.fusion"}])
def test_plots_render(fake, tmp_path, plot):
    uri, name = fake(plot=plot)
    runs = load_runs(name, uri)
    assert runs.attrs["plot"] == plot
    out = plot_ablation(runs, ablation_table(runs), tmp_path / "p.png", title="t")
    assert out.exists() and out.stat().st_size > 10_000
    import matplotlib.image as mpimg

    img = mpimg.imread(out)
    assert img.shape[0] > 300 and img.std() > 0.01      # not blank


@pytest.mark.parametrize("plot", [{"kind": "line", "x": "model.order", "hue": "model.fusion"},
                                  {"kind": "line", "x": "model.order", "hue": "model.dims"},
                                  {"kind": "bars", "x": "model.order", "hue": "model.fusion"},
                                  {"kind": "heatmap", "x": "model.order", "hue": "model.fusion"}])
def test_plots_render_when_no_run_has_the_plot_axis(fake, tmp_path, plot):
    """A launch narrowed with --set to the baselines (no run has model.order)
    still gets its figure: the cells become bands / points instead of a crash."""
    uri, name = fake(plot=plot, values={"model.fusion=add": [0.80, 0.82, 0.81],
                                        "model.fusion=none": [0.70, 0.72, 0.75]})
    runs = load_runs(name, uri)
    assert "model.order" not in runs.columns
    out = plot_ablation(runs, ablation_table(runs), tmp_path / "p.png", title="t")
    import matplotlib.image as mpimg

    img = mpimg.imread(out)
    assert img.shape[0] > 300 and img.std() > 0.01


def test_running_runs_are_not_counted_and_the_table_says_so(fake):
    """A run left RUNNING (sweep in progress, or an interrupted launch) has partial
    metrics: it must neither enter the mean nor vanish silently."""
    from mlflow.tracking import MlflowClient

    uri, name = fake()
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(name)
    tags = {"ablate.cell": "model.fusion=add", "ablate.seed": "7", "ablate.launch": "L2", "ablate.phase": "final",
            "ablate.metric": "test_dice", "ablate.mode": "max", "ablate.baseline_cell": "model.fusion=add",
            "ablate.cell_index": "0"}
    r = c.create_run(exp.experiment_id, tags=tags)
    c.log_param(r.info.run_id, "model.fusion", "add")
    c.log_metric(r.info.run_id, "test_dice", 0.1, step=1)          # an early epoch, left RUNNING
    t = ablation_table(load_runs(name, uri))
    row = t[t["cell"] == "model.fusion=add"].iloc[0]
    assert row["n"] == 3 and row["running"] == 1 and row["mean"] == pytest.approx(np.mean(VALUES["model.fusion=add"]))
    assert "1 unfinished run(s)" in render(t, "md") and "model.fusion=add (1)" in render(t, "md")
    assert "% 1 unfinished" in render(t, "latex")
    assert render(t, "csv").splitlines()[1].split(",")[:5] == ["add", "", "3", "0", "1"]


def test_points_error_bars_are_t_intervals_verdicts_marked_and_long_labels_apart(fake):
    """The per-cell figure: bars = the 95 % t-interval of the mean (scipy.stats.t.interval), one marker per
    verdict, and tick labels that do not overlap however long the cell names are."""
    import matplotlib.pyplot as plt

    from analysis.plots import VERDICTS, _points

    long = {"model.fusion=add": [0.80, 0.82, 0.81],
            "model.fusion=cfu,model.order=1,model.hidden_channels=128": [0.90, 0.91, 0.92],
            "model.fusion=cfu,model.order=3,model.hidden_channels=128": [0.70, 0.90, 0.81],
            "model.fusion=cfu,model.order=5,model.hidden_channels=128": [0.60, 0.61, 0.62]}
    uri, name = fake(values=long)
    runs = load_runs(name, uri)
    t = ablation_table(runs)
    fig = _points(runs, t, "test_dice")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if hasattr(c, "lines")]
    assert len(bars) == len(long)
    for (cell, vals), c in zip(long.items(), bars):
        (lo, hi), = [seg[:, 1] for seg in c.lines[2][0].get_segments()]
        want = stats.t.interval(0.95, len(vals) - 1, loc=np.mean(vals), scale=stats.sem(vals))
        assert (lo, hi) == pytest.approx(want)
    markers = {c.lines[0].get_marker() for c in bars}
    verdicts = {"baseline"} | set(t["verdict"].dropna())
    assert markers == {VERDICTS[v][0] for v in verdicts}
    fig.canvas.draw()
    boxes = [lb.get_window_extent() for lb in ax.get_xticklabels()]
    assert all(a.x1 < b.x0 for a, b in zip(boxes, boxes[1:])), "tick labels overlap"
    labels = [txt.get_text() for txt in ax.get_legend().get_texts()]
    assert any("95 % t-interval of the mean" in s for s in labels + [ax.get_legend().get_title().get_text()])
    assert {VERDICTS[v][2] for v in verdicts if v != "baseline"} <= set(labels)
    plt.close(fig)


def test_interaction_plot_still_draws_a_complete_grid_and_refuses_others(fake, mlflow_store, tmp_path):
    from analysis.plots import plot_interaction

    grid = {f"model.fusion={f},model.order={o}": [0.8 + 0.01 * o + d for d in (0.0, 0.01, 0.02)]
            for f in ("add", "cfu") for o in (1, 3)}
    uri, name = fake(values=grid)
    runs = load_runs(name, uri)
    out = plot_interaction(runs, ablation_table(runs), tmp_path / "i.png")
    assert out.exists() and out.stat().st_size > 10_000
    make_store(mlflow_store, "interaction-conditional")          # VALUES: model.order only for cfu
    cond = load_runs("interaction-conditional", mlflow_store)
    with pytest.raises(ValueError, match="complete grid"):
        plot_interaction(cond, ablation_table(cond), tmp_path / "j.png")
