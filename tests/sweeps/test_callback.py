"""The MLflow tracker callback against a real sqlite store: one run per trial key,
no epoch logged twice across a driver restart, even for a metric reported only
every few epochs."""
from __future__ import annotations

import pickle
from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from sweeps.runner.tracker import MLflowTracker


def _trial(key="k1", metric="test_traj_mse", epochs=6):
    # Only the attributes the callback reads of ray.tune's Trial.
    spec = {"key": key, "metric": metric, "cell": "c", "phase": "final", "task": "physics",
            "params": {"seed": 0, "train.epochs": epochs}, "cell_index": 0}
    return SimpleNamespace(config={"trial": spec}, trial_id="t_" + key, last_result=None, checkpoint=None)


def _result(epoch, sparse_every=2, t0=1000):
    r = {"epoch": epoch, "test_loss": 1.0 / epoch, "training_iteration": epoch, "timestamp": t0 + epoch}
    if epoch % sparse_every == 0:
        r["test_traj_mse"] = 10.0 / epoch
    return r


def test_restored_tracker_never_relogs_an_epoch_when_the_metric_is_sparse(tmp_path):
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("cb")
    cb = MLflowTracker(uri, exp, {"ablate.sweep": "cb", "ablate.git_commit": "0123abc"})   # an older launch
    trial = _trial()
    cb.on_trial_start(0, [], trial)
    for e in (1, 2, 3, 4, 5):
        cb.on_trial_result(0, [], trial, _result(e))
    # the driver dies; Tune restores the callback from its experiment state and the
    # trial replays from its epoch-3 checkpoint: epochs 4 and 5 arrive again
    cb2 = pickle.loads(pickle.dumps(cb))
    for e in (4, 5, 6):
        cb2.on_trial_result(0, [], trial, _result(e, t0=2000))     # later wall-clock times
    other = _trial("k2")                                            # a trial first started after the resume
    cb2.on_trial_start(0, [], other)
    trial.last_result = _result(6)
    cb2.on_trial_complete(0, [], trial)
    runs = c.search_runs([exp], filter_string="tags.`ablate.trial_key` = 'k1'")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    rid = runs[0].info.run_id
    assert [m.step for m in c.get_metric_history(rid, "test_loss")] == [1, 2, 3, 4, 5, 6]
    assert [m.step for m in c.get_metric_history(rid, "test_traj_mse")] == [2, 4, 6]
    assert [m.step for m in c.get_metric_history(rid, "epoch")] == [1, 2, 3, 4, 5, 6]
    # the resume ran this checkout's code, not the launch's: the runs say so
    from sweeps.runner.tracking import git_commit

    now = git_commit()
    assert runs[0].data.tags["ablate.git_commit"] == "0123abc"
    assert runs[0].data.tags["ablate.resumed_git_commit"] == now
    new = c.search_runs([exp], filter_string="tags.`ablate.trial_key` = 'k2'")[0]
    assert new.data.tags["ablate.git_commit"] == now and new.data.tags["ablate.launch_git_commit"] == "0123abc"


def _events(cb, trial, epochs=3, fail=False):
    """The callback calls Tune makes for one trial: start, one result per epoch (a
    diverged trial's last one is its failure marker), end."""
    cb.on_trial_start(0, [], trial)
    for e in range(1, epochs + 1):
        r = {**_result(e), "epoch_seconds": 0.25, "ablate_time": 1000.0 + e}      # test_traj_mse every 2nd
        if e == 1:
            r["ablate_info"] = {"n_params": 7, "hostname": "h"}
        if fail and e == epochs:
            r = {"ablate_failure": f"train_loss became nan at epoch {e}", "test_loss": float("inf"), "epoch": e}
        cb.on_trial_result(0, [], trial, r)
        trial.last_result = r
    cb.on_trial_complete(0, [], trial)


