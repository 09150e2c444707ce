"""Pooling launches (analysis/pooling.py, sweeps/cli/common.py): ``ablate table SWEEP --launch all`` /
``--launch ID1,ID2`` through the CLI against real Ray and MLflow (issue 22).

Other engineers commit to this repository while the tests run, so two launches may carry two code versions
(``ablate.git_commit``): then the pool is refused first (exit 2, naming the code version) and the test goes on
with --force."""
from __future__ import annotations

import csv
import io

import pytest

from analysis import contract as C
from tests.helpers import ablate, assert_clean_error, cli_env, out, toy_sweep, write_yaml


def _launches(uri, name):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    runs = c.search_runs([c.get_experiment_by_name(name).experiment_id], max_results=1000)
    by = {}
    for r in runs:
        if r.data.tags.get(C.PHASE) == "final":
            by.setdefault(r.data.tags[C.LAUNCH], set()).add(r.data.tags.get(C.GIT_COMMIT))
    return by


def _pool(args, tmp_path, env, commits):
    """``ablate table ...`` pooling; when the launches' code versions differ it must refuse without --force."""
    if len({frozenset(v) for v in commits.values()}) > 1:
        assert_clean_error(ablate(args, tmp_path, env), 2, "code version", "--force")
        args = [*args, "--force"]
    r = ablate(args, tmp_path, env)
    assert r.returncode == 0, out(r)
    return r


@pytest.fixture
def two_launches(tmp_path):
    """Launch A: the toy grid, seeds 0 1; launch B: only the fancy cells (no baseline), seeds 2 3."""
    env = cli_env(tmp_path)
    sweep = write_yaml(tmp_path / "pool.yaml", toy_sweep("pool", tmp_path))
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    r = ablate(["run", sweep, "--tracking-uri", uri, "--no-table"], tmp_path, env)
    assert r.returncode == 0, out(r)
    r = ablate(["run", sweep, "--tracking-uri", uri, "--no-table", "--set", "model.kind=[fancy]",
                "--set", "seeds=[2,3]"], tmp_path, env)
    assert r.returncode == 0, out(r)
    return env, sweep, uri


def test_launch_all_keeps_the_baseline_orders_the_grid_names_the_launches_and_refuses_another_fixed_value(
        tmp_path, two_launches):
    env, sweep, uri = two_launches
    launches = _launches(uri, "pool")
    a, b = sorted(launches)
    r = _pool(["table", str(sweep), "--launch", "all", "--tracking-uri", uri], tmp_path, env, launches)
    assert "no baseline" not in out(r) and f"pooled launches (2): {a}, {b}" in r.stdout, out(r)
    text = _pool(["table", str(sweep), "--launch", f"{a},{b}", "--format", "csv", "--tracking-uri", uri],
                 tmp_path, env, launches).stdout
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(x["model.kind"], x["model.width"]) for x in rows] == [("plain", ""), ("fancy", "2"), ("fancy", "4")]
    assert [int(x["n"]) for x in rows] == [2, 4, 4]                   # B's seeds added to A's fancy cells
    assert rows[0]["baseline"] == "True" and all(x["verdict"] for x in rows[1:])     # compared with plain
    # the newest launch alone has no baseline: the sweep named by its experiment pools with B's (none)
    r = _pool(["table", "pool", "--launch", "all", "--tracking-uri", uri], tmp_path, env, launches)
    assert "no baseline" in r.stdout, out(r)
    assert_clean_error(ablate(["table", str(sweep), "--launch", f"{a},nope", "--tracking-uri", uri], tmp_path, env),
                       2, "nope")

    # a third launch with another fixed value: refused without --force, pooled with it (one store: one set-up)
    r = ablate(["run", sweep, "--tracking-uri", uri, "--no-table", "--set", "train.epochs=3", "--set", "seeds=[4]"],
               tmp_path, env)
    assert r.returncode == 0, out(r)
    a, b, c = sorted(_launches(uri, "pool"))
    args = ["table", str(sweep), "--launch", f"{a},{c}", "--tracking-uri", uri]
    err = assert_clean_error(ablate(args, tmp_path, env), 2, "train.epochs", a, c, "--force")
    assert "2" in err and "3" in err
    r = ablate([*args, "--force"], tmp_path, env)
    assert r.returncode == 0 and "warning" in r.stderr and "train.epochs" in r.stderr, out(r)
    assert f"pooled launches (2): {a}, {c}" in r.stdout, out(r)
