"""The evidence columns end to end: a toy sweep with known true effects through the ``ablate`` CLI (a
subprocess, real Ray, a real MLflow sqlite store in tmp), then ``ablate table --format csv`` checked against
Holm recomputed from the runs the store holds; and the analysis section's input errors, refused before launch."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from tests.helpers import ablate, assert_clean_error, cli_env, out, write_yaml

SHIFTS = {"null": 0.0, "small": 0.05, "large": 1.0}
NOISE = 0.1


def evidence_sweep(name: str, seeds=(0, 1, 2, 3, 4, 5), **extra) -> dict:
    """Cells model.shift ∈ {0 (baseline), 0, small, large} × label a/b: (0, a) is the baseline, (0, b) a null."""
    return {"name": name, "task": "toy", "metric": {"name": "score", "mode": "max"},
            "baseline": {"model.shift": 0.0, "model.label": "a"},
            "seeds": dict(seeds) if isinstance(seeds, dict) else list(seeds),
            "fixed": {"train.epochs": 1, "eval.noise": NOISE},
            "scientific": {"model.shift": list(SHIFTS.values()), "model.label": ["a", "b"]},
            "resources": {"cpu": 1}, "max_failures": 0, **extra}


def _store_values(uri: str, name: str, by_seed: bool = False):
    """{(shift, label): [values]} (or {...: {seed: value}}) of the FINISHED final runs, read with MLflow's own
    client."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(name)
    vals = {}
    for r in c.search_runs([exp.experiment_id], filter_string="tags.`ablate.phase` = 'final'", max_results=1000):
        if r.info.status == "FINISHED":
            key = (float(r.data.params["model.shift"]), r.data.params["model.label"])
            if by_seed:
                vals.setdefault(key, {})[int(r.data.params["seed"])] = r.data.metrics["score"]
            else:
                vals.setdefault(key, []).append(r.data.metrics["score"])
    return vals