def _snapshot(c, run):
    """Everything a reader of the store sees of a run, minus its id."""
    rid = run.info.run_id
    hist = {k: [(m.step, m.value, m.timestamp) for m in c.get_metric_history(rid, k)] for k in run.data.metrics}
    tags = {k: v for k, v in run.data.tags.items() if k != "ablate.trial_id"}
    return {"status": run.info.status, "name": run.info.run_name, "params": run.data.params, "tags": tags,
            "latest": run.data.metrics, "history": hist, "user": run.info.user_id,
            "artifact_uri_tail": run.info.artifact_uri.rsplit("/", 1)[-1]}


def write_commits(engine) -> list:
    """Write transactions committed on ``engine``, one entry each (reads commit too, without writing)."""
    import sqlalchemy

    commits, wrote = [], [False]

    def statement(conn, cursor, sql, *args):
        wrote[0] |= sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))

    def commit(conn):
        if wrote[0]:
            commits.append(1)
        wrote[0] = False

    sqlalchemy.event.listen(engine, "before_cursor_execute", statement)
    sqlalchemy.event.listen(engine, "commit", commit)
    return commits


def assert_sql_path_writes_what_the_client_writes(direct, via_client, c, exp) -> None:
    """The same events (a finished and a failed trial) through the tracker's SQL writer (``direct``, launch L1)
    and MLflow's public client (``via_client``, launch L2): identical runs read back through MLflow, and one
    commit per event on the SQL path."""
    commits = write_commits(direct.w.store.engine)
    for fail in (False, True):
        key = f"k-{fail}"
        before = len(commits)
        _events(direct, _trial(key, metric="test_loss", epochs=3), fail=fail)
        # one commit at the start and per result; the last epoch's also ends the run, a
        # failure marker has nothing to log and the failure is the end's commit
        assert len(commits) - before == (1 + 2 + 1 if fail else 1 + 3), "one commit per event"
        _events(via_client, _trial(key, metric="test_loss", epochs=3), fail=fail)
        got, want = (c.search_runs([exp], filter_string=f"tags.`ablate.launch` = '{launch}' and "
                                                       f"tags.`ablate.trial_key` = '{key}'") for launch in ("L1", "L2"))
        assert len(got) == len(want) == 1
        a, b = _snapshot(c, got[0]), _snapshot(c, want[0])
        b["tags"]["ablate.launch"] = "L1"
        assert a == b and a["status"] == ("FAILED" if fail else "FINISHED")
        assert a["history"]["test_loss"][:2] == [(1, 1.0, 1001000), (2, 0.5, 1002000)]
        assert len(a["history"]["test_loss"]) == (2 if fail else 3)
        assert a["tags"]["ablate.n_params"] == "7" and a["user"] == "someone"


def test_one_transaction_per_event_writes_what_the_mlflow_client_writes(tmp_path):
    """The tracker's own SQL path against MLflow's public client on the same events:
    identical runs as read back through MLflow, and one commit per tracker event."""
    from sweeps.runner.tracker import _ClientWriter

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("tx")
    base = {"ablate.sweep": "tx", "ablate.launch": "L1", "mlflow.user": "someone"}
    fast, slow = MLflowTracker(uri, exp, base), MLflowTracker(uri, exp, {**base, "ablate.launch": "L2"})
    slow._w = _ClientWriter(slow.c)
    assert type(fast.w).__name__ == "_SqlWriter"
    assert_sql_path_writes_what_the_client_writes(fast, slow, c, exp)


