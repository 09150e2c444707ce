"""Issue 21, point 7: tuning seeds apart from evaluation seeds (Eimer et al. 2023), through ``ablate run`` in a
subprocess (real Ray, a real MLflow sqlite store in tmp). By default the nuisance search runs on the smallest seed
outside ``seeds:`` and the launch records it (tag ablate.search_seed, the search runs' params.seed); an explicit
``search.seed`` inside ``seeds:`` is honoured and the table flags the overlap."""
from __future__ import annotations

import pytest

from tests.helpers import ablate, cli_env, out, toy_sweep, write_yaml

FLAG = "TUNING OVERLAPS EVALUATION"


def _launch(tmp_path, name, search):
    sweep = toy_sweep(name, tmp_path, seeds=(0, 1))
    sweep["scientific"] = {"model.kind": ["plain", "fancy"]}
    sweep["nuisance"] = {"optim.lr": {"loguniform": [0.01, 0.5]}}
    sweep["search"] = {"trials_per_cell": 2, "scheduler": "none", **search}
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    r = ablate(["run", write_yaml(tmp_path / f"{name}.yaml", sweep), "--tracking-uri", uri], tmp_path,
               env=cli_env(tmp_path))
    assert r.returncode == 0 and "Traceback" not in out(r), out(r)[-3000:]
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    runs = c.search_runs([c.get_experiment_by_name(name).experiment_id], max_results=1000)
    search = [x for x in runs if x.data.tags.get("ablate.phase") == "search"]
    final = [x for x in runs if x.data.tags.get("ablate.phase") == "final"]
    assert len(search) == 4 and len(final) == 4, [x.data.tags.get("ablate.phase") for x in runs]
    return r.stdout, search, final


# in the default suite: test_sweep_integration.py::test_nuisance_search_per_cell_then_all_seeds (seed 2) and
# test_cli.py::test_nuisance_search_every_distribution_from_the_cli (the table's line)
@pytest.mark.slow
def test_search_runs_on_a_seed_outside_seeds_and_the_table_does_not_flag(tmp_path):
    md, search, final = _launch(tmp_path, "tune-apart", {})
    assert {x.data.tags.get("ablate.search_seed") for x in search + final} == {"2"}
    assert {x.data.params.get("seed") for x in search} == {"2"}
    assert {x.data.params.get("seed") for x in final} == {"0", "1"}
    assert FLAG not in md and "nuisance axes tuned on seed 2, apart from the evaluation seeds" in md, md


def test_an_explicit_search_seed_inside_seeds_is_flagged_in_the_table(tmp_path):
    md, search, _ = _launch(tmp_path, "tune-overlap", {"seed": 1})
    assert {x.data.tags.get("ablate.search_seed") for x in search} == {"1"}
    assert {x.data.params.get("seed") for x in search} == {"1"}
    assert FLAG in md and "tuned on seed 1" in md, md
