"""analysis/report.py and analysis/curves.py: the HTML report of a launch,
checked on a real store in a real headless chromium (tests/browser.py), and
the MLflow UI's nesting of a launch's parent run and its trials."""
from __future__ import annotations

import base64
import csv
import io
import math
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.curves import curve_summary, load_histories, plot_curves
from analysis.report import collect_study, render_html, run_url, write_report
from analysis.store import load_runs
from analysis.tables import ablation_table, render
from tests.browser import (INSTALL_HINT, DevTools, chromium, external_refs, load_page, mlflow_server,
                           parse_tables, ui_nesting)

needs_chromium = pytest.mark.skipif(chromium() is None, reason=INSTALL_HINT)
UI = "http://127.0.0.1:5000"
CELLS = ["model.kind=plain", "model.kind=fancy"]
REASON = "Traceback (most recent call last):\n  File \"x.py\", line 1\nRuntimeError: injected error at epoch 2"


def value(cell: str, seed: int, epoch: int) -> float:
    return 0.5 + 0.1 * CELLS.index(cell) + 0.05 * epoch + 0.013 * ((seed * 7 + epoch) % 5)


def fake_launch(uri, name, tmp_path, *, parent: bool, sweep_text=None):
    """A launch written the way sweeps/ writes one (trials tagged, per-epoch
    metrics), with or without the launch's parent run; one FAILED trial."""
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    eid = c.create_experiment(name, artifact_location=(tmp_path / f"art-{name}").as_uri())
    pid = None
    if parent:
        pid = c.create_run(eid, run_name="launch:L1", tags={"ablate.phase": "launch", "ablate.launch": "L1"}).info.run_id
        if sweep_text is not None:
            c.log_text(pid, sweep_text, "sweep.yaml")
        c.set_terminated(pid, "FINISHED")
    ids = {}
    for idx, cell in enumerate(CELLS):
        for seed in range(4):
            tags = {"ablate.phase": "final", "ablate.launch": "L1", "ablate.cell": cell, "ablate.seed": str(seed),
                    "ablate.metric": "score", "ablate.mode": "max", "ablate.baseline_cell": CELLS[0],
                    "ablate.cell_index": str(idx), "ablate.task": "toy", "ablate.hostname": f"node{seed % 2}",
                    "ablate.git_commit": "abc123", "ablate.n_params": "4",
                    **({"mlflow.parentRunId": pid} if pid else {})}
            rid = c.create_run(eid, tags=tags, run_name=f"final:{cell}:seed={seed}").info.run_id
            c.log_param(rid, "model.kind", cell.split("=")[1])
            failed = cell == CELLS[1] and seed == 3
            for ep in range(1, 2 if failed else 4):
                c.log_metric(rid, "score", value(cell, seed, ep), step=ep)
                c.log_metric(rid, "train_loss", 1.0 / (ep + seed), step=ep)
            if failed:
                c.set_tag(rid, "ablate.failure_reason", REASON)
                c.set_tag(rid, "ablate.retries", "2")
            c.set_terminated(rid, "FAILED" if failed else "FINISHED")
            ids[(cell, seed)] = rid
    return eid, pid, ids


def test_curve_summary_equals_numpy_and_rejects_bad_frames(mlflow_store, tmp_path):
    eid, _, ids = fake_launch(mlflow_store, "curves-np", tmp_path, parent=False)
    runs = load_runs("curves-np", mlflow_store, launch="L1")
    hist = load_histories(mlflow_store, runs["run_id"], ["score", "train_loss"])
    assert len(hist) == 2 * (7 * 3 + 1)
    s = curve_summary(hist, runs, "score")
    assert list(s["cell"].unique()) == CELLS and len(s) == 6
    for _, r in s.iterrows():                       # the FAILED seed (fancy, 3) is not in the mean
        seeds = [0, 1, 2, 3] if r["cell"] == CELLS[0] else [0, 1, 2]
        v = np.array([value(r["cell"], sd, int(r["step"])) for sd in seeds])
        assert r["n"] == len(v) and r["mean"] == pytest.approx(v.mean(), abs=1e-12)
        assert r["std"] == pytest.approx(v.std(ddof=1), abs=1e-12)
    with_nan = pd.concat([hist, pd.DataFrame([{"run_id": ids[(CELLS[0], 0)], "metric": "score", "step": 1,
                                               "value": math.nan}])])
    assert curve_summary(with_nan, runs, "score").equals(s), "a NaN point must not enter the mean"
    with pytest.raises(ValueError, match="history is missing columns"):
        curve_summary(hist.drop(columns="step"), runs, "score")
    with pytest.raises(ValueError, match="metrics must be a non-empty list"):
        plot_curves(runs, hist, "score", tmp_path / "c.png")
    out = plot_curves(runs, hist, ["score", "train_loss"], tmp_path / "c.png", modes={"score": "max"})
    from PIL import Image

    img = np.asarray(Image.open(out).convert("L"), dtype=float)
    assert img.shape[1] > 1000 and img.std() > 10


