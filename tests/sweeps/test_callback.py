"""The MLflow tracker callback against a real sqlite store: one run per trial key,
no epoch logged twice across a driver restart, even for a metric reported only
every few epochs."""
from __future__ import annotations

import pickle
from types import SimpleNamespace

from mlflow.tracking import MlflowClient

from sweeps.callback import MLflowTracker


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
    from sweeps.tracking import git_commit

    now = git_commit()
    assert runs[0].data.tags["ablate.git_commit"] == "0123abc"
    assert runs[0].data.tags["ablate.resumed_git_commit"] == now
    new = c.search_runs([exp], filter_string="tags.`ablate.trial_key` = 'k2'")[0]
    assert new.data.tags["ablate.git_commit"] == now and new.data.tags["ablate.launch_git_commit"] == "0123abc"