def test_run_times_cover_the_trial(tmp_path):
    """A run starts when its trial starts and ends when it ends (not at the first or last write)."""
    import time

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("times")
    cb = MLflowTracker(uri, exp, {"ablate.launch": "L"})
    trial = _trial("k")
    t0 = time.time()
    cb.on_trial_start(0, [], trial)
    time.sleep(0.3)
    cb.on_trial_result(0, [], trial, {**_result(1), "epoch_seconds": 0.3, "ablate_time": time.time()})
    trial.last_result = _result(1)
    cb.on_trial_complete(0, [], trial)
    t1 = time.time()
    run = c.search_runs([exp])[0]
    assert t0 * 1000 - 1 <= run.info.start_time <= t0 * 1000 + 100
    assert (run.info.end_time - run.info.start_time) / 1000 >= 0.3
    assert run.info.end_time <= t1 * 1000 + 1


def test_replays_hand_back_ended_runs_and_leave_them_untouched(tmp_path):
    """After a driver restart, a trial whose run ended is replayed: the tracker hands out its
    recorded outcome and writes nothing to it; a trial still RUNNING is continued."""
    from sweeps.runner.trainable import REPLAY_KEY, _replayed, same_params

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("replay")
    cb = MLflowTracker(uri, exp, {"ablate.launch": "L", "ablate.git_commit": "abc"})
    done, failed, running = (_trial(k, "test_loss", epochs=3) for k in ("done", "failed", "running"))
    errored = _trial("errored", "test_loss", epochs=3)
    _events(cb, done)
    _events(cb, failed, fail=True)
    cb.on_trial_start(0, [], errored)
    errored.error_file = None
    cb.on_trial_error(0, [], errored)                              # raised max_failures + 1 times
    cb.on_trial_start(0, [], running)
    cb.on_trial_result(0, [], running, _result(1, sparse_every=1))
    other = MLflowTracker(uri, exp, {"ablate.launch": "other"})       # another launch of the sweep
    _events(other, _trial("done", "test_loss", epochs=3), fail=True)

    cb2 = pickle.loads(pickle.dumps(cb))
    rep = cb2.replays()
    assert set(rep) == {"done", "failed"}, "an errored trial is retried by --resume, not replayed"
    assert rep["done"]["failure"] is None and rep["done"]["metrics"]["epoch"] == 3.0
    assert rep["failed"]["failure"] == "train_loss became nan at epoch 3" and rep["failed"]["metrics"]["epoch"] == 2
    spec = done.config["trial"]
    assert same_params(spec["params"], rep["done"]["params"])
    assert not same_params({**spec["params"], "seed": 1}, rep["done"]["params"])
    res = _replayed({**spec, "mode": "min"}, rep["failed"])
    assert res[REPLAY_KEY] and res["ablate_failure"] and res["test_loss"] == float("inf") and res["epoch"] == 2
    before = {r.info.run_id: (r.info.status, r.info.end_time, len(r.data.tags)) for r in c.search_runs([exp])}
    for t in (done, failed):                      # what Tune does with a replayed trial
        cb2.on_trial_start(0, [], t)
        cb2.on_trial_result(0, [], t, _replayed(t.config["trial"], rep[t.config["trial"]["key"]]))
        t.last_result = _replayed(t.config["trial"], rep[t.config["trial"]["key"]])
        cb2.on_trial_complete(0, [], t)
    after = {r.info.run_id: (r.info.status, r.info.end_time, len(r.data.tags)) for r in c.search_runs([exp])}
    assert after == before, "a replayed trial wrote to its ended run"
    # the running trial resumes from an epoch-1 checkpoint: its run is continued, nothing relogged
    cb2.on_trial_start(0, [], running)
    for e in (1, 2, 3):
        cb2.on_trial_result(0, [], running, {**_result(e, sparse_every=1), "ablate_resumed_from": 1})
    running.last_result = _result(3)
    cb2.on_trial_complete(0, [], running)
    r = c.search_runs([exp], filter_string="tags.`ablate.trial_key` = 'running'")
    assert len(r) == 1 and r[0].info.status == "FINISHED"
    assert [m.step for m in c.get_metric_history(r[0].info.run_id, "test_loss")] == [1, 2, 3]
    assert r[0].data.tags["ablate.resumed_from_epoch"] == "1"
