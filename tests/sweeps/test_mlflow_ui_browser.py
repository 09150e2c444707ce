"""Issue 22, acceptance 4: the MLflow UI as a run browser, in a real browser.

`ablate run` of a toy sweep against a real sqlite store; `mlflow server` on it;
headless chromium opens the link the report gives for the launch
(``#/experiments/ID/runs?viewStateShareKey=<launch>``, the shared view the
launch tagged its experiment with) and the DOM must show every trial of the
launch as a row whose short run name, metric, scientific axes and seed are all
in visible columns, without a click.  Skipped only when chromium is absent."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.browser import INSTALL_HINT, DevTools, chromium, mlflow_server
from tests.helpers import ablate, cli_env, out, toy_sweep, write_yaml

needs_chromium = pytest.mark.skipif(chromium() is None, reason=INSTALL_HINT)

# Every rendered cell of the runs table (ag-grid; the pinned Run Name column and the
# scrolling columns are separate row elements with the same row-id): [row id, col id, text,
# left, right], with the page's visible width, so "in the default view" is "inside the window".
_CELLS_JS = """JSON.stringify({width: document.documentElement.clientWidth, cells:
  Array.from(document.querySelectorAll('.ag-row[row-id] .ag-cell')).map(c => {
    const b = c.getBoundingClientRect();
    return [c.closest('.ag-row').getAttribute('row-id'), c.getAttribute('col-id'), c.innerText.trim(),
            b.left, b.right]; })})"""


@needs_chromium
def test_a_launch_link_shows_its_trials_cell_seed_and_metric_as_columns(tmp_path):
    env = cli_env(tmp_path)
    f = write_yaml(tmp_path / "ui.yaml", toy_sweep("uiview", tmp_path, seeds=(0, 1)))
    r = ablate(["run", f, "--no-table"], tmp_path, env=env, timeout=600)
    assert r.returncode == 0, out(r)[-3000:]
    report = Path(r.stdout.strip().splitlines()[-1].split()[1])

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("uiview")
    runs = c.search_runs([exp.experiment_id])
    trials = {x.info.run_id: x for x in runs if x.data.tags.get("ablate.phase") == "final"}
    launch = runs[0].data.tags["ablate.launch"]
    assert len(trials) == 6
    names = {x.info.run_name for x in trials.values()}
    assert names == {"plain s0", "plain s1", "fancy width=2 s0", "fancy width=2 s1", "fancy width=4 s0",
                     "fancy width=4 s1"}, names
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"
    link = f"/#/experiments/{exp.experiment_id}/runs?viewStateShareKey={launch}"
    assert link in report.read_text().replace("&amp;", "&"), "the report must link the launch's view"

    with mlflow_server(uri) as base, DevTools(base + link, window_size=(1600, 1000)) as page:
        ready = f"document.querySelectorAll('.ag-row[row-id] [col-id=\"params.`seed`\"]').length >= {len(trials)}"
        assert page.wait_for(ready, timeout=90), "the launch view did not show a seed column for every trial"
        time.sleep(1.0)                                  # let the last cells render
        seen = json.loads(page.eval(_CELLS_JS))
    rows: dict = {}
    for rid, col, text, left, right in seen["cells"]:
        rows.setdefault(rid, {})[col] = (text, left, right)
    assert set(rows) == set(trials), "the view lists exactly the launch's trials (no parent row to expand)"
    for rid, run in trials.items():
        cells = rows[rid]
        for col, want in [("attributes.`Run Name`", run.info.run_name),
                          ("metrics.`score`", run.data.metrics["score"]),
                          ("params.`model.kind`", run.data.params["model.kind"]),
                          ("params.`seed`", run.data.params["seed"])]:
            assert col in cells, f"{run.info.run_name}: no {col} column in the view"
            text, left, right = cells[col]
            assert 0 <= left and right <= seen["width"], f"{run.info.run_name}: {col} is outside the window"
            if col == "metrics.`score`":
                assert float(text) == pytest.approx(want, rel=1e-6)
            else:
                assert text.endswith(want), (col, text, want)       # the name cell starts with its colour dot
        width = run.data.params.get("model.width")
        assert cells["params.`model.width`"][0] == (width if run.data.params["model.kind"] == "fancy" else "-")
