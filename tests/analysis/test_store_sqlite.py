"""analysis/store_sqlite.py: the standard-library reader of a local sqlite store gives exactly what MLflow's
client gives (``mlflow.search_runs``, ``get_experiment_by_name``, ``search_experiments``,
``get_metric_history_bulk``) on a real store written by MLflow's client with the awkward cases a store holds
(NaN and infinite metrics, a tag without value, deleted runs and experiments, runs of other launches and
phases, runs without ablate's tags), and it steps aside wherever that was not checked."""
from __future__ import annotations

import math
import shutil
import sqlite3

import pandas as pd
import pytest

from analysis import contract as C
from analysis.store import experiment_names, has_experiment, load_metric_histories, load_runs
from analysis.store_sqlite import TESTED_SCHEMA, open_reader, schema_revision, sqlite_file


def _store(tmp_path):
    """A real sqlite store written by MLflow's client: two launches of 'exp' (final and search runs), odd values."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    c = MlflowClient(uri)
    eid = c.create_experiment("exp", artifact_location=(tmp_path / "art").as_uri())
    gone = c.create_experiment("gone")
    c.delete_experiment(gone)
    c.create_experiment("suite.a")
    ids = {}
    for launch in ("L1", "L2"):
        for i, (cell, phase) in enumerate([("k=a", "final"), ("k=b", "final"), ("k=b", "final"), ("k=a", "search")]):
            tags = {C.LAUNCH: launch, C.PHASE: phase, C.CELL: cell, C.SEED: str(i), C.METRIC: "acc"}
            if i == 2:
                tags["odd.empty"] = ""
            rid = c.create_run(eid, tags=tags, run_name=f"{launch}-{i}").info.run_id
            c.log_param(rid, "k", cell[2:])
            if i == 1:
                c.log_param(rid, "only.here", "7")
            for step in range(3):
                c.log_metric(rid, "acc", 0.5 + 0.1 * step + 0.01 * i, step=step)
            c.log_metric(rid, "epoch_seconds", 0.25, step=0)
            c.log_metric(rid, "epoch_seconds", 0.5, step=0)          # a step logged twice: the last counts
            c.log_metric(rid, "loss", {0: float("nan"), 1: float("inf"), 2: -float("inf"), 3: 1.0}[i], step=1)
            if not (launch == "L2" and i == 1):
                c.set_terminated(rid, "FAILED" if i == 2 else "FINISHED")
            ids[(launch, i)] = rid
    c.delete_run(ids[("L1", 1)])
    c.create_run(eid, run_name="not ablate's")                      # no launch, no phase tag
    return uri, eid, ids


def _search(uri, eid, filt):
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs([eid], filter_string=filt, max_results=1000)


def _same(a: pd.DataFrame, b: pd.DataFrame):
    assert sorted(a.columns) == sorted(b.columns)
    pd.testing.assert_frame_equal(a[sorted(a.columns)].reset_index(drop=True), b[sorted(b.columns)].reset_index(drop=True))


def test_the_reader_answers_what_mlflows_client_answers(tmp_path):
    from mlflow.tracking import MlflowClient

    uri, eid, ids = _store(tmp_path)
    reader = open_reader(uri)
    assert reader is not None and schema_revision(sqlite_file(uri)) in TESTED_SCHEMA
    with reader:
        for where, filt in [([], ""), ([(C.PHASE, "final")], "tags.`ablate.phase` = 'final'"),
                            ([(C.PHASE, "final"), (C.LAUNCH, "L2")],
                             "tags.`ablate.phase` = 'final' and tags.`ablate.launch` = 'L2'"),
                            ([(C.PHASE, "nope")], "tags.`ablate.phase` = 'nope'")]:
            got, want = reader.search_runs(eid, where), _search(uri, eid, filt)
            assert len(got) == len(want), where
            if len(want):
                _same(got, want)
        assert sorted(reader.tag_values(eid, C.LAUNCH, [(C.PHASE, "final")])) == ["L1", "L2"]
        assert reader.count_runs(eid, [(C.PHASE, "final")]) == 5            # one of the six is deleted
        c = MlflowClient(uri)
        for name in ("exp", "gone", "suite.a", "absent"):
            e = c.get_experiment_by_name(name)
            assert reader.experiment_id(name) == (e.experiment_id if e else None), name
        assert reader.experiment_names() == [e.name for e in c.search_experiments()]
        run_ids = list(ids.values())
        store = c._tracking_client.store
        for metric in ("acc", "epoch_seconds", "loss", "absent"):
            want = [(m.run_id, m.step, m.value) for m in
                    store.get_metric_history_bulk(run_ids, metric, None)]
            got = reader.metric_points(run_ids, metric)
            assert [(r, s) for r, s, _ in got] == [(r, s) for r, s, _ in want], metric
            assert all(a == b or (math.isnan(a) and math.isnan(b)) for (_, _, a), (_, _, b) in zip(got, want))


def test_load_runs_is_the_same_through_either_reader(tmp_path, monkeypatch):
    uri, eid, ids = _store(tmp_path)
    for launch in ("latest", "L1", None):
        fast = load_runs("exp", uri, launch=launch)
        monkeypatch.setenv("ABLATE_STORE_READER", "mlflow")       # a documented setting, not a mock
        slow = load_runs("exp", uri, launch=launch)
        monkeypatch.delenv("ABLATE_STORE_READER")
        # MLflow's path reads every launch and keeps one: a param, tag or metric only other launches have
        # stays as an empty column there; the reader reads this launch's runs only
        extra = [c for c in slow.columns if c not in fast.columns]
        assert all(slow[c].isna().all() for c in extra), extra
        _same(fast, slow.drop(columns=extra))
        assert {k: str(v) for k, v in fast.attrs.items()} == {k: str(v) for k, v in slow.attrs.items()}
    assert load_runs("exp", uri).attrs["launch"] == "L2"
    hist = load_metric_histories(uri, [ids[("L2", 0)]], "epoch_seconds")
    assert list(hist[ids[("L2", 0)]]) == [0.5]
    for reader in ("auto", "mlflow"):
        monkeypatch.setenv("ABLATE_STORE_READER", reader)
        with pytest.raises(LookupError, match="no sweep named 'nope'.*sweeps there: suite.a, exp"):
            load_runs("nope", uri)
        with pytest.raises(LookupError, match="has no runs of launch 'L9'; launches: L1, L2"):
            load_runs("exp", uri, launch="L9")
        with pytest.raises(LookupError, match="has no nope runs"):
            load_runs("exp", uri, phase="nope")
        assert has_experiment(uri, "gone") and not has_experiment(uri, "nope")
        assert experiment_names(uri) == ["suite.a", "exp", "Default"]


def test_the_reader_steps_aside_where_it_was_not_checked(tmp_path, monkeypatch):
    uri, _, _ = _store(tmp_path)
    db = sqlite_file(uri)
    assert open_reader(f"sqlite:///{tmp_path / 'absent.db'}") is None
    assert open_reader(str(tmp_path)) is None and open_reader("http://127.0.0.1:1") is None
    other = tmp_path / "other.db"
    shutil.copy(db, other)
    with sqlite3.connect(other) as con:
        con.execute("update alembic_version set version_num = 'f00dfeedbeef'")
    assert open_reader(f"sqlite:///{other}") is None, "a schema revision the reader was not checked on"
    ws = tmp_path / "ws.db"
    shutil.copy(db, ws)
    with sqlite3.connect(ws) as con:
        con.execute("update experiments set workspace = 'team-b' where name = 'suite.a'")
    assert open_reader(f"sqlite:///{ws}") is None, "experiments in several MLflow workspaces"
    monkeypatch.setenv("ABLATE_STORE_READER", "mlflow")
    assert open_reader(uri) is None
