"""The tracker writes MLflow's tables directly only on a schema revision and database it was
tested on (sweeps.runner.tracker.TESTED_SCHEMA / TESTED_DIALECTS, read from the store's alembic
version); on any other it goes through MLflow's public client and the runs come out the same.
Real sqlite stores; the "other revision" is this MLflow's own revision taken out of the tested set,
as a newer MLflow's head would be (MLflow itself refuses a store whose revision is not its head)."""
from __future__ import annotations

import sqlalchemy
from mlflow.tracking import MlflowClient

from sweeps.runner import tracker
from sweeps.runner.tracker import MLflowTracker, _ClientWriter, _SqlWriter, schema_revision, writer
from tests.sweeps.test_callback import _events, _snapshot, _trial, write_commits


def test_the_store_revision_is_read_and_is_the_tested_one(tmp_path):
    c = MlflowClient(f"sqlite:///{tmp_path / 'm.db'}")
    store = c._tracking_client.store
    rev = schema_revision(store)
    with store.engine.connect() as conn:
        assert rev == conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    assert rev in tracker.TESTED_SCHEMA, f"MLflow's schema is now {rev}: compare the writers again and add it"
    assert isinstance(writer(c), _SqlWriter)


def test_untested_revision_or_database_goes_through_the_client_with_the_same_runs(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("rev")
    base = {"ablate.sweep": "rev", "mlflow.user": "someone"}
    direct = MLflowTracker(uri, exp, {**base, "ablate.launch": "L1"})
    assert isinstance(direct.w, _SqlWriter)
    commits = write_commits(direct.w.store.engine)
    _events(direct, _trial("k", metric="test_loss", epochs=3))
    direct_commits = len(commits)

    monkeypatch.setattr(tracker, "TESTED_SCHEMA", frozenset({"0000newer0000"}))
    assert type(writer(MlflowClient(uri))) is _ClientWriter
    via_client = MLflowTracker(uri, exp, {**base, "ablate.launch": "L2"})
    assert type(via_client.w) is _ClientWriter
    del commits[:]
    _events(via_client, _trial("k", metric="test_loss", epochs=3))
    assert len(commits) > direct_commits == 4, "the client path is the public API's several commits per event"

    monkeypatch.setattr(tracker, "TESTED_SCHEMA", frozenset({schema_revision(direct.w.store)}))
    monkeypatch.setattr(tracker, "TESTED_DIALECTS", frozenset({"postgresql"}))
    assert type(writer(MlflowClient(uri))) is _ClientWriter, "sqlite left out of the tested databases"

    got, want = (c.search_runs([exp], filter_string=f"tags.`ablate.launch` = '{launch}'") for launch in ("L1", "L2"))
    assert len(got) == len(want) == 1
    a, b = _snapshot(c, got[0]), _snapshot(c, want[0])
    b["tags"]["ablate.launch"] = "L1"
    assert a == b and a["status"] == "FINISHED" and len(a["history"]["test_loss"]) == 3
