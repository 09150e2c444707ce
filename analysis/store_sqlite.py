"""Read a local sqlite MLflow store with the standard library, for the commands a researcher runs constantly
(``ablate table``, ``plot``, ``report``).

Why not MLflow's client: importing ``mlflow`` and its SQLAlchemy store, and opening that store (an alembic
schema check), take about two thirds of ``ablate table``'s time on a small store (docs/benchmarks_notes.md,
"ablate table latency"), and ``mlflow.search_runs`` reads every launch's runs to keep one.  Here one
read-only sqlite3 connection answers the same questions in a few queries: the runs of one phase and one launch
(selected in SQL), their tags, params and latest metrics, and metric histories.  The frame is the one
``mlflow.search_runs(output_format="pandas")`` returns for those runs, column for column and value for value
(tests/analysis/test_store_sqlite.py compares the two on real launches).

Only where that equality was checked: a ``sqlite:///`` store whose schema is at a revision in TESTED_SCHEMA
(MLflow's alembic head, read from the store), every experiment in MLflow's default workspace.  Anything else
(another revision, a server, a file store, a store being created) returns None from ``open_reader`` and the
caller uses MLflow's client, as the tracker does for its direct writes (sweeps/runner/tracker.py).  ``ABLATE_STORE_READER=mlflow``
sends every read through MLflow's client (to compare, or to rule this reader out).
"""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

# MLflow schema revisions (alembic heads) this reader was checked on: MLflow 3.17's head.
TESTED_SCHEMA = frozenset({"dc11669786a5"})
DEFAULT_WORKSPACE = "default"
_WORKSPACE_ENV = ("MLFLOW_ENABLE_WORKSPACES", "MLFLOW_WORKSPACE")


def sqlite_file(uri: str) -> Optional[Path]:
    """The database file of a ``sqlite:///PATH`` URI (None for any other URI)."""
    return Path(uri[len("sqlite:///"):]) if isinstance(uri, str) and uri.startswith("sqlite:///") else None


