"""The report's cost–accuracy picture (issue 24), in headless chromium: a launch written to a real MLflow store
the way sweeps/ writes one, with the cost probe's tags; the report shows the picture under "Cost and accuracy",
non-blank, the Pareto front marked (analysis/plot_pareto.py's red stars and step line), shown at no less than 80 % of its
natural size at 1280 px so its 8 pt labels stay readable."""
import base64
import io
import re

import numpy as np
import pytest

from analysis.report import collect_study, write_report
from tests.analysis.test_report import fake_launch
from tests.browser import INSTALL_HINT, DevTools, chromium

FLOPS = {"model.kind=plain": "100", "model.kind=fancy": "300"}


@pytest.mark.skipif(chromium() is None, reason=INSTALL_HINT)
def test_report_shows_the_pareto_picture(mlflow_store, tmp_path):
    from mlflow.tracking import MlflowClient
    from PIL import Image

    _, _, ids = fake_launch(mlflow_store, "pareto-report", tmp_path, parent=True)
    c = MlflowClient(mlflow_store)
    for (cell, _), rid in ids.items():
        c.set_tag(rid, "ablate.flops_fwd", FLOPS[cell])
    study = collect_study(mlflow_store, "pareto-report", launch="L1")
    assert study.pareto_png is not None, study.notes
    out = write_report([study], tmp_path / "report.html")
    html = out.read_text()
    m = re.search(r'<h3>Cost and accuracy</h3><figure><img alt="([^"]+)" src="data:image/png;base64,([^"]+)"', html)
    assert m and base64.b64decode(m.group(2)) == study.pareto_png
    rgb = np.asarray(Image.open(io.BytesIO(study.pareto_png)).convert("RGB"), dtype=int)
    assert min(rgb.shape[:2]) > 300 and rgb.std() > 10                          # not blank
    red = (rgb[..., 0] > 150) & (rgb[..., 0] - rgb[..., 1] > 80) & (rgb[..., 0] - rgb[..., 2] > 80)
    assert red.sum() > 100                        # the front's stars and step line (C3: red in any palette)
    with DevTools(out.resolve().as_uri(), window_size=(1280, 800)) as tab:
        sel = f"document.querySelector('img[alt=\"{m.group(1)}\"]')"
        tab.eval(f"{sel}.scrollIntoView(), true")
        got = tab.eval(f"(() => {{ const i = {sel}, r = i.getBoundingClientRect(); return [i.complete, "
                       f"i.naturalWidth, r.width, r.left, r.right, window.innerWidth, "
                       f"getComputedStyle(i).visibility, getComputedStyle(i).display]; }})()")
    complete, natural, width, left, right, inner, vis, disp = got
    assert complete and natural > 600 and vis == "visible" and disp != "none", got
    assert width >= 0.8 * natural and left >= 0 and right <= inner + 1, got    # readable, inside the window
