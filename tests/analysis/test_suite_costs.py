"""analysis/suite_table.py's cost ratios (issue 24): per shared cell, the median over the studies of each study's
own ratio to its baseline (params_x, flops_x, mem_x, lat_b1_x), in the CSV frame and the Markdown/LaTeX text."""
import io

import numpy as np
import pandas as pd
import pytest

from analysis.suite_table import render_suite_summary, summarize


def _table(values, ratios, baseline="m=0"):
    """A table frame as ablation_table makes it, reduced to what the suite summary reads."""
    cells = list(values)
    t = pd.DataFrame({"cell": cells, "n": [len(values[c]) for c in cells], "verdict": ["" if c == baseline else "undecided" for c in cells],
                      "baseline": [c == baseline for c in cells]})
    for name in ("params_x", "flops_x", "mem_x", "lat_b1_x"):
        t[name] = [ratios.get(c, {}).get(name, 1.0 if c == baseline else np.nan) for c in cells]
    t.attrs.update(baseline_cell=baseline, mode="max", values={c: dict(enumerate(v)) for c, v in values.items()})
    return t


def test_median_cost_ratio_across_studies():
    rng = np.random.default_rng(0)
    vals = lambda: {f"m={m}": list(rng.normal(m, 1.0, 4)) for m in (0, 1, 2)}
    tables = [("s.a", _table(vals(), {"m=1": {"params_x": 0.25, "flops_x": 1.0, "mem_x": 0.5, "lat_b1_x": 2.0},
                                      "m=2": {"params_x": 4.0}})),
              ("s.b", _table(vals(), {"m=1": {"params_x": 0.25, "flops_x": 3.0, "mem_x": 0.7, "lat_b1_x": 1.0},
                                      "m=2": {"params_x": 2.0}})),
              ("s.c", _table(vals(), {"m=1": {"params_x": 0.5, "flops_x": 2.0, "lat_b1_x": 4.0}}))]   # no memory
    f = summarize(tables).frame.set_index("cell")
    assert f.loc["m=1", "params_x"] == 0.25 and f.loc["m=1", "flops_x"] == 2.0 and f.loc["m=1", "lat_b1_x"] == 2.0
    assert f.loc["m=1", "mem_x"] == pytest.approx(0.6)          # median of the two studies that measured it
    assert f.loc["m=2", "params_x"] == 3.0 and np.isnan(f.loc["m=2", "flops_x"])
    assert f.loc["m=0", "params_x"] == 1.0
    csv = pd.read_csv(io.StringIO(render_suite_summary(tables, "csv")))
    assert {"params_x", "flops_x", "mem_x", "lat_b1_x"} <= set(csv.columns)
    md = render_suite_summary(tables, "md")
    row = next(ln for ln in md.splitlines() if ln.startswith("| m=1"))
    assert "0.25× params, 2× FLOPs, 0.6× mem, 2× lat b=1" in row
    assert "cost (median ratio to baseline)" in md and "median over the studies that measured it" in md
    m2 = next(ln for ln in md.splitlines() if ln.startswith("| m=2"))
    assert "3× params" in m2 and "FLOPs" not in m2
    tex = render_suite_summary(tables, "latex")
    assert r"\begin{tabular}{llllrrl}" in tex and "0.25" in tex and " params, 2" in tex


def test_tables_without_cost_columns_still_summarize():
    rng = np.random.default_rng(1)
    tables = []
    for name in ("s.a", "s.b"):
        t = _table({f"m={m}": list(rng.normal(m, 1.0, 4)) for m in (0, 1)}, {})
        tables.append((name, t.drop(columns=["params_x", "flops_x", "mem_x", "lat_b1_x"])))
    f = summarize(tables).frame
    assert f["params_x"].isna().all()
    assert "| –" in next(ln for ln in render_suite_summary(tables, "md").splitlines() if ln.startswith("| m=1"))