def test_parent_run_sweep_file_suite_and_validation(mlflow_store, tmp_path):
    text = "name: with-parent\ntask: toy\npaper: Doe et al. 2024\nseeds: [0, 1, 2, 3]\n"
    _, pid, ids = fake_launch(mlflow_store, "with-parent", tmp_path, parent=True, sweep_text=text)
    fake_launch(mlflow_store, "no-parent", tmp_path, parent=False)
    a = collect_study(mlflow_store, "with-parent")
    b = collect_study(mlflow_store, "no-parent", launch="L1")
    assert a.parent_run_id == pid and a.sweep_yaml == text and a.paper == "Doe et al. 2024"
    assert b.parent_run_id is None and b.sweep_yaml is None and b.paper == "not recorded"
    assert a.task == "toy" and a.git_commits == ("abc123",) and a.hosts == ("node0", "node1")
    assert a.trial_wall_median_s >= 0 and a.wall_s >= a.trial_wall_median_s and a.plot_png and a.curves_png
    summary = pd.DataFrame({"study": ["with-parent", "no-parent"], "best": [0.71234567, 0.7]})
    page = render_html([a, b], title="suite <x>", suite_summary=summary)
    assert "<title>suite &lt;x&gt;</title>" in page and "Cross-task summary" in page and "0.7123" in page
    assert page.count('<section id="study-') == 2 and 'href="#study-with-parent"' in page
    assert f'<pre>{text}</pre>' in page.replace("&#x27;", "'") and "<p>not recorded</p>" in page
    assert run_url(UI, "7", pid) == f"{UI}/#/experiments/7/runs/{pid}" and f'href="{run_url(UI, a.experiment_id, pid)}"' in page
    bad = ids[(CELLS[1], 3)]
    assert f"ablate trial --from-run {bad}" in page and "RuntimeError: injected error at epoch 2</summary>" in page
    assert "<pre>Cross" not in page and "<pre>x</pre>" in render_html([a], suite_summary="x")
    for kw, msg in [({"ui_url": "ftp://host"}, "ui_url must be an http"), ({"ui_url": "localhost:5000"}, "ui_url"),
                    ({"suite_summary": 3}, "suite_summary must be")]:
        with pytest.raises(ValueError, match=msg):
            render_html([a], **kw)
    with pytest.raises(ValueError, match="studies must be a non-empty list of ReportStudy"):
        render_html([])
    with pytest.raises(LookupError, match="no runs of launch 'L9'"):
        collect_study(mlflow_store, "no-parent", launch="L9")


SWEEP = {"name": "report-toy", "task": "toy", "description": "report test: the 4-epoch cell diverges at epoch 4",
         "paper": "none (platform self-test)", "metric": {"name": "score", "mode": "max"},
         "baseline": {"train.epochs": 2}, "seeds": [0, 1, 2],
         # fault.kind nan fires at fault.epoch 4: only the cell that trains 4 epochs reaches it
         "fixed": {"fault.kind": "nan", "fault.epoch": 4, "model.x0": 2.0},
         "scientific": {"train.epochs": [2, 3, 4]}, "resources": {"cpu": 1}, "max_failures": 0}


def _png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)


