"""``ablate compare SWEEP A B``: did the numbers move between two launches of one sweep (issue 22)?

For every cell both launches ran, the difference B − A of the study metric over their FINISHED runs with its
(1 − α) interval, p and a "changed" flag.  The test is paired by seed when both launches ran the same seeds (the
seed fixes data order and initialisation, so the pair difference removes the seed's share of the variance), Welch
otherwise; both are analysis.stats.compare_to_baseline with A as the "baseline".  The cells' p-values are adjusted
with Holm across the cells (statsmodels' multipletests), as the ablation table does.  Two launches whose runs are
deterministic (no variance in the pair differences) have no defined t-test: a nonzero constant difference is then
"changed" (exact), zero is "unchanged" (exact).

Then what differs between the launches: the sweep file (their parents' ``sweep.yaml``), the task keys of each
common cell (the runs' params), cells only one launch has, and their provenance (sweeps/runner/provenance.py, the
tag ``ablate.provenance`` and ``provenance/packages.txt`` of each parent): git commit, diff and untracked files,
package versions, CUDA / cuDNN, host and device.
"""
from __future__ import annotations

import difflib
import json
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pandas as pd

from . import contract as C

PROVENANCE_ARTIFACT = "provenance"


@dataclass
class Comparison:
    sweep: str
    a: str
    b: str
    metric: str
    mode: str
    alpha: float
    cells: pd.DataFrame                           # one row per common cell (see compare_launches)
    differences: List[Tuple[str, str]] = field(default_factory=list)    # (what, detail)


def versions(lines: List[str]) -> Dict[str, str]:
    """``name==version`` lines -> {lower-case name: version}."""
    return {ln.split("==", 1)[0].lower(): ln.split("==", 1)[1] for ln in lines if "==" in ln}


def provenance_differences(old: Dict[str, object], new: Dict[str, object], old_pk: Optional[Dict[str, str]] = None,
                           new_pk: Optional[Dict[str, str]] = None,
                           names: Tuple[str, str] = ("recorded", "now")) -> List[str]:
    """One line per difference of two provenance summaries: commit, tree (diff + untracked), packages (the full
    lists when both are given, else the summaries' key packages), CUDA, cuDNN, host, device."""
    a, b = names
    out = []
    if old.get("commit") != new.get("commit"):
        out.append(f"git commit: {a} {old.get('commit')}, {b} {new.get('commit')}")
    if old.get("tree_sha256") != new.get("tree_sha256"):
        def tree(s):
            return ("clean" if not s.get("dirty") else
                    f"dirty, sha256 {str(s.get('tree_sha256'))[:12]}…, {s.get('untracked', 0)} untracked file(s)")
        out.append(f"git diff: {a} {tree(old)}, {b} {tree(new)}")
    pa, pb = (old_pk, new_pk) if old_pk is not None and new_pk is not None else (old.get("packages") or {},
                                                                                new.get("packages") or {})
    changed = [f"{k} {pa.get(k, '-')} -> {pb.get(k, '-')}" for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)]
    if changed:
        more = f" (+{len(changed) - 12} more)" if len(changed) > 12 else ""
        out.append(f"packages: {len(changed)} differ: {'; '.join(changed[:12])}{more}")
    for key in ("cuda", "cudnn", "host", "device"):
        if str(old.get(key)) != str(new.get(key)):
            out.append(f"{key}: {a} {old.get(key)}, {b} {new.get(key)}")
    return out


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def launch_sweep(uri: str, launch: str) -> Optional[str]:
    """The sweep (experiment) a launch id belongs to, in any experiment of the store; None if none."""
    c = _client(uri)
    exps = [e.experiment_id for e in c.search_experiments()]
    runs = c.search_runs(exps, C.equals(C.LAUNCH, launch), max_results=1) if exps else []
    return runs[0].data.tags.get(C.SWEEP) or c.get_experiment(runs[0].info.experiment_id).name if runs else None


def _parent(c, experiment_id: str, launch: str):
    runs = c.search_runs([experiment_id], f"{C.equals(C.LAUNCH, launch)} and {C.equals(C.PHASE, C.PHASE_LAUNCH)}",
                         max_results=1)
    return runs[0] if runs else None


def _artifact(c, rid: str, path: str) -> Optional[str]:
    try:
        return Path(c.download_artifacts(rid, path, tempfile.mkdtemp(prefix="ablate-cmp-"))).read_text()
    except Exception:  # noqa: BLE001 - an older launch, or a store without artifacts
        return None


