"""Issue 24 through the CLI: `ablate run` (real Ray, real MLflow store) then `ablate table --format csv` has every
cost column filled for every cell, `ablate table --cost` prints the cost table, and `ablate plot --kind pareto
--cost ...` writes a non-blank PNG (a bad --cost combination is a one-line exit 2)."""
import io

import numpy as np
import pandas as pd

from tests.helpers import ablate, assert_clean_error, cli_env, out, toy_sweep, write_yaml

# the toy task's model holds parameters but is never called (its loss reads them directly): the probe marks the
# FLOPs / memory / latency not applicable with the reason; what needs no forward is filled
COSTS = ["threads", "trial_s", "params_x"]


def test_cost_columns_table_and_pareto(tmp_path):
    env = cli_env(tmp_path)
    f = write_yaml(tmp_path / "cost.yaml", toy_sweep("costtoy", tmp_path, seeds=(0, 1)))
    r = ablate(["run", f], tmp_path, env)
    assert r.returncode == 0, out(r)[-3000:]
    r = ablate(["table", "costtoy", "--format", "csv"], tmp_path, env)
    assert r.returncode == 0, out(r)[-2000:]
    csv = pd.read_csv(io.StringIO(r.stdout))
    assert len(csv) == 3
    for col in COSTS:
        assert pd.to_numeric(csv[col], errors="coerce").gt(0).all(), (col, csv[col].tolist())
    assert csv["cost_note"].str.contains("was not called in training mode").all() and csv["flops_fwd"].isna().all()
    base = csv[csv["baseline"]].iloc[0]
    assert base["params_x"] == 1.0
    assert np.isclose(csv["params_x"], csv["params"] / base["params"]).all()
    r = ablate(["table", "costtoy", "--cost"], tmp_path, env)
    assert r.returncode == 0 and "FLOPs/sample fwd" in r.stdout and "not called" in r.stdout, out(r)[-2000:]
    assert "FLOPs/sample" not in ablate(["table", "costtoy"], tmp_path, env).stdout     # compact default
    png = tmp_path / "p.png"
    r = ablate(["plot", "costtoy", "--kind", "pareto", "--cost", "params", "-o", png], tmp_path, env)
    assert r.returncode == 0 and png.exists(), out(r)[-2000:]
    import matplotlib.image as mpimg

    img = mpimg.imread(png)
    assert img.shape[0] > 300 and img[..., :3].std() > 0.05       # not blank
    assert_clean_error(ablate(["plot", "costtoy", "--cost", "flops"], tmp_path, env), 2, "--kind pareto")
