"""Regenerate the README's screenshots from `make demo`'s store:

    make demo && .venv/bin/python docs/img/screenshots.py demo

report.png: the top of the launch's HTML report in headless chromium;
mlflow-ui.png: the MLflow UI's runs table with the launch's parent run expanded.
Both are downscaled PNGs (< 300 KB) for the README.
"""
from __future__ import annotations

import base64
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.browser import DevTools, load_page, mlflow_server  # noqa: E402


def _shrink(png: Path, width: int = 1100) -> None:
    from PIL import Image

    img = Image.open(png).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img.save(png, optimize=True)


def report_shot(home: Path, out: Path) -> None:
    report = sorted((home / "reports").glob("quick-*.html"))[-1]
    load_page(report, screenshot=out, window_size=(1300, 1500))
    _shrink(out, width=1000)


def ui_shot(home: Path, out: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{home / 'mlflow.db'}"
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("quick")
    parent = next(r for r in c.search_runs([exp.experiment_id]) if r.data.tags.get("ablate.phase") == "launch")
    with mlflow_server(uri) as base, DevTools(f"{base}/#/experiments/{exp.experiment_id}/runs",
                                              window_size=(1400, 820)) as page:
        import time

        sel = f'.ag-row[row-id="{parent.info.run_id}"]'
        page.wait_for(f"!!document.querySelector('{sel}')", timeout=60)
        time.sleep(1.0)
        # the assistant side panel hides half the table: close it
        page.eval("(Array.from(document.querySelectorAll('button[aria-label=\"Close\"]')).pop() || {click(){}})"
                  ".click(), true")
        page.eval(f"document.querySelector('{sel} [col-id*=\"Run Name\"] button').click(), true")
        time.sleep(2.0)
        data = page.call("Page.captureScreenshot", session=page._session, format="png")["data"]
    out.write_bytes(base64.b64decode(data))
    _shrink(out)


if __name__ == "__main__":
    home = Path(sys.argv[1] if len(sys.argv) > 1 else "demo").resolve()
    here = Path(__file__).resolve().parent
    report_shot(home, here / "report.png")
    ui_shot(home, here / "mlflow-ui.png")
    for p in ("report.png", "mlflow-ui.png"):
        print(here / p, (here / p).stat().st_size // 1024, "KB")
