"""Our ablation numbers beside the papers' published ones (``ablate table --paper``).

The published numbers live in one data file, ``analysis/published.yaml``: a list
of entries ``{sweep, paper, notes, metric, rows: [{cell, value, table, note}]}``.
A row may name its own ``metric`` (default: the entry's); ``--paper`` shows the
rows of the metric being tabulated.  A row's ``cell`` names scientific-axis values and, where the paper's setting
differs from our default, fixed keys too (``data.name: cifar10``); a row
matches our cell only if the runs really had those values, so a CIFAR number
is never set beside a digits result.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
DATA = HERE / "published.yaml"


def load_published(path: Optional[Path] = None) -> Dict[str, Dict[str, Any]]:
    """sweep (experiment) name → entry, from analysis/published.yaml (or ``path``)."""
    entries: List[Dict[str, Any]] = []
    files = [path or DATA]
    for f in files:
        if f and f.exists():
            doc = yaml.safe_load(f.read_text()) or []
            if isinstance(doc, dict):
                doc = doc.get("studies", [doc]) if "studies" in doc and "sweep" not in doc else [doc]
            entries.extend(doc)
    out = {}
    for e in entries:
        if e["sweep"] in out:
            raise ValueError(f"published numbers for sweep {e['sweep']!r} appear twice")
        out[e["sweep"]] = e
    return out


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return str(a) == str(b)


def _matches(cell: Dict[str, Any], table_row: pd.Series, runs: Optional[pd.DataFrame], axes) -> bool:
    for k, v in cell.items():
        if k in axes:
            if table_row.get(k) is None or not _same(table_row[k], v):
                return False
        else:
            col = f"params.{k}"
            if runs is None or col not in runs:
                return False
            vals = runs.loc[runs["cell"] == table_row["cell"], col].dropna().unique()
            if len(vals) != 1 or not _same(vals[0], v):
                return False
    return True


def comparison(name: str, table: pd.DataFrame, runs: Optional[pd.DataFrame] = None,
               published: Optional[Dict[str, Dict[str, Any]]] = None) -> pd.DataFrame:
    """One row per (published row, our cell) match, plus published rows we did not run."""
    published = published if published is not None else load_published()
    entry = published.get(name)
    if entry is None:
        raise LookupError(f"no published numbers for sweep {name!r}; known: {', '.join(sorted(published)) or '(none)'}")
    axes = table.attrs.get("axes", [])
    rows = []
    shown = table.attrs.get("metric")
    for pr in entry["rows"]:
        if pr.get("metric", entry.get("metric")) != shown:
            continue                      # a row of another metric (e.g. memory vs Dice)
        hit = [r for _, r in table.iterrows() if _matches(pr["cell"], r, runs, axes)]
        label = ", ".join(f"{k}={v}" for k, v in pr["cell"].items())
        if not hit:
            rows.append({"paper cell": label, "paper": pr["value"], "ours": math.nan, "std": math.nan, "n": 0,
                         "diff": math.nan, "source": pr.get("table", ""), "note": pr.get("note", "")})
        for r in hit:
            rows.append({"paper cell": label, "paper": pr["value"], "ours": r["mean"], "std": r["std"],
                         "n": int(r["n"]), "diff": r["mean"] - pr["value"], "source": pr.get("table", ""),
                         "note": pr.get("note", "")})
    df = pd.DataFrame(rows, columns=["paper cell", "paper", "ours", "std", "n", "diff", "source", "note"])
    df.attrs.update(paper=entry.get("paper", ""), notes=entry.get("notes", ""), metric=shown)
    return df


def compare(name: str, table: pd.DataFrame, fmt: str = "md", runs: Optional[pd.DataFrame] = None) -> str:
    """Rendered comparison, with the paper's name and where our data differ."""
    try:
        df = comparison(name, table, runs)
    except LookupError as e:
        return f"(paper comparison unavailable: {e})"
    fmt_v = lambda v: "not run" if isinstance(v, float) and math.isnan(v) else f"{v:.4g}"
    if fmt == "csv":
        return df.to_csv(index=False)
    head = ["paper cell", f"paper {df.attrs['metric']}", "ours (mean ± std, n)", "ours − paper", "source"]
    body = []
    for _, r in df.iterrows():
        ours = "not run" if math.isnan(r["ours"]) else f"{r['ours']:.4g} ± {r['std']:.2g} (n={r['n']})"
        diff = "" if math.isnan(r["diff"]) else f"{r['diff']:+.3g}"
        body.append([r["paper cell"], fmt_v(r["paper"]), ours, diff, f"{r['source']} {r['note']}".strip()])
    notes = " ".join(str(df.attrs["notes"]).split())
    if fmt == "latex":
        esc = lambda s: str(s).replace("_", r"\_").replace("±", r"$\pm$").replace("−", "-").replace("%", r"\%")
        lines = [r"\begin{tabular}{lrrrl}", r"\toprule", " & ".join(map(esc, head)) + r" \\", r"\midrule"]
        lines += [" & ".join(map(esc, b)) + r" \\" for b in body]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}", f"% {df.attrs['paper']}: {notes}"])
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
    return "\n".join([f"Published: {df.attrs['paper']}", line(head),
                      "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body),
                      f"Where our setup differs: {notes}"])
