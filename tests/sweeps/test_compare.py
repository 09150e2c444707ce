"""``ablate compare SWEEP A B`` (issue 22, acceptance 3): two launches of a toy sweep, the second with one cell's
true effect changed, through the CLI against real Ray and a real MLflow store.

The toy's score is ... + model.shift + 0.001·model.width, and model.width applies only to model.kind=fancy: a
``--set model.width=504`` therefore moves the fancy cell by exactly +0.5 and leaves plain untouched (``--set
model.shift`` would move every cell: no sweep key sets one cell's shift alone).  eval.noise is 0, so each pair
difference is exact and the verdicts are exact too."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.helpers import ablate, assert_clean_error, cli_env, out, write_yaml


@pytest.fixture(scope="module")
def two_launches(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cmp")
    sweep = {"name": "cmptoy", "task": "toy", "metric": {"name": "score", "mode": "max"},
             "baseline": {"model.kind": "plain"}, "seeds": [0, 1],
             "fixed": {"train.epochs": 2, "model.width": 4},
             "scientific": {"model.kind": ["plain", "fancy"]}, "resources": {"cpu": 1}}
    f = write_yaml(tmp / "cmp.yaml", sweep)
    launches = []
    for extra in ([], ["--set", "model.width=504"]):
        r = ablate(["run", f, "--no-table", *extra], tmp, env=cli_env(tmp), timeout=900)
        assert r.returncode == 0, out(r)[-3000:]
        launches.append(re.search(r"\(launch (\S+);", r.stdout).group(1))
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp / 'home' / 'mlflow.db'}"
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("cmptoy").experiment_id
    parent_b = next(x for x in c.search_runs([exp]) if x.data.tags.get("ablate.phase") == "launch"
                    and x.data.tags["ablate.launch"] == launches[1])
    # launch B as if from another commit: the store's record of it (the shared checkout cannot move under a test)
    prov = json.loads(parent_b.data.tags["ablate.provenance"])
    c.set_tag(parent_b.info.run_id, "ablate.provenance", json.dumps({**prov, "commit": "f" * 40}))
    c.set_tag(parent_b.info.run_id, "ablate.git_commit", "f" * 40)
    return {"tmp": tmp, "file": f, "a": launches[0], "b": launches[1], "uri": uri}


def test_the_changed_cell_is_changed_and_the_other_is_not(two_launches):
    t = two_launches
    r = ablate(["compare", "cmptoy", t["a"], t["b"]], t["tmp"])
    assert r.returncode == 0, out(r)
    rows = {ln.split("|")[1].strip(): [x.strip() for x in ln.split("|")[1:-1]]
            for ln in r.stdout.splitlines() if ln.startswith("| model.kind=")}
    assert set(rows) == {"model.kind=plain", "model.kind=fancy"}, r.stdout
    fancy, plain = rows["model.kind=fancy"], rows["model.kind=plain"]
    assert fancy[9] == "yes" and fancy[10] == "better in B (exactly)" and fancy[11] == "model.width", fancy
    assert float(fancy[5]) == pytest.approx(0.5) and fancy[8] == "paired"
    assert plain[9] == "no" and plain[10] == "unchanged (exactly)" and plain[11] == "", plain
    differs = r.stdout.split("### What differs")[1]
    assert "- task keys: model.width" in differs
    assert "- sweep file:" in differs and "model.width: 504" in differs
    assert f"- git commit: A " in differs and f"B {'f' * 40}" in differs


def test_csv_and_the_sweep_file_form(two_launches):
    t = two_launches
    r = ablate(["compare", t["file"], t["a"], "latest", "--format", "csv"], t["tmp"])
    assert r.returncode == 0, out(r)
    rows = {row["cell"]: row for row in csv.DictReader(io.StringIO(r.stdout))}
    assert rows["model.kind=fancy"]["changed"] == "True" and rows["model.kind=plain"]["changed"] == "False"
    assert "differs: git commit:" in r.stderr


def test_bad_input_is_one_line_and_exit_2(two_launches, tmp_path):
    t = two_launches
    tmp = t["tmp"]
    assert_clean_error(ablate(["compare", "cmptoy", t["a"], "20990101-000000-abcdef"], tmp), 2,
                       "20990101-000000-abcdef")
    assert_clean_error(ablate(["compare", "cmptoy", t["a"], t["a"]], tmp), 2, "nothing to compare")
    assert_clean_error(ablate(["compare", "nosuch", t["a"], t["b"]], tmp), 2, "nosuch")
    assert_clean_error(ablate(["compare", "cmptoy", t["a"], t["b"], "--alpha", "2"], tmp), 2, "--alpha")
    # a launch of another sweep: named as such
    from mlflow.tracking import MlflowClient

    c = MlflowClient(t["uri"])
    other = c.create_experiment("othertoy")
    c.create_run(other, tags={"ablate.launch": "20200101-000000-aaaaaa", "ablate.sweep": "othertoy",
                              "ablate.phase": "final"})
    assert_clean_error(ablate(["compare", "cmptoy", t["a"], "20200101-000000-aaaaaa"], tmp), 2,
                       "othertoy", "not 'cmptoy'")