def test_toy_sweep_verdicts_and_holm_through_the_cli(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    sweep = write_yaml(tmp_path / "evidence.yaml", evidence_sweep("evidence"))
    env = cli_env(tmp_path)
    r = ablate(["run", sweep, "--tracking-uri", uri], tmp_path, env=env)      # prints the Markdown table
    assert r.returncode == 0 and "Traceback" not in out(r), out(r)[-3000:]
    md = r.stdout
    assert "Δ [adj. CI]" in md and "Holm-adjusted over 5 cells" in md and "Two-way ANOVA" in md
    r = ablate(["table", "evidence", "--format", "csv", "--tracking-uri", uri], tmp_path, env=env)
    assert r.returncode == 0 and "Warning" not in r.stderr, out(r)[-3000:]
    csv = pd.read_csv(io.StringIO(r.stdout))
    assert list(csv.columns[:8]) == ["model.shift", "model.label", "n", "failed", "running", "params", "mean", "std"]
    rows = {(float(s), lb): row for s, lb, (_, row) in zip(csv["model.shift"], csv["model.label"], csv.iterrows())}
    assert len(rows) == 6 and all(row["n"] == 6 for row in rows.values())
    assert rows[(1.0, "a")]["verdict"] == "better" and rows[(1.0, "b")]["verdict"] == "better"
    assert rows[(0.0, "b")]["verdict"] not in ("better", "worse")
    assert rows[(0.0, "a")]["baseline"] and (csv["epoch_s"] > 0).all()
    vals = _store_values(uri, "evidence")
    base = np.array(vals[(0.0, "a")])
    others = [k for k in vals if k != (0.0, "a")]
    p = [stats.ttest_ind(vals[k], base, equal_var=False).pvalue for k in others]
    holm = multipletests(p, 0.05, method="holm")[1]
    for k, pk, want in zip(others, p, holm):
        assert rows[k]["p_value"] == pytest.approx(pk, rel=1e-9)
        assert rows[k]["p_adj"] == pytest.approx(want, rel=1e-9)
        assert rows[k]["delta"] == pytest.approx(np.mean(vals[k]) - base.mean())
    # the true effects are what the toy was told: the deltas' intervals cover them
    for (shift, _), row in rows.items():
        if shift:
            assert row["ci_low"] < shift < row["ci_high"]
    # the seed-correlation line: Pearson r of each cell with the baseline over their 6 shared seeds
    by_seed = _store_values(uri, "evidence", by_seed=True)
    b = by_seed[(0.0, "a")]
    r_cells = [np.corrcoef([by_seed[k][s] for s in range(6)], [b[s] for s in range(6)])[0, 1] for k in others]
    line = next(ln for ln in md.splitlines() if "seed correlation with the baseline" in ln)
    assert "over 6 shared seeds" in line and f"median {np.median(r_cells):.2f}," in line, line
    assert f"{min(r_cells):.2f} to {max(r_cells):.2f} over 5 cell(s)" in line, line


@pytest.mark.parametrize("analysis, seeds, key", [
    ({"alpha": 0.05, "corection": "bh"}, [0, 1], "analysis.corection"),
    ({"test": "paired"}, [0], "analysis.test"),
    ({"min_effect": -0.1}, [0, 1], "analysis.min_effect"),
])
def test_analysis_input_errors_exit_2_before_launch(tmp_path, analysis, seeds, key):
    store = tmp_path / "store" / "mlflow.db"
    sweep = write_yaml(tmp_path / "bad.yaml", evidence_sweep("bad", seeds=seeds, analysis=analysis))
    r = ablate(["run", sweep, "--tracking-uri", f"sqlite:///{store}"], tmp_path, env=cli_env(tmp_path), timeout=120)
    assert_clean_error(r, 2, key)
    assert not store.exists(), "refused input must not create a store (nothing launched)"


def test_toy_shift_and_noise_are_known_reproducible_and_resumable():
    from sweeps.runner.trial import LocalReporter, run_trial
    from tasks import get_task
    from tests.tasks._resume import whole_and_resumed

    spec = get_task("toy")

    def score(seed, **kw):
        cfg = spec.resolve({"seed": seed, "train.epochs": 2, **kw})
        return run_trial("toy", cfg, LocalReporter(echo=lambda s: None))["score"]

    assert score(0, **{"model.shift": 0.7}) - score(0) == pytest.approx(0.7, abs=1e-12)
    assert score(3, **{"eval.noise": 0.5}) == score(3, **{"eval.noise": 0.5})           # reproducible
    z = np.array([[score(s, **{"eval.noise": 1.0, "model.label": lb}) - score(s) for lb in ("a", "b")]
                  for s in range(120)])
    assert abs(z.mean()) < 0.3 and 0.8 < z.std(ddof=1) < 1.2                              # N(0, 1) offsets
    assert abs(np.corrcoef(z.T)[0, 1]) < 0.25                                             # independent cells
    shared = np.array([[score(s, **{"eval.noise": 1.0, "eval.noise_shared": 1.0, "model.label": lb}) - score(s)
                        for lb in ("a", "b")] for s in range(10)])
    np.testing.assert_allclose(shared[:, 0], shared[:, 1])                                # all shared
    # a resumed trial (restored after epoch 1) reports what the uninterrupted one did
    cfg = spec.resolve({"seed": 4, "train.epochs": 3, "eval.noise": 0.3})
    whole, resumed = whole_and_resumed("toy", cfg, stop_after=1)
    assert resumed.history[-1]["score"] == pytest.approx(whole.history[-1]["score"], abs=1e-12)


def test_bonferroni_correction_through_the_cli(tmp_path):
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    sweep = evidence_sweep("bonf", seeds=(0, 1, 2), analysis={"correction": "bonferroni"})
    sweep["scientific"] = {"model.shift": [0.0, 1.0, 0.05]}
    sweep["baseline"] = {"model.shift": 0.0}
    env = cli_env(tmp_path)
    r = ablate(["run", write_yaml(tmp_path / "bonf.yaml", sweep), "--tracking-uri", uri], tmp_path, env=env)
    assert r.returncode == 0 and "Bonferroni-adjusted over 2 cells" in r.stdout, out(r)[-3000:]
    r = ablate(["table", "bonf", "--format", "csv", "--tracking-uri", uri], tmp_path, env=env)
    csv = pd.read_csv(io.StringIO(r.stdout)).set_index("model.shift")
    for shift in (1.0, 0.05):
        assert csv.loc[shift, "p_adj"] == pytest.approx(min(1.0, 2 * csv.loc[shift, "p_value"]), rel=1e-9)


@pytest.mark.parametrize("correction,spending", [
    ("holm", {}),
    # default suite: the O'Brien-Fleming case above (same runner and table code, another boundary), the HSD
    # boundaries' error rates in tests/analysis/test_promises.py, HSD in the look plan: tests/sweeps/test_looks.py
    pytest.param("holm", {"spending": "hsd", "hsd_gamma": 1}, marks=pytest.mark.slow),
    pytest.param("bonferroni", {}, marks=pytest.mark.slow)])   # default: test_bonferroni_correction_through_the_cli
def test_adaptive_launch_table_agrees_with_what_the_runner_ran(tmp_path, correction, spending):
    """A cell the table says stopped at look k has exactly looks[k] runs in the store: the runner stopped it
    there (both call analysis.stats.replay_looks, with the launch's correction and spending)."""
    from analysis.stats import _sequential as seq

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    looks = [3, 5]
    sweep = evidence_sweep("adaptive", seeds={"looks": looks},
                           analysis={"min_effect": 0.2, "correction": correction, **spending})
    sweep["scientific"] = {"model.shift": [0.0, 1.0, 0.02]}
    sweep["baseline"] = {"model.shift": 0.0}
    env = cli_env(tmp_path)
    r = ablate(["run", write_yaml(tmp_path / "adaptive.yaml", sweep), "--tracking-uri", uri], tmp_path, env=env)
    assert r.returncode == 0, out(r)[-3000:]
    assert "Adaptive seeds: group-sequential Welch t, looks at 3/5 seeds" in r.stdout and "Δ [RCI]" in r.stdout
    assert ("Holm step-down" in r.stdout) == (correction == "holm"), r.stdout[-2000:]
    assert ("Hwang-Shih-DeCani (gamma = 1) alpha-spending" in r.stdout) == bool(spending), r.stdout[-2000:]
    r = ablate(["table", "adaptive", "--format", "csv", "--tracking-uri", uri], tmp_path, env=env)
    csv = pd.read_csv(io.StringIO(r.stdout)).set_index("model.shift")
    assert {"look", "p_bound"} <= set(csv.columns)
    assert csv.loc[1.0, "verdict"] == "better"                          # 10 SD
    assert csv.loc[0.02, "verdict"] in ("equivalent", "undecided")
    for shift, row in csv.iterrows():
        assert row["n"] == looks[int(row["look"])], (shift, row.to_dict())
    d = seq.plan(looks, n_cells=2, correction=correction, spending=spending.get("spending", "obrien_fleming"),
                 gamma=spending.get("hsd_gamma"))                   # the boundaries the launch was decided on
    k = int(csv.loc[1.0, "look"])
    assert any(csv.loc[1.0, "p_bound"] == pytest.approx(d.bounds(j)[k], rel=1e-9) for j in (1, 2)), csv.loc[1.0]


def test_futility_stops_a_null_cell_early_through_the_cli(tmp_path):
    """analysis.futility: the null cell (shift 0, label b; no min_effect, so it cannot stop as equivalent) stops
    undecided at look 2 of 3 with a conditional power below 0.5; the large ones are better; the store holds
    exactly the seeds each cell was given."""
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    looks = [3, 5, 8]
    sweep = evidence_sweep("futile", seeds={"looks": looks}, analysis={"futility": 0.5})
    sweep["scientific"] = {"model.shift": [0.0, 1.0], "model.label": ["a", "b"]}
    env = cli_env(tmp_path)
    f = write_yaml(tmp_path / "futile.yaml", sweep)
    r = ablate(["run", f, "--dry-run"], tmp_path, env=env)
    assert r.returncode == 0 and "Futility: at looks 2..2, a cell whose conditional power" in r.stdout, out(r)
    r = ablate(["run", f, "--tracking-uri", uri], tmp_path, env=env)
    assert r.returncode == 0, out(r)[-3000:]
    assert "Futility stops: a cell whose conditional power" in r.stdout, r.stdout[-2000:]
    r = ablate(["table", "futile", "--format", "csv", "--tracking-uri", uri], tmp_path, env=env)
    csv = pd.read_csv(io.StringIO(r.stdout))
    rows = {(float(a), b): row for a, b, (_, row) in zip(csv["model.shift"], csv["model.label"], csv.iterrows())}
    assert rows[(1.0, "a")]["verdict"] == rows[(1.0, "b")]["verdict"] == "better"
    null = rows[(0.0, "b")]
    assert (null["verdict"], int(null["look"]), null["n"]) == ("undecided", 1, 5), null.to_dict()
    runs = _store_values(uri, "futile")
    assert len(runs[(0.0, "b")]) == 5, "the runner gave the stopped cell no more seeds"
    assert len(runs[(0.0, "a")]) == max(int(rows[k]["n"]) for k in rows if k != (0.0, "a"))