@needs_chromium
# the toy's score does not depend on the seed: Welch's test on identical values warns
@pytest.mark.filterwarnings("ignore:Precision loss occurred in moment calculation")
def test_report_of_a_real_launch_in_chromium(sweep_runner, tmp_path):
    path = tmp_path / "report-toy.yaml"
    path.write_text(yaml.safe_dump(SWEEP, sort_keys=False))
    summary, runs = sweep_runner(path, smoke=False)
    assert summary["counts"] == {"trials": 9, "finished": 6, "failed": 3}
    study = collect_study(sweep_runner.uri, "report-toy", launch=summary["launch"], sweep_yaml=path.read_text())
    out = write_report([study], tmp_path / "report.html", ui_url=UI)
    page = load_page(out, screenshot=tmp_path / "shot.png")
    dom, text = page.dom, out.read_text()

    # the table is the CSV of the analysis, cell by cell, the best row marked
    want = list(csv.reader(io.StringIO(render(ablation_table(runs), "csv"))))
    table = next(t for t in parse_tables(dom) if "ablation" in t.classes)
    assert [a["data-col"] for a, _ in table.header] == want[0]
    assert [[a["data-value"] for a, _ in row] for row in table.rows] == want[1:]
    for row, attrs in zip(table.rows, table.row_attrs):
        for a, shown in row:
            v = a["data-value"]
            if v in ("True", "False"):
                assert (shown != "") == (v == "True")
            elif re.fullmatch(r"-?[\d.]+(e-?\d+)?", v):
                assert float(shown.replace(",", "")) == pytest.approx(float(v), rel=1e-3, abs=1e-12), (v, shown)
        assert ("best" in attrs.get("class", "").split()) == (dict(zip(want[0], [a["data-value"] for a, _ in row]))["best"] == "True")
    assert sum("best" in a.get("class", "") for a in table.row_attrs) == 1

    # both figures and the screenshot decode to real, non-blank images
    pngs = [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', dom)]
    assert len(pngs) == 3 and study.plot_png in pngs and study.curves_png in pngs and study.pareto_png in pngs
    for img in [_png_pixels(p) for p in pngs] + [_png_pixels(page.screenshot.read_bytes())]:
        assert min(img.shape) > 300 and img.std() > 10 and (img < 200).mean() > 0.01

    # every failed trial with its reason, retries and the command that reruns it alone
    fails = next(t for t in parse_tables(dom) if "failures" in t.classes)
    failed = runs[runs["status"] == "FAILED"]
    assert len(fails.rows) == len(failed) == 3
    for (_, r), row in zip(failed.iterrows(), fails.rows):
        cells = [txt for _, txt in row]
        assert cells[:3] == [r["cell"], str(r["seed"]), "FAILED"] and "train_loss became nan at epoch 4" in cells[3]
        assert cells[4] == "0" and cells[5] == f"ablate trial --from-run {r['run_id']}"
    for rid in runs["run_id"]:
        assert f'href="{UI}/#/experiments/{summary["experiment_id"]}/runs/{rid}"' in dom
    # the header and the sweep file as run
    for s in (summary["launch"], "report-toy", "toy", "none (platform self-test)", "6 finished, 3 failed",
              runs["tags.ablate.git_commit"].iloc[0], runs["tags.ablate.hostname"].iloc[0], "fault.epoch: 4"):
        assert s in dom, s

    # nothing leaves the file: no request in the net log, no external reference but the MLflow links
    assert page.requests == [], page.requests
    refs = external_refs(text)
    assert refs and all(r.tag == "a" and r.attr == "href" and r.url.startswith(f"{UI}/#/experiments/") for r in refs)

    # the inline script sorts; a narrow window scrolls the table, not the page
    with DevTools(out.resolve().as_uri(), window_size=(700, 900)) as tab:
        assert tab.eval("document.documentElement.scrollWidth <= window.innerWidth + 1")
        col = "document.querySelector('table.ablation th[data-col=\"mean\"]')"
        tab.eval(f"{col}.click(), true")
        got = tab.eval("Array.from(document.querySelectorAll('table.ablation td[data-col=\"mean\"]'))"
                       ".map(td => td.dataset.value)")
    nums = [float(v) for v in got if v]
    assert nums == sorted(nums) and got[len(nums):] == [""] * (len(got) - len(nums))


@needs_chromium
def test_mlflow_ui_nests_children_under_the_launch_run(mlflow_store):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(mlflow_store)
    nested, flat = c.create_experiment("ui-nested"), c.create_experiment("ui-flat")
    pid = c.create_run(nested, run_name="launch:L1", tags={"ablate.phase": "launch"}).info.run_id
    kids = [c.create_run(nested, run_name=f"final:c{i}:seed=0", tags={"mlflow.parentRunId": pid}).info.run_id
            for i in range(3)]
    other = c.create_run(nested, run_name="unrelated").info.run_id
    flat_ids = [c.create_run(flat, run_name=f"final:c{i}:seed=0").info.run_id for i in range(3)]
    for rid in [pid, *kids, other, *flat_ids]:
        c.set_terminated(rid, "FINISHED")
    with mlflow_server(mlflow_store) as base:
        seen = ui_nesting(base, nested, pid)
        assert seen.parent_listed and seen.expander and seen.nests(kids), seen
        assert other not in seen.children and not seen.nests(kids[:2])
        flat_seen = ui_nesting(base, flat, flat_ids[0])
        assert flat_seen.parent_listed and not flat_seen.expander and not flat_seen.nests(flat_ids[1:]), flat_seen
        assert {r for r, _ in flat_seen.rows} == set(flat_ids)
