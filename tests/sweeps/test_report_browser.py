"""What a reviewer opens, in a real browser (Debian's headless chromium):
`make demo`'s report, and the MLflow UI on the same store showing the launch
as one parent run with its trials nested, also after a driver SIGKILL and
`--resume`.  Skipped only when chromium is absent (the skip says how to
install it; .ci/run installs it)."""
from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.browser import INSTALL_HINT, chromium, external_refs, load_page, parse_tables, ui_nesting
from tests.helpers import ABLATE, ROOT, ablate, cli_env, finished_runs, free_port, out, toy_sweep, write_yaml

needs_chromium = pytest.mark.skipif(chromium() is None, reason=INSTALL_HINT)


def _pngs(dom: str):
    from PIL import Image

    for b64 in re.findall(r'src="data:image/png;base64,([^"]+)"', dom):
        yield np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("L"), dtype=float)


def _runs(uri: str, name: str):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    exp = c.get_experiment_by_name(name)
    return exp.experiment_id, c.search_runs([exp.experiment_id])


class _UI:
    """`ablate ui` as users start it, on a free port, stopped afterwards."""

    def __init__(self, cwd: Path, env: dict):
        self.port = free_port()
        self.p = subprocess.Popen([*ABLATE, "ui", "--port", str(self.port)], cwd=cwd, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        import urllib.request

        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=2)
                return
            except OSError:
                assert self.p.poll() is None, self.p.stdout.read().decode()[-2000:]
                time.sleep(0.5)
        raise AssertionError("ablate ui did not answer in 120 s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self):
        os.killpg(self.p.pid, signal.SIGTERM)
        self.p.wait(timeout=30)


def _nested(cwd: Path, env: dict, uri: str, name: str) -> None:
    exp_id, runs = _runs(uri, name)
    parents = [r for r in runs if r.data.tags.get("ablate.phase") == "launch"]
    trials = [r for r in runs if r.data.tags.get("ablate.phase") == "final"]
    assert len(parents) == 1 and trials
    assert {r.data.tags.get("mlflow.parentRunId") for r in trials} == {parents[0].info.run_id}, "an orphan trial"
    ui = _UI(cwd, env)
    try:
        seen = ui_nesting(ui.url, exp_id, parents[0].info.run_id)
    finally:
        ui.close()
    assert seen.nests([r.info.run_id for r in trials]), seen


@needs_chromium
def test_make_demo_report_in_chromium_and_the_launch_nested_in_the_mlflow_ui(tmp_path):
    env = cli_env(tmp_path, ABLATE_HOME=str(tmp_path / "demo"))
    # exactly what `make demo` runs
    r = ablate(["run", ROOT / "sweeps" / "quick.yaml", "--plot", tmp_path / "demo" / "quick.png"], tmp_path,
               env=env, timeout=900)
    assert r.returncode == 0, out(r)[-4000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("report: "), "the demo must end by printing the report's path"
    report = Path(last.split()[1])
    page = load_page(report, screenshot=tmp_path / "report.png")
    assert page.requests == [], f"the page fetched {page.requests}"
    assert [x for x in external_refs(report.read_text()) if x.tag != "a"] == []

    csv_text = ablate(["table", "quick", "--format", "csv"], tmp_path, env=env).stdout
    want = [row for row in csv.reader(io.StringIO(csv_text)) if row]
    for col in ("delta", "ci_low", "ci_high", "p_value", "p_adj", "hedges_g", "mde", "seeds_needed", "verdict",
                "epoch_s"):
        assert col in want[0], f"`ablate table quick --format csv` after make demo lacks {col}"
    table = next(t for t in parse_tables(page.dom) if "ablation" in t.classes)
    assert [a["data-col"] for a, _ in table.header] == want[0]
    assert [[a["data-value"] for a, _ in row] for row in table.rows] == want[1:]
    from PIL import Image

    shot = np.asarray(Image.open(tmp_path / "report.png").convert("L"), dtype=float)
    imgs = list(_pngs(page.dom))
    assert len(imgs) >= 2, "the plot and the learning curves"
    for img in imgs + [shot]:
        assert min(img.shape) > 200 and img.std() > 10, "a blank image"
    assert "quick.png" not in report.read_text(), "images must be embedded, not linked"

    _nested(tmp_path, env, f"sqlite:///{tmp_path / 'demo' / 'mlflow.db'}", "quick")


def _finished(uri, name):
    try:
        return finished_runs(uri, name)
    except Exception:  # noqa: BLE001 - a read while the launch writes; the poll tries again
        return []


# default suite: tests/sweeps/test_looks.py checks one parent run and every trial nested under it after a
# SIGKILL and resume; the MLflow UI's nesting of a launch: test_make_demo_report_in_chromium_and_the_launch_...
@pytest.mark.slow
@needs_chromium
def test_after_a_driver_sigkill_and_resume_the_launch_keeps_one_parent(tmp_path):
    env = cli_env(tmp_path)
    uri = f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}"
    f = write_yaml(tmp_path / "k.yaml", toy_sweep("killp", tmp_path, seeds=(0, 1, 2),
                                                  **{"train.sleep": 0.8, "train.epochs": 2}))
    log = tmp_path / "driver.log"
    with open(log, "w") as sink:            # a file, not a pipe nobody reads: a full pipe would stall the driver
        p = subprocess.Popen([*ABLATE, "run", str(f), "--no-table"], cwd=tmp_path, env=env, stdout=sink,
                             stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(_finished(uri, "killp")) < 2 and p.poll() is None:
        time.sleep(0.3)
    assert 2 <= len(_finished(uri, "killp")) < 9, \
        f"the sweep did not get going (exit {p.poll()}):\n{log.read_text()[-3000:]}"
    time.sleep(1.5)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    r = ablate(["run", f, "--resume", "--no-table"], tmp_path, env=env)
    assert r.returncode == 0, out(r)[-3000:]
    assert len(_finished(uri, "killp")) == 9
    state = json.loads(next((tmp_path / "home").rglob("killp.ablate.json")).read_text())
    _, runs = _runs(uri, "killp")
    parent = [x for x in runs if x.data.tags.get("ablate.phase") == "launch"]
    assert [x.info.run_id for x in parent] == [state["parent_run_id"]] and parent[0].info.status == "FINISHED"
    _nested(tmp_path, env, uri, "killp")
