"""Pool several launches of one sweep into one table: ``ablate table|plot|report SWEEP --launch all`` or
``--launch ID1,ID2``.

Pooling is sound only when the launches ran the same experiment: per cell the same trial config (every
MLflow param but the seed) and the same code version (``ablate.git_commit``).  ``pool_runs`` reads the
launches' runs (analysis/store.py ``load_runs`` over all launches), keeps one result per cell and seed (the
newest FINISHED run, else the newest: a trial an earlier launch lost and a later one finished counts once,
as finished), orders the rows as the sweep file's grid (else as the launch with most cells), takes the
baseline from the sweep file when one is given (else the newest launch's ``ablate.baseline_cell``), and
names in ``attrs["pool_differences"]`` what differs between the launches; the CLI (sweeps/cli/common.py)
refuses such a pool without ``--force``.  ``notes`` is what a pooled table warns about (the smoke note of
``store.launch_notes`` and those differences) and the footer line naming the pooled launches.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import pandas as pd

from . import contract as C


def parse_launch(arg: Optional[str]):
    """``--launch`` → "latest", one id, None (all) or a list of ids (``ID1,ID2``)."""
    if arg in (None, "", "latest"):
        return "latest"
    if arg == "all":
        return None
    ids = list(dict.fromkeys(p.strip() for p in arg.split(",") if p.strip()))
    return ids if len(ids) > 1 else ids[0]


def pool_runs(experiment: str, uri: str, launches: Optional[Sequence[str]], *, baseline_cell: Optional[str] = None,
              grid: Optional[Sequence[str]] = None, epoch_times: bool = True) -> pd.DataFrame:
    """The runs of ``launches`` (None: every launch) of ``experiment``, one per cell and seed (see the module).
    ``baseline_cell`` / ``grid``: the sweep file's baseline cell label and cell order.  LookupError for a
    launch the sweep does not have."""
    from .store import load_runs

    df = load_runs(experiment, uri, launch=None, epoch_times=epoch_times)
    have = list(df.attrs["launches"])
    if launches is not None:
        missing = [la for la in launches if la not in have]
        if missing:
            raise LookupError(f"sweep {experiment!r} has no runs of launch {', '.join(map(repr, missing))}; "
                              f"launches: {', '.join(have[-10:])}{' (latest 10)' if len(have) > 10 else ''}")
        df = df[df["launch"].isin(list(launches))]
    pooled = sorted(df["launch"].dropna().unique())
    attrs = dict(df.attrs)
    differences = _differences(df, pooled)
    df = _one_per_cell_and_seed(df)
    df = _grid_order(df, grid)
    df.attrs.update(attrs)
    tagged = _newest_tag(df, C.BASELINE_CELL)
    df.attrs.update(launch=None if launches is None else ",".join(pooled), launches=pooled,
                    smoke_launches=[la for la in attrs.get("smoke_launches", []) if la in pooled],
                    baseline_cell=baseline_cell if baseline_cell is not None else tagged,
                    pool_differences=differences)
    return df.reset_index(drop=True)


def _newest_tag(df: pd.DataFrame, tag: str) -> Optional[str]:
    """The tag's value on the newest launch's runs (launch ids sort by time)."""
    col = C.column(tag)
    if col not in df or df.empty:
        return None
    for la in sorted(df["launch"].dropna().unique(), reverse=True):
        vals = df.loc[df["launch"] == la, col].dropna()
        if len(vals):
            return vals.iloc[0]
    return None


def _one_per_cell_and_seed(df: pd.DataFrame) -> pd.DataFrame:
    """Of the runs of one (cell, seed): the newest FINISHED one, else the newest (by launch, then start)."""
    if df.empty:
        return df
    start = df["start_time"] if "start_time" in df else pd.Series(0, index=df.index)
    order = df.assign(_fin=(df["status"] == "FINISHED").astype(int), _la=df["launch"].fillna(""), _st=start,
                      _seed=df["seed"].map(repr))
    order = order.sort_values(["_fin", "_la", "_st"], kind="stable")
    keep = order.drop_duplicates(["cell", "_seed"], keep="last").index
    return df.loc[df.index.isin(keep)]


def _grid_order(df: pd.DataFrame, grid: Optional[Sequence[str]]) -> pd.DataFrame:
    """Rows in the sweep file's grid order; without one, the order of the launch with most cells, then the
    cells only other launches have, each launch's in its own order.  Seeds ascending within a cell."""
    if grid is None:
        per = [list(dict.fromkeys(g.sort_values("cell_index", kind="stable")["cell"] if "cell_index" in g
                                  else g["cell"]))
               for _, g in df.groupby("launch", sort=True)]
        grid = list(dict.fromkeys(c for cs in sorted(per, key=len, reverse=True) for c in cs))
    rank: Dict[str, int] = {c: i for i, c in enumerate(grid)}
    extra = [c for c in dict.fromkeys(df["cell"]) if c not in rank]
    rank.update({c: len(grid) + i for i, c in enumerate(extra)})
    key = df["cell"].map(rank).fillna(len(rank))
    seed = pd.to_numeric(df["seed"], errors="coerce")
    return df.assign(_r=key, _s=seed).sort_values(["_r", "_s"], kind="stable").drop(columns=["_r", "_s"])


def _differences(df: pd.DataFrame, launches: List[str]) -> List[str]:
    """What differs between the pooled launches: the code version, and each key (MLflow param but the seed)
    that one cell has with different values in two launches; [] for one launch or identical ones."""
    if len(launches) < 2:
        return []
    out = []
    col = C.column(C.GIT_COMMIT)
    if col in df:
        commits = {la: sorted(set(df.loc[df["launch"] == la, col].dropna())) for la in launches}
        if len({tuple(v) for v in commits.values()}) > 1:
            out.append("code version (ablate.git_commit: "
                       + "; ".join(f"{la}: {'/'.join(v) or '?'}" for la, v in commits.items()) + ")")
    keys = []
    for p in [c for c in df.columns if c.startswith("params.") and c != "params.seed"]:
        for cell, g in df.groupby("cell", sort=False):
            per = {la: {repr(v) for v in gl[p]} for la, gl in g.groupby("launch")}
            if len({frozenset(v) for v in per.values()}) > 1:
                shown = "; ".join(f"{la}: {'/'.join(sorted(v))}" for la, v in per.items())
                keys.append(f"{p[len('params.'):]} ({shown})")
                break
    if keys:
        out.append("key " + ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else ""))
    return out


def refusal(experiment: str, df: pd.DataFrame) -> Optional[str]:
    """One line naming the launches and what differs between them; None when they may be pooled."""
    diff = df.attrs.get("pool_differences") or []
    if not diff:
        return None
    return (f"{experiment}: launches {', '.join(df.attrs['launches'])} differ in " + " and in ".join(diff)
            + ": their runs are not one experiment")


def notes(df: pd.DataFrame) -> List[str]:
    """Warnings about a pooled table: the smoke note of ``store.launch_notes`` (its key note is
    ``pool_differences`` here, with the values)."""
    from .store import launch_notes

    return [n for n in launch_notes(df) if "--smoke" in n]


def footer(df: pd.DataFrame) -> str:
    launches = df.attrs.get("launches", [])
    return f"pooled launches ({len(launches)}): {', '.join(launches)}; one result per cell and seed " \
           f"(the newest finished run)"
