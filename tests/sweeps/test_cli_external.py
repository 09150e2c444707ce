"""``ablate table|plot|report --experiment NAME | --csv FILE`` (issue 28) the way a user runs them: subprocesses,
real MLflow sqlite stores written by plain scripts that know nothing of ablate, and once real Ray for ablate's
own toy sweep, whose table the same values logged by a plain script must reproduce number for number."""
from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.helpers import ROOT, ablate, assert_clean_error, cli_env, out, write_yaml

EXAMPLE = ROOT / "docs" / "examples" / "runs.csv"
SCRIPT = ROOT / "docs" / "examples" / "log_runs.py"
EXAMPLE_MAP = ["--cells", "loss,alpha", "--seed-col", "seed", "--metric", "test_acc", "--baseline",
               "loss=hinge,alpha=0.0001"]
SHIFTS = (0.0, 0.05, 1.0)
# what a user's own script looks like: plain MLflow, no ablate import, one run per (setting, seed)
PLAIN = """import json, sys
import mlflow

uri, name, path = sys.argv[1:4]
mlflow.set_tracking_uri(uri)
mlflow.set_experiment(name)
for row in json.load(open(path)):
    with mlflow.start_run():
        mlflow.log_param("model.shift", row["shift"])
        mlflow.log_param("seed", row["seed"])
        mlflow.log_param("optimizer", "sgd")
        mlflow.log_metric("score", row["score"] - 0.5, step=0)
        mlflow.log_metric("score", row["score"], step=1)
"""


def _csv(r) -> pd.DataFrame:
    assert r.returncode == 0 and "Traceback" not in out(r), out(r)[-3000:]
    return pd.read_csv(io.StringIO(r.stdout))


