"""Across the studies of a suite: for every cell label that two or more studies share, the per-study verdicts,
the probability of improvement over each study's own baseline with its stratified-bootstrap interval, and the
average rank with a Friedman test.

Methods: ``analysis.suite_stats.probability_of_improvement`` (P(X > Y) = U / (n·m), averaged over studies;
Agarwal et al. 2021, as rliable defines it) and ``average_ranks`` (Friedman, Demšar 2006; pairwise Wilcoxon
signed-rank tests with Holm, Benavoli et al. 2016).
The per-seed values come from each table's ``attrs["values"]``, so nothing here reads the store.
A "min" study's values are negated so that one direction (higher = better) serves every study.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from .stats import average_ranks, probability_of_improvement


@dataclass(frozen=True)
class SuiteSummary:
    """The cross-study numbers behind the summary text.

    Args:
        studies: study names, in the order given.
        frame: one row per cell label two or more studies share (a baseline's too, for its rank):
            ``verdict:<study>`` columns ("baseline" where it is that study's baseline, None where absent), poi,
            poi_low, poi_high (nan below 2 studies), poi_studies (studies with the cell and their baseline's values),
            mean_rank (nan unless ranked), params_x, flops_x, mem_x, lat_b1_x (the cell's cost ratios to each
            study's baseline, median over the studies with a finite ratio; issue 24).
        ranks: the RankResult over the cells every study has (baselines included), or None.
        reason: why there is no summary at all (fewer than 2 studies, no shared cell), else None.
        rank_reason: why there are no ranks / no Friedman test, else None.
    """
    studies: Tuple[str, ...]
    frame: Optional[pd.DataFrame]
    ranks: object
    reason: Optional[str]
    rank_reason: Optional[str]


def _checked(tables) -> List[Tuple[str, pd.DataFrame]]:
    tables = list(tables) if not isinstance(tables, (str, bytes, pd.DataFrame)) else None
    if tables is None or not all(isinstance(p, (tuple, list)) and len(p) == 2 and isinstance(p[1], pd.DataFrame)
                                 and {"cell", "n", "verdict"} <= set(p[1].columns) for p in tables):
        raise ValueError("tables must be a list of (study_name, table) pairs, each table from "
                         "analysis.tables.ablation_table")
    return tables


def _signed(table: pd.DataFrame, cell: str) -> np.ndarray:
    v = np.asarray(list((table.attrs.get("values") or {}).get(cell, {}).values()), float)
    return v if table.attrs.get("mode", "max") == "max" else -v


def _means(tables) -> pd.DataFrame:
    """studies × cell labels present in every study: signed means (higher = better)."""
    shared = set.intersection(*(set(t["cell"][t["n"] > 0]) for _, t in tables))
    order = [c for c in tables[0][1]["cell"] if c in shared]
    return pd.DataFrame([[_signed(t, c).mean() for c in order] for _, t in tables],
                        index=[n for n, _ in tables], columns=order)


def suite_ranks(tables: Sequence[Tuple[str, pd.DataFrame]]):
    """(RankResult or None, reason or None) over the cells every study ran."""
    tables = _checked(tables)
    if len(tables) < 2:
        return None, f"ranks need >= 2 studies; got {len(tables)}"
    means = _means(tables)
    if means.shape[1] < 2:
        return None, f"ranks need >= 2 cells that every study ran; the studies share {means.shape[1]}"
    res = average_ranks(means, mode="max")
    return res, res.reason


def summarize(tables: Sequence[Tuple[str, pd.DataFrame]], n_boot: int = 2000, seed: int = 0) -> SuiteSummary:
    """SuiteSummary of ``[(study_name, table), ...]`` (tables from analysis.tables.ablation_table).

    Args: tables; n_boot (2000) and seed (0), passed to probability_of_improvement."""
    tables = _checked(tables)
    names = tuple(n for n, _ in tables)
    if len(tables) < 2:
        return SuiteSummary(names, None, None, f"a cross-study summary needs >= 2 studies; got {len(tables)}", None)
    baselines = {t.attrs.get("baseline_cell") for _, t in tables}
    count: Dict[str, int] = {}
    for _, t in tables:
        for c in t["cell"]:
            count[c] = count.get(c, 0) + 1
    labels = [c for c in dict.fromkeys(c for _, t in tables for c in t["cell"]) if count[c] >= 2]
    if not [c for c in labels if c not in baselines]:
        return SuiteSummary(names, None, None, "no non-baseline cell is in two or more studies: nothing to compare", None)
    ranks, rank_reason = suite_ranks(tables)
    rows = []
    for c in labels:
        row = {"cell": c}
        cells, bases = [], []
        for name, t in tables:
            hit = t[t["cell"] == c]
            is_base = c == t.attrs.get("baseline_cell")
            row[f"verdict:{name}"] = ("baseline" if is_base else hit["verdict"].iloc[0] or "") if len(hit) else None
            x, b = _signed(t, c), _signed(t, t.attrs.get("baseline_cell"))
            if len(hit) and x.size and b.size and not is_base:
                cells.append(x)
                bases.append(b)
        poi = probability_of_improvement(cells, bases, n_boot=n_boot, seed=seed) if len(cells) >= 2 else None
        row.update(poi=poi.estimate if poi else np.nan, poi_low=poi.ci_low if poi else np.nan,
                   poi_high=poi.ci_high if poi else np.nan, poi_studies=len(cells),
                   mean_rank=float(ranks.mean_ranks.get(c, np.nan)) if ranks is not None else np.nan)
        row.update(_cost_ratios(tables, c))
        rows.append(row)
    return SuiteSummary(names, pd.DataFrame(rows), ranks, None, rank_reason)


# the cost ratios to each study's baseline (analysis/costs.py) that the suite summary puts beside the ranks
COST_RATIOS = {"params_x": "params", "flops_x": "FLOPs", "mem_x": "mem", "lat_b1_x": "lat b=1"}


def _cost_ratios(tables, cell: str) -> Dict[str, float]:
    """{ratio: median over the studies that have ``cell`` and a finite ratio} for COST_RATIOS (issue 24): a
    cell's cost relative to each study's own baseline, which is comparable across tasks where raw costs are not."""
    out: Dict[str, float] = {}
    for ratio in COST_RATIOS:
        got = [float(v) for _, t in tables if ratio in t for v in t.loc[t["cell"] == cell, ratio]
               if v is not None and np.isfinite(float(v))]
        out[ratio] = float(np.median(got)) if got else np.nan
    return out


def _cost_text(r) -> str:
    parts = [f"{float(r[k]):.2g}× {label}" for k, label in COST_RATIOS.items() if k in r and math.isfinite(r[k])]
    return ", ".join(parts) or "–"


def _short(names: Sequence[str]) -> List[str]:
    """suite.study -> study when every name has the same prefix."""
    heads = {n.rsplit(".", 1)[0] for n in names if "." in n}
    return [n.rsplit(".", 1)[-1] for n in names] if len(heads) == 1 and all("." in n for n in names) else list(names)


def _fmt(x: float, d: int = 2) -> str:
    return "–" if not math.isfinite(x) else f"{x:.{d}f}"


def render_suite_summary(tables: Sequence[Tuple[str, pd.DataFrame]], fmt: str = "md") -> str:
    """The cross-study summary as Markdown ("md"), LaTeX ("latex") or CSV ("csv") text."""
    from .table_text import esc, pval

    if fmt not in ("md", "latex", "csv"):
        raise ValueError(f"format must be md, latex or csv, got {fmt!r}")
    s = summarize(tables)
    if s.reason:
        return f"Cross-study summary: {s.reason}" if fmt == "md" else f"% cross-study summary: {s.reason}"
    if fmt == "csv":
        return s.frame.to_csv(index=False)
    short = _short(s.studies)
    head = ["cell", *short, "P(improvement) [95 % CI]", "mean rank", "cost (median ratio to baseline)"]
    shown = lambda v: v if isinstance(v, str) else "–"          # None / NaN: the study has no such cell
    body = [[r["cell"], *[shown(r[f"verdict:{n}"]) for n in s.studies],
             (f"{_fmt(r['poi'])} [{_fmt(r['poi_low'])}, {_fmt(r['poi_high'])}] ({r['poi_studies']} studies)"
              if math.isfinite(r["poi"]) else "–"), _fmt(r["mean_rank"]), _cost_text(r)] for _, r in s.frame.iterrows()]
    notes = ["verdicts: each study's own table; P(improvement): P(a run of the cell beats a run of that study's "
             "baseline), ties ½, averaged over the studies that have both, stratified-bootstrap 95 % interval "
             "(2000 resamples; Agarwal et al. 2021)",
             "cost: the cell's params, forward FLOPs per sample, peak training memory and batch-1 latency as ratios "
             "to each study's own baseline (ablate table --cost), median over the studies that measured it"]
    if s.ranks is not None and math.isfinite(s.ranks.p_value):
        k = s.ranks.ranks.shape[1]
        notes.append(f"mean rank (1 = best) over the {k} cells all {s.ranks.ranks.shape[0]} studies ran; Friedman "
                     f"χ²({k - 1}) = {s.ranks.statistic:.2f}, p = {pval(s.ranks.p_value)} (Demšar 2006)")
    pw = None if s.ranks is None else s.ranks.pairwise
    if pw is not None and len(pw):
        differ = [f"{r['a']} vs {r['b']} (p = {pval(r['p_adj'])})" for _, r in pw.iterrows() if r["differ"]]
        notes.append(f"pairs that differ (Wilcoxon signed-rank over the studies, Holm over {len(pw)} pairs, α = "
                     f"{s.ranks.alpha:g}; Benavoli et al. 2016): " + (", ".join(differ) or "none"))
    else:
        notes.append(f"mean rank: {s.rank_reason}" if s.ranks is None else
                     f"mean rank over the cells every study ran; no Friedman test: {s.rank_reason}")
    if fmt == "md":
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(head)]
        line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
        return "\n".join([f"Cross-study summary ({len(s.studies)} studies)", "", line(head),
                          "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)]) + \
            "".join(f"\n\n_{n}_" for n in notes)
    return "\n".join([f"% cross-study summary ({len(s.studies)} studies)", r"\begin{tabular}{l" + "l" * len(short)
                      + "rrl}", r"\toprule", " & ".join(esc(h) for h in head) + r" \\", r"\midrule",
                      *(" & ".join(esc(c) for c in r) + r" \\" for r in body), r"\bottomrule", r"\end{tabular}",
                      *(f"% {n}" for n in notes)])