def _finished(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    col = f"metrics.{metric}"
    ok = runs[(runs["status"] == "FINISHED") & runs.get(col, pd.Series(index=runs.index, dtype=float)).notna()]
    return ok.assign(value=pd.to_numeric(ok[col], errors="coerce"))


def _config(r: pd.Series) -> Dict[str, object]:
    return {k[len("params."):]: v for k, v in r.items() if k.startswith("params.") and k != "params.seed"
            and v is not None and not (isinstance(v, float) and math.isnan(v))}


def _changed_keys(ra: pd.DataFrame, rb: pd.DataFrame) -> List[str]:
    """Task keys whose value differs between the two launches' runs of one cell."""
    ca = [_config(r) for _, r in ra.iterrows()]
    cb = [_config(r) for _, r in rb.iterrows()]
    keys = sorted({k for d in ca + cb for k in d})
    return [k for k in keys if {repr(d.get(k)) for d in ca} != {repr(d.get(k)) for d in cb}]


def _one_cell(va, sa, vb, sb, mode: str, alpha: float) -> Dict[str, object]:
    from .stats import compare_to_baseline

    paired = len(sa) >= 2 and sorted(sa) == sorted(sb)
    test = "paired" if paired else "welch"
    res = compare_to_baseline({"B": vb}, va, mode=mode, alpha=alpha, correction="none", test=test,
                              seeds={"B": sb} if paired else None, baseline_seeds=sa if paired else None)
    cc = res.comparisons.get("B")
    row = dict(test=test, n_a=len(va), n_b=len(vb), delta=math.nan, ci_low=-math.inf, ci_high=math.inf,
               p=1.0, exact=False)
    if cc is None:
        return row
    row.update(delta=cc.delta, ci_low=cc.ci_low_unadj, ci_high=cc.ci_high_unadj, p=cc.p_value)
    if paired:
        d = np.asarray(vb)[np.argsort(sb)] - np.asarray(va)[np.argsort(sa)]
        row["exact"] = bool(np.all(d == d[0]))
    else:
        row["exact"] = len(set(va)) == 1 and len(set(vb)) == 1
    if row["exact"]:
        row.update(ci_low=row["delta"], ci_high=row["delta"], p=0.0 if row["delta"] != 0 else 1.0)
    return row


def compare_launches(uri: str, sweep: str, a: str, b: str, alpha: float = 0.05) -> Comparison:
    """The comparison of launches ``a`` and ``b`` of ``sweep``.  LookupError (one line) for an unknown sweep or
    launch, launches of another sweep, different study metrics, or no cell in common."""
    from .store import load_runs

    if a == b:
        raise LookupError(f"launches A and B are both {a}: nothing to compare")
    frames = {}
    for lid in (a, b):
        try:
            frames[lid] = load_runs(sweep, uri, launch=lid, epoch_times=False)
        except LookupError as e:
            other = launch_sweep(uri, lid)
            if other and other != sweep:
                raise LookupError(f"launch {lid} is a launch of sweep {other!r}, not {sweep!r}: compare launches "
                                  f"of one sweep") from None
            raise LookupError(str(e).strip('"')) from None
    ra, rb = frames[a], frames[b]
    metric, mode = ra.attrs["metric"], ra.attrs["mode"]
    if rb.attrs["metric"] != metric:
        raise LookupError(f"launches {a} and {b} have different study metrics ({metric!r}, {rb.attrs['metric']!r})")
    fa, fb = _finished(ra, metric), _finished(rb, metric)
    order = list(dict.fromkeys(list(ra["cell"].dropna()) + list(rb["cell"].dropna())))
    common = [cl for cl in order if cl in set(ra["cell"]) and cl in set(rb["cell"])]
    if not common:
        raise LookupError(f"launches {a} and {b} of {sweep!r} have no cell in common: nothing to compare")
    rows = []
    for cell in common:
        xa, xb = fa[fa["cell"] == cell], fb[fb["cell"] == cell]
        row = dict(cell=cell, mean_a=xa["value"].mean(), mean_b=xb["value"].mean())
        row.update(_one_cell(xa["value"].tolist(), xa["seed"].tolist(), xb["value"].tolist(), xb["seed"].tolist(),
                             mode, alpha))
        row["changed_keys"] = ", ".join(_changed_keys(ra[ra["cell"] == cell], rb[rb["cell"] == cell]))
        rows.append(row)
    cells = pd.DataFrame(rows)
    cells["p_adj"] = _holm(cells["p"].to_numpy())
    cells["changed"] = cells["p_adj"] < alpha
    cells["verdict"] = [_verdict(r, mode) for _, r in cells.iterrows()]
    cmp = Comparison(sweep, a, b, metric, mode, alpha, cells)
    cmp.differences = _differences(uri, ra, rb, a, b, order)
    return cmp


def _holm(p: np.ndarray) -> np.ndarray:
    from statsmodels.stats.multitest import multipletests

    ok = np.isfinite(p)
    out = np.ones_like(p, dtype=float)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


def _verdict(r: pd.Series, mode: str) -> str:
    if r["n_a"] == 0 or r["n_b"] == 0:
        return "no finished runs in one launch"
    if not r["changed"]:
        return "unchanged (exactly)" if r["exact"] else "no detectable change"
    better = (r["delta"] > 0) == (mode == "max")
    return f"{'better' if better else 'worse'} in B{' (exactly)' if r['exact'] else ''}"


def _differences(uri: str, ra: pd.DataFrame, rb: pd.DataFrame, a: str, b: str, order: List[str]):
    out: List[Tuple[str, str]] = []
    only_a = [cl for cl in order if cl in set(ra["cell"]) and cl not in set(rb["cell"])]
    only_b = [cl for cl in order if cl in set(rb["cell"]) and cl not in set(ra["cell"])]
    if only_a:
        out.append(("cells", f"only in A: {'; '.join(only_a)}"))
    if only_b:
        out.append(("cells", f"only in B: {'; '.join(only_b)}"))
    c = _client(uri)
    eid = str(ra["experiment_id"].iloc[0])
    pa, pb = _parent(c, eid, a), _parent(c, eid, b)
    ya = _artifact(c, pa.info.run_id, "sweep.yaml") if pa else None
    yb = _artifact(c, pb.info.run_id, "sweep.yaml") if pb else None
    if ya is not None and yb is not None:
        la, lb = ya.splitlines()[1:], yb.splitlines()[1:]          # line 1: "# FILE, as run by launch"
        diff = [ln for ln in difflib.unified_diff(la, lb, "A/sweep.yaml", "B/sweep.yaml", n=0, lineterm="")
                if not ln.startswith(("---", "+++", "@@"))]
        if diff:
            out.append(("sweep file", " | ".join(diff[:20]) + (f" (+{len(diff) - 20} lines)" if len(diff) > 20 else "")))
    keys = sorted({k for ks in _cells_keys(ra, rb) for k in ks})
    if keys:
        out.append(("task keys", ", ".join(keys)))
    ta, tb = (pa.data.tags if pa else {}), (pb.data.tags if pb else {})
    ga = ta.get(C.GIT_COMMIT) or _first_tag(ra, C.GIT_COMMIT)
    gb = tb.get(C.GIT_COMMIT) or _first_tag(rb, C.GIT_COMMIT)
    if ga != gb:
        out.append(("git commit", f"A {ga}, B {gb}"))
    sa, sb = ta.get(C.PROVENANCE), tb.get(C.PROVENANCE)
    if sa and sb:
        def pk(p, s):
            t = _artifact(c, p.info.run_id, f"{PROVENANCE_ARTIFACT}/packages.txt")
            return versions(t.splitlines()) if t is not None else None
        for line in provenance_differences(json.loads(sa), json.loads(sb), pk(pa, sa), pk(pb, sb), names=("A", "B")):
            what, detail = line.split(": ", 1)
            if what != "git commit":
                out.append((what, detail))
    else:
        missing = " and ".join(x for x, s in (("A", sa), ("B", sb)) if not s)
        out.append(("provenance", f"launch {missing} recorded none (from before it was stored): host "
                                  f"A {ta.get(C.DRIVER_HOST)}, B {tb.get(C.DRIVER_HOST)}"))
    return out


def _cells_keys(ra: pd.DataFrame, rb: pd.DataFrame):
    for cell in set(ra["cell"].dropna()) & set(rb["cell"].dropna()):
        yield _changed_keys(ra[ra["cell"] == cell], rb[rb["cell"] == cell])


def _first_tag(runs: pd.DataFrame, tag: str) -> Optional[str]:
    col = C.column(tag)
    vals = runs[col].dropna() if col in runs else []
    return vals.iloc[0] if len(vals) else None


def _fmt(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.4g}" if math.isfinite(x) else (
        "inf" if x > 0 else "-inf")