def _plain_log(tmp_path, uri: str, name: str, rows) -> None:
    (tmp_path / "rows.json").write_text(json.dumps(rows))
    script = tmp_path / "train_and_log.py"
    script.write_text(PLAIN)
    r = subprocess.run([sys.executable, str(script), uri, name, str(tmp_path / "rows.json")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "ablate" not in PLAIN.replace("ablate.", "")


def test_a_plain_mlflow_script_gives_the_toy_sweeps_numbers(tmp_path, mlflow_store):
    """Acceptance 1: 3 cells x 5 seeds of ablate's toy task (known shifts 0, 0.05, 1) through `ablate run`; the
    same values logged by a plain MLflow script; `ablate table --experiment` equals `ablate table SWEEP`."""
    from mlflow.tracking import MlflowClient

    env = cli_env(tmp_path)
    store = plain = mlflow_store        # one store (creating one takes seconds); ablate's and the script's experiments
    sweep = {"name": "toyshift", "task": "toy", "metric": {"name": "score", "mode": "max"},
             "baseline": {"model.shift": 0.0}, "seeds": [0, 1, 2, 3, 4],
             "fixed": {"train.epochs": 1, "eval.noise": 0.1}, "scientific": {"model.shift": list(SHIFTS)},
             "resources": {"cpu": 1}, "max_failures": 0}
    r = ablate(["run", write_yaml(tmp_path / "toy.yaml", sweep), "--tracking-uri", store, "--no-table"], tmp_path,
               env=env)
    assert r.returncode == 0, out(r)[-3000:]
    c = MlflowClient(store)
    exp = c.get_experiment_by_name("toyshift")
    rows = [{"shift": float(x.data.params["model.shift"]), "seed": int(x.data.params["seed"]),
             "score": x.data.metrics["score"]}
            for x in c.search_runs([exp.experiment_id], "tags.`ablate.phase` = 'final'", max_results=100)]
    assert len(rows) == 15
    _plain_log(tmp_path, plain, "my_experiment", rows[::-1])
    ours = _csv(ablate(["table", "--experiment", "my_experiment", "--tracking-uri", plain, "--cells", "model.shift",
                        "--seed-col", "seed", "--metric", "score", "--baseline", "model.shift=0.0", "--format",
                        "csv"], tmp_path, env=env))
    theirs = _csv(ablate(["table", "toyshift", "--tracking-uri", store, "--format", "csv"], tmp_path, env=env))
    ours, theirs = ours.set_index("model.shift"), theirs.set_index("model.shift")
    assert sorted(ours.index) == sorted(theirs.index) == list(SHIFTS)
    # every column both tables have, by name (the statistics may gain columns), except what only a launch records
    # (parameter count, seconds per epoch, threads, ...): those stay empty for runs ablate did not launch
    stats_cols = {"n", "mean", "std", "delta", "ci_low", "ci_high", "p_value", "p_adj", "verdict"}
    shared = [col for col in theirs.columns if col in ours.columns and (col in stats_cols or ours[col].notna().any())]
    assert stats_cols <= set(shared) and len(shared) > len(stats_cols)
    for col in shared:
        a, b = ours.loc[theirs.index, col], theirs[col]
        if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12, equal_nan=True, err_msg=col)
        else:
            assert list(a.fillna("")) == list(b.fillna("")), col
    # the known shifts: Δ within a few noise SDs of each (noise SD 0.1, 5 seeds), the large one decided better
    assert theirs.loc[1.0, "verdict"] == "better"
    for shift in SHIFTS[1:]:
        assert abs(theirs.loc[shift, "delta"] - shift) < 0.2


@pytest.mark.parametrize("fmt", ["md", "latex", "csv"])
def test_the_csv_example_gives_the_same_table_through_cli_and_api(tmp_path, fmt):
    """Acceptance 2: README's CSV example, `ablate table --csv` and analysis.compare, identical text."""
    import analysis

    r = ablate(["table", "--csv", EXAMPLE, *EXAMPLE_MAP, "--format", fmt], tmp_path, env=cli_env(tmp_path))
    assert r.returncode == 0 and not r.stderr.strip(), out(r)[-3000:]
    api = analysis.compare(EXAMPLE, cells=["loss", "alpha"], seed="seed", metric="test_acc", mode="max",
                           baseline={"loss": "hinge", "alpha": 0.0001})
    assert r.stdout.rstrip("\n") == api.render(fmt).rstrip("\n")
    if fmt == "md":
        assert "worse" in r.stdout and "Two-way ANOVA" in r.stdout


def _bad_csv(tmp_path):
    rows = [{"arch": a, "seed": s, "acc": 0.8 + 0.01 * s, "note": "ok"} for a in ("resnet", "vit") for s in range(3)]
    good = tmp_path / "good.csv"
    pd.DataFrame(rows).to_csv(good, index=False)
    dup = tmp_path / "dup.csv"
    pd.DataFrame(rows + [rows[1]]).to_csv(dup, index=False)
    noseed = tmp_path / "noseed.csv"
    pd.DataFrame(rows).drop(columns="seed").to_csv(noseed, index=False)
    text = tmp_path / "text.csv"
    pd.DataFrame(rows).assign(acc=["0.8", "0.81", "high", "0.8", "0.7", "0.9"]).to_csv(text, index=False)
    return {"good": good, "dup": dup, "noseed": noseed, "text": text}


@pytest.mark.parametrize("csv, args, words", [
    ("good", ["--cells", "archx"], ("cell column 'archx'", "columns present: arch, seed, acc, note")),
    ("noseed", ["--cells", "arch"], ("seed column 'seed'", "columns present: arch, acc, note")),
    ("dup", ["--cells", "arch"], ("2 runs share cell [arch=resnet] and seed 1", "line 3, line 8",
                                  "--duplicates keep-last", "best")),
    ("text", ["--cells", "arch"], ("metric 'acc' (column 'acc') is not numeric", "'high'", "line 4")),
    ("good", ["--cells", "arch", "--baseline", "arch=vgg"], ("baseline arch=vgg matches no cell",
                                                             "arch has resnet, vit")),
    ("good", ["--cells", "arch", "--where", "acc > 2"], ("--where 'acc > 2' selects none of the 6 runs",)),
    ("good", ["--cells", "arch", "--where", "acc >> "], ("--where", "not a pandas query", "columns present")),
    ("good", ["--cells", "arch", "--baseline", "arch"], ("--baseline 'arch'", "COLUMN=VALUE")),
])
def test_bad_mappings_exit_2_with_one_line(tmp_path, csv, args, words):
    """Acceptance 3: each bad mapping is exit 2, no traceback, one line naming the column and what is present."""
    files = _bad_csv(tmp_path)
    r = ablate(["table", "--csv", files[csv], "--metric", "acc", *args], tmp_path, env=cli_env(tmp_path))
    assert_clean_error(r, 2, *words)
    assert len(r.stderr.strip().splitlines()) == 1 and not r.stdout, out(r)


@pytest.mark.parametrize("args, words", [
    (["toyshift", "--csv", "x.csv", "--cells", "a", "--metric", "m"], ("give SWEEP", "not both")),
    ([], ("give SWEEP", "--experiment NAME / --csv FILE")),
    (["--csv", "x.csv", "--experiment", "e", "--cells", "a", "--metric", "m"], ("--experiment and --csv",)),
    (["toyshift", "--cells", "a", "--seed-col", "s"], ("--cells, --seed-col only apply to runs ablate did not",)),
    (["--csv", "x.csv", "--metric", "m"], ("--cells is required",)),
    (["--csv", "x.csv", "--cells", "a"], ("--metric is required",)),
    (["--csv", "x.csv", "--cells", "a", "--metric", "m", "--launch", "all"], ("--launch does not apply to --csv",)),
    (["--csv", "x.csv", "--cells", "a", "--metric", "m", "--tracking-uri", "sqlite:///x.db"],
     ("--tracking-uri does not apply to --csv",)),
    (["--csv", "missing.csv", "--cells", "a", "--metric", "m"], ("no such CSV file: missing.csv",)),
    (["--csv", "x.csv", "--cells", "a", "--metric", "m", "--duplicates", "first"], ("--duplicates", "first")),
])
def test_source_flags_are_checked(tmp_path, args, words):
    r = ablate(["table", *args], tmp_path, env=cli_env(tmp_path), timeout=120)
    assert_clean_error(r, 2, *words)


def test_an_experiment_errors_and_filter(tmp_path, mlflow_store):
    env = cli_env(tmp_path)
    rows = [{"shift": sh, "seed": s, "score": sh + 0.01 * s} for sh in SHIFTS for s in range(3)]
    _plain_log(tmp_path, mlflow_store, "filtered", rows)
    base = ["table", "--experiment", "filtered", "--tracking-uri", mlflow_store, "--metric", "score"]
    r = ablate([*base, "--cells", "model.shift", "--where", "params.`model.shift` != '1.0'", "--format", "csv"],
               tmp_path, env=env)
    assert list(_csv(r)["model.shift"]) == [0.0, 0.05]
    assert_clean_error(ablate([*base, "--cells", "model.shfit"], tmp_path, env=env), 2, "cell column 'model.shfit'",
                       "params present: model.shift, optimizer, seed; metrics present: score",
                       "did you mean 'model.shift'")
    # (a filter MLflow refuses, one that selects nothing, an unknown experiment: tests/analysis/test_external.py)
    r = ablate(["table", "--experiment", "x", "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}", "--cells", "a",
                "--metric", "m"], tmp_path, env=env)
    assert_clean_error(r, 3, "no tracking store")
    assert not (tmp_path / "none.db").exists()


def test_plot_and_report_of_external_runs(tmp_path, mlflow_store):
    env = cli_env(tmp_path)
    r = ablate(["plot", "--csv", EXAMPLE, *EXAMPLE_MAP, "-o", tmp_path / "p.png"], tmp_path, env=env)
    assert r.returncode == 0 and (tmp_path / "p.png").stat().st_size > 10_000, out(r)[-2000:]
    r = ablate(["report", "--csv", EXAMPLE, *EXAMPLE_MAP], tmp_path, env=env)
    assert r.returncode == 0, out(r)[-2000:]
    page = (tmp_path / "runs.html").read_text()
    assert "external runs</b> (not launched by ablate): CSV file" in page
    assert "baseline: loss=hinge,alpha=0.0001" in page
    assert "ablate trial --from-run" not in page and page.count("<img") == 1
    rows = [{"shift": sh, "seed": s, "score": sh + 0.01 * s} for sh in SHIFTS for s in range(3)]
    _plain_log(tmp_path, mlflow_store, "reported", rows)
    r = ablate(["report", "--experiment", "reported", "--tracking-uri", mlflow_store, "--cells", "model.shift",
                "--metric", "score", "--baseline", "model.shift=0.0", "-o", tmp_path / "e.html"], tmp_path, env=env)
    assert r.returncode == 0, out(r)[-2000:]
    page = (tmp_path / "e.html").read_text()
    assert "MLflow experiment &#x27;reported&#x27;" in page and page.count("<img") == 2     # plot and curves
    assert "#/experiments/" in page                                                    # run links into MLflow


def test_the_readme_mlflow_example_and_the_shipped_csv(tmp_path):
    """README's "Already have runs?": docs/examples/log_runs.py logs to MLflow, and `ablate table --experiment`
    gives the table of `--csv` of the same runs; the shipped runs.csv is what the script writes."""
    env = cli_env(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    for args in (["--tracking-uri", uri, "--seeds", "3", "--epochs", "2"],
                 ["--csv", tmp_path / "small.csv", "--seeds", "3", "--epochs", "2"], ["--csv", tmp_path / "full.csv"]):
        r = subprocess.run([sys.executable, SCRIPT, *map(str, args)], cwd=tmp_path, capture_output=True, text=True,
                           timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "full.csv").read_text() == EXAMPLE.read_text()
    a = ablate(["table", "--experiment", "digits_sgd", "--tracking-uri", uri, *EXAMPLE_MAP], tmp_path, env=env)
    b = ablate(["table", "--csv", tmp_path / "small.csv", *EXAMPLE_MAP], tmp_path, env=env)
    assert a.returncode == 0 and b.returncode == 0, out(a)[-2000:] + out(b)[-2000:]
    assert a.stdout == b.stdout and "| loss" in a.stdout
