"""The report's conclusion first (issue 27): in headless chromium at 1280 px, ``ablate report``'s page shows
each cell's mean ± std, its Δ with the interval and the verdict without scrolling, sideways or down; the long
tail (unadjusted p, Hedges g, MDE, seeds needed, cost, and any column a later version adds) is one click away
in the table of every CSV column, which stays checkable against ``ablate table --format csv``."""
from __future__ import annotations

import csv
import io
import re

import pytest

from tests.browser import INSTALL_HINT, DevTools, chromium
from tests.helpers import ablate, cli_env, out

needs_chromium = pytest.mark.skipif(chromium() is None, reason=INSTALL_HINT)
AXES = {"model.linear": ["dense", "cdlinear", "cdlinear", "cdlinear", "cdlinear"],
        "model.block_size": [None, 4, 8, 16, 32],
        "optim.lr_schedule_name": ["cosine_with_warmup"] * 5}
SHIFT = [0.0, -0.4, -1.5, -0.05, +1.2]       # per cell: undecided, worse, equivalent-ish, better


def _launch(uri: str, name: str, tmp_path) -> None:
    """A launch written as the runner writes one (the contract's tags, params, per-epoch metrics): five cells
    over three axes with long names and values, four seeds each."""
    from mlflow.tracking import MlflowClient

    from analysis import contract as C

    c = MlflowClient(uri)
    eid = c.create_experiment(name, artifact_location=(tmp_path / "art").as_uri())
    cells = [",".join(f"{a}={v[i]}" for a, v in AXES.items() if v[i] is not None) for i in range(5)]
    for i, cell in enumerate(cells):
        for seed in range(4):
            tags = {C.PHASE: C.PHASE_FINAL, C.LAUNCH: "20260101-000000-abcdef", C.CELL: cell, C.SEED: str(seed),
                    C.CELL_INDEX: str(i), C.METRIC: "test_accuracy_top1", C.MODE: "max", C.BASELINE_CELL: cells[0],
                    C.TASK: "toy", C.N_PARAMS: str(123456 // (i + 1)), C.GIT_COMMIT: "abc123"}
            rid = c.create_run(eid, tags=tags, run_name=f"final:{cell}:seed={seed}").info.run_id
            for a, v in AXES.items():
                if v[i] is not None:
                    c.log_param(rid, a, v[i])
            c.log_param(rid, "seed", seed)
            for ep in range(1, 4):
                c.log_metric(rid, "test_accuracy_top1", 90 + SHIFT[i] + 0.1 * ep + 0.3 * ((seed * 7 + i) % 4),
                             step=ep)
                c.log_metric(rid, "epoch_seconds", 0.5 + 0.01 * i, step=ep)
            c.set_terminated(rid, "FINISHED")


@needs_chromium
def test_the_verdicts_are_in_view_at_1280_px_and_the_long_tail_one_click_away(mlflow_store, tmp_path):
    name = "layout-wide"
    _launch(mlflow_store, name, tmp_path)
    env = cli_env(tmp_path)
    csv_text = ablate(["table", name, "--format", "csv", "--tracking-uri", mlflow_store], tmp_path, env=env)
    assert csv_text.returncode == 0, out(csv_text)
    want = list(csv.DictReader(io.StringIO(csv_text.stdout)))
    head = csv_text.stdout.splitlines()[0].split(",")
    page = tmp_path / "report.html"
    r = ablate(["report", name, "-o", page, "--tracking-uri", mlflow_store], tmp_path, env=env)
    assert r.returncode == 0, out(r)

    with DevTools(page.resolve().as_uri(), window_size=(1280, 800)) as tab:
        width, height = tab.eval("[window.innerWidth, window.innerHeight]")
        assert 1200 <= width <= 1280, width
        # the study's first table is its conclusion; every verdict cell in it lies inside the viewport
        first = "document.querySelector('section table')"
        cols = tab.eval(f"Array.from({first}.tHead.rows[0].cells).map(c => c.dataset.col)")
        assert cols == ["model.linear", "model.block_size", "optim.lr_schedule_name", "n", "mean", "delta", "p_adj",
                        "verdict"], cols
        boxes = tab.eval(f"Array.from({first}.querySelectorAll('td[data-col=verdict]')).map(td => "
                         "{const r = td.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom, td.textContent]})")
        assert len(boxes) == 5
        for left, top, right, bottom, text in boxes:
            assert 0 <= left and right <= width and 0 <= top and bottom <= height, (left, top, right, bottom, text)
        assert tab.eval("document.documentElement.scrollWidth <= window.innerWidth + 1"), "the page scrolls sideways"
        assert tab.eval(f"{first}.parentElement.scrollWidth <= {first}.parentElement.clientWidth + 1"), \
            "the conclusion scrolls sideways"
        got = tab.eval(f"Array.from({first}.tBodies[0].rows).map(r => Array.from(r.cells).map(c => "
                       "[c.dataset.col, c.dataset.value, c.textContent]))")
        # the long tail is in the table of every CSV column, folded until asked for
        tail = ["p_value", "hedges_g", "mde", "seeds_needed", "params", "epoch_s"]
        hidden = tab.eval("Array.from(document.querySelectorAll('table.ablation th')).filter(th => "
                          "!th.checkVisibility()).map(th => th.dataset.col)")
        assert set(tail) <= set(hidden), hidden
        assert tab.eval("Array.from(document.querySelectorAll('table.ablation th')).map(th => th.dataset.col)") == head
        tab.eval("document.querySelector('details.alltab > summary').click(), true")
        shown = tab.eval("Array.from(document.querySelectorAll('table.ablation th')).filter(th => "
                         "th.checkVisibility()).map(th => th.dataset.col)")
        assert shown == head
    summary = open(page, encoding="utf-8").read().split('<details class="alltab"><summary>')[1].split("</summary>")[0]
    for label in ("p (unadjusted)", "Hedges g", "MDE", "seeds needed", "params", "s / epoch"):
        assert label in summary, summary

    # every number shown is the CSV's, rounded; Δ with its interval as in the Markdown table
    for row, w in zip(got, want):
        cell = {col: (value, text) for col, value, text in row}
        assert cell["mean"][0] == w["mean"] and cell["delta"][0] == w["delta"] and cell["verdict"][0] == (
            "" if w["baseline"] == "True" else w["verdict"])
        m, s = re.fullmatch(r"([\d.]+) ± ([\d.]+)", cell["mean"][1]).groups()
        assert float(m) == pytest.approx(float(w["mean"]), abs=0.06) and float(s) == pytest.approx(float(w["std"]),
                                                                                                   abs=0.06)
        if w["baseline"] == "True":
            assert cell["delta"][1] == "baseline"
            continue
        d, lo, hi = (float(x.replace("−", "-")) for x in re.fullmatch(
            r"([+−][\d.]+) \[(−?[\d.]+), (−?[\d.]+)\]", cell["delta"][1]).groups())
        assert (d, lo, hi) == pytest.approx((float(w["delta"]), float(w["ci_low"]), float(w["ci_high"])), abs=0.06)
        assert cell["verdict"][1].startswith(w["verdict"]) and cell["p_adj"][0] == w["p_adj"]
    assert {w["verdict"] for w in want if w["baseline"] != "True"} >= {"better", "worse"}