def render(cmp: Comparison, fmt: str = "md") -> str:
    """Markdown (the cell table, then what differs) or CSV (the cell table)."""
    t = cmp.cells
    if fmt == "csv":
        cols = ["cell", "n_a", "n_b", "mean_a", "mean_b", "delta", "ci_low", "ci_high", "p", "p_adj", "test",
                "exact", "changed", "verdict", "changed_keys"]
        return t[cols].to_csv(index=False).rstrip("\n")
    level = round(100 * (1 - cmp.alpha))
    lines = [f"## {cmp.sweep}: launch B {cmp.b} − launch A {cmp.a}, {cmp.metric} ({cmp.mode})", "",
             f"| cell | n A | n B | mean A | mean B | Δ B−A | {level}% CI | p (Holm) | test | changed | verdict "
             f"| changed keys |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in t.iterrows():
        lines.append(f"| {r['cell']} | {r['n_a']} | {r['n_b']} | {r['mean_a']:.4g} | {r['mean_b']:.4g} | "
                     f"{_fmt(r['delta'])} | [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}] | {r['p_adj']:.3g} | "
                     f"{r['test']} | {'yes' if r['changed'] else 'no'} | {r['verdict']} | {r['changed_keys']} |")
    lines += ["", "### What differs between A and B", ""]
    lines += [f"- {what}: {detail}" for what, detail in cmp.differences] or ["- nothing recorded differs"]
    return "\n".join(lines)