def schema_revision(db: Path) -> Optional[str]:
    """The alembic revision recorded in the sqlite file ``db`` (None: not an MLflow store, or unreadable)."""
    try:
        con = _connect(db)
        try:
            row = con.execute("select version_num from alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


READER_ENV = "ABLATE_STORE_READER"      # "mlflow": always MLflow's client; "auto" (default): this reader where it can
READER_CHOICES = ("auto", "mlflow")


def _connect(db: Path) -> sqlite3.Connection:
    # mode=rw, as sweeps/runner/tracking.py's check: it never creates the file, opens a write-protected one
    # read-only, and can roll back the hot journal a SIGKILLed writer leaves (a mode=ro connection cannot).
    # Nothing here writes.
    return sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=rw", uri=True, timeout=30)


def open_reader(uri: str) -> Optional["SqliteRuns"]:
    """A reader for ``uri`` when it is an existing sqlite store at a tested schema revision (and
    ``$ABLATE_STORE_READER`` is not "mlflow"), else None."""
    if os.environ.get(READER_ENV, "auto").strip().lower() == "mlflow":
        return None
    db = sqlite_file(uri)
    if db is None or not db.is_file() or any(os.environ.get(k) for k in _WORKSPACE_ENV):
        return None
    if schema_revision(db) not in TESTED_SCHEMA:
        return None
    try:
        return SqliteRuns(db)
    except sqlite3.Error:
        return None


class SqliteRuns:
    """Read-only queries on one sqlite MLflow store (see the module docstring).  Args: db (the file)."""

    def __init__(self, db: Path):
        self.db = Path(db)
        self.con = _connect(self.db)
        cols = {r[1] for r in self.con.execute("pragma table_info(experiments)")}
        if "workspace" in cols and self.con.execute("select count(*) from experiments where workspace is null or "
                                                    "workspace != ?", (DEFAULT_WORKSPACE,)).fetchone()[0]:
            self.con.close()
            raise sqlite3.DatabaseError("experiments in several MLflow workspaces: MLflow's client reads those")

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def experiment_id(self, name: str) -> Optional[str]:
        """The id of the experiment called ``name`` (deleted ones too, as MLflow's get_experiment_by_name)."""
        row = self.con.execute("select experiment_id from experiments where name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def experiment_names(self) -> List[str]:
        """Active experiments' names, newest first (MLflow's search_experiments order)."""
        return [r[0] for r in self.con.execute(
            "select name from experiments where lifecycle_stage = 'active' order by creation_time desc, experiment_id")]

    def tag_values(self, experiment_id: str, key: str, where: Sequence[Tuple[str, str]] = ()) -> List[str]:
        """Distinct values of tag ``key`` on the active runs of the experiment that carry every (tag, value)
        of ``where``."""
        sub, args = self._runs_sql(experiment_id, where)
        return [r[0] for r in self.con.execute(
            f"select distinct value from tags where key = ? and run_uuid in ({sub})", (key, *args))]

    def count_runs(self, experiment_id: str, where: Sequence[Tuple[str, str]] = ()) -> int:
        sub, args = self._runs_sql(experiment_id, where)
        return self.con.execute(f"select count(*) from ({sub})", args).fetchone()[0]

    def _runs_sql(self, experiment_id: str, where: Sequence[Tuple[str, str]]) -> Tuple[str, tuple]:
        """A subquery of the run ids: active runs of the experiment with every (tag, value) of ``where``."""
        sql, args = ["select r.run_uuid from runs r where r.experiment_id = ? and r.lifecycle_stage = 'active'"], [
            int(experiment_id)]
        for key, value in where:
            sql.append("and exists (select 1 from tags t where t.run_uuid = r.run_uuid and t.key = ? and t.value = ?)")
            args += [key, value]
        return " ".join(sql), tuple(args)

    def search_runs(self, experiment_id: str, where: Sequence[Tuple[str, str]] = ()):
        """``mlflow.search_runs([experiment_id], filter_string=<tags equal>)`` as a DataFrame: run_id,
        experiment_id, status, artifact_uri, start_time, end_time (UTC), then metrics.*, params.*, tags.*
        (each group sorted by name), rows by start time (newest first), then run id."""
        import numpy as np
        import pandas as pd

        sub, args = self._runs_sql(experiment_id, where)
        runs = self.con.execute(
            f"select run_uuid, experiment_id, status, artifact_uri, start_time, end_time from runs "
            f"where run_uuid in ({sub}) order by start_time desc, run_uuid asc", args).fetchall()
        index = {r[0]: i for i, r in enumerate(runs)}
        n = len(runs)

        def spread(sql: str, null, value=lambda row: row[2]) -> Dict[str, list]:
            cols: Dict[str, list] = {}
            for row in self.con.execute(sql.format(sub=sub), args):
                cols.setdefault(row[1], [null] * n)[index[row[0]]] = value(row)
            return {k: cols[k] for k in sorted(cols)}

        metrics = spread("select run_uuid, key, value, is_nan from latest_metrics where run_uuid in ({sub})",
                         np.nan, lambda row: float("nan") if row[3] else float(row[2]))
        params = spread("select run_uuid, key, value from params where run_uuid in ({sub})", None)
        tags = spread("select run_uuid, key, value from tags where run_uuid in ({sub})", None)
        data = {"run_id": [r[0] for r in runs], "experiment_id": [str(r[1]) for r in runs],
                "status": [r[2] for r in runs], "artifact_uri": [r[3] for r in runs],
                "start_time": [pd.to_datetime(r[4], unit="ms", utc=True) for r in runs],
                "end_time": [pd.to_datetime(r[5], unit="ms", utc=True) for r in runs]}
        data.update({f"metrics.{k}": v for k, v in metrics.items()})
        data.update({f"params.{k}": v for k, v in params.items()})
        data.update({f"tags.{k}": v for k, v in tags.items()})
        return pd.DataFrame(data)

    def metric_points(self, run_ids: Iterable[str], metric: str) -> List[Tuple[str, int, float]]:
        """(run_id, step, value) of ``metric`` for these runs, in the order of MLflow's
        ``get_metric_history_bulk`` (run id, timestamp, step, value)."""
        ids, out = list(dict.fromkeys(run_ids)), []
        for i in range(0, len(ids), 500):            # sqlite allows 999 bound variables in old builds
            chunk = ids[i:i + 500]
            out += [(r[0], r[1], float("nan") if r[3] else float(r[2])) for r in self.con.execute(
                f"select run_uuid, step, value, is_nan from metrics where key = ? and run_uuid in "
                f"({','.join('?' * len(chunk))}) order by run_uuid, timestamp, step, value", (metric, *chunk))]
        return out
