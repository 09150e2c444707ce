"""Growing a finished launch (sweeps/runner/grow.py): ``--retry-failed`` and ``--extend``.

The decisions through ``launch()`` with a phase runner that runs no Ray but drives the real MLflow tracker
(sweeps/runner/tracker.py) with each trial's events, against a real sqlite store: which trials an added phase
runs, that old attempts are kept and marked superseded, that the table reads each trial once, and the bad
inputs.  Then acceptance 1 and 2 of issue 22 through ``ablate run`` in a subprocess (real Ray and MLflow)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from analysis import contract as C
from analysis.store import load_runs
from sweeps.errors import UsageError
from sweeps.runner.launch import launch, state_file
from sweeps.runner.phase import trial_dict
from sweeps.runner.tracker import MLflowTracker
from tests.helpers import ablate, assert_clean_error, cli_env, out, toy_study, toy_sweep, write_yaml


class TrackedPhases:
    """Each trial as the tracker sees it under Tune: started, one result per epoch (FINISHED), or an error
    (FAILED) for the cells in ``fail_cells`` (a set the test changes between launches: the "bug fix")."""

    def __init__(self, fail_cells=()):
        self.fail_cells, self.calls = set(fail_cells), []

    def __call__(self, run, phase, callbacks, trials=None, look=None):
        tracker = next(cb for cb in callbacks if isinstance(cb, MLflowTracker))
        self.calls.append((phase, sorted(t.key for t in trials)))
        outcomes = []
        for i, t in enumerate(trials):
            spec = trial_dict(run.study, t.cell.id, t.config, "final", t.key)
            trial = SimpleNamespace(config={"trial": spec}, trial_id=f"{phase}-{i}", last_result={},
                                    checkpoint=None, error_file=None)
            tracker.on_trial_start(0, [], trial)
            failed = t.cell.id in self.fail_cells
            if failed:
                tracker.on_trial_error(0, [], trial)
            else:
                epochs = t.config["train.epochs"]
                for e in range(1, epochs + 1):
                    trial.last_result = {"epoch": e, "score": float(t.seed + e)}
                    tracker.on_trial_result(0, [], trial, trial.last_result)
                tracker.on_trial_complete(0, [], trial)
            outcomes.append({"cell": t.cell.id, "params": t.config, "failed": failed,
                             "metric": None if failed else float(t.seed), "epochs": 0})
        return outcomes


FANCY2 = "model.kind=fancy,model.width=2"


def _study(tmp_path, **over):
    return toy_study(tmp_path, **{"name": "grow", "seeds": [0, 1], **over})


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_HOME", str(tmp_path / "home"))
    commit(monkeypatch, "c0ffee")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def commit(monkeypatch, sha):
    """The code version the launches record and --extend compares (tracking.git_commit, read by base_tags and
    by the extend plan): fixed, so commits other engineers make to this repository mid-test change nothing."""
    from sweeps.runner import tracking

    monkeypatch.setattr(tracking, "git_commit", lambda path=None: sha)


def _runs(uri, name="grow"):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    return [r for r in c.search_runs([c.get_experiment_by_name(name).experiment_id], max_results=1000)
            if r.data.tags.get(C.PHASE) == "final"]


def test_retry_failed_reruns_only_the_failed_trials_as_new_runs_and_the_table_counts_each_once(tmp_path, store):
    fake = TrackedPhases(fail_cells={FANCY2})
    first = launch(_study(tmp_path), tracking_uri=store, run_phase=fake, echo=lambda s: None)
    assert first["counts"] == {"trials": 6, "finished": 4, "failed": 2}
    fake.fail_cells.clear()                                        # the bug is fixed
    again = launch(_study(tmp_path), tracking_uri=store, run_phase=fake, echo=lambda s: None, grow="retry")
    assert fake.calls[-1] == ("retry1", [f"{FANCY2}|seed=0", f"{FANCY2}|seed=1"])
    assert again["launch"] == first["launch"] and again["parent_run_id"] == first["parent_run_id"]
    assert again["counts"] == {"trials": 6, "finished": 6, "failed": 0}
    runs = _runs(store)
    assert len(runs) == 8                                           # the two failed attempts are kept ...
    old = [r for r in runs if r.info.status == "FAILED"]
    new = {r.info.run_id for r in runs if r.data.tags.get(C.ADDED_IN) == "retry1"}
    assert len(old) == 2 and {r.data.tags[C.SUPERSEDED_BY] for r in old} == new      # ... marked superseded
    df = load_runs("grow", store)
    assert len(df) == 6 and set(df["status"]) == {"FINISHED"} and df.groupby("cell").size().eq(2).all()
    saved = json.loads(state_file(_study(tmp_path)).read_text())
    assert saved["done"] == ["final", "retry1"] and saved["counts"] == again["counts"]
    assert saved["added"][0]["was"] == {f"{FANCY2}|seed=0": "FAILED", f"{FANCY2}|seed=1": "FAILED"}
    # nothing failed any more: nothing runs, and it says so
    third = launch(_study(tmp_path), tracking_uri=store, run_phase=fake, echo=lambda s: None, grow="retry")
    assert "no failed trials" in third["nothing"] and len(fake.calls) == 2


def test_retry_failed_refuses_an_unknown_an_incomplete_or_a_changed_launch(tmp_path, store):
    with pytest.raises(UsageError, match="no earlier launch"):
        launch(_study(tmp_path), tracking_uri=store, run_phase=TrackedPhases(), grow="retry")
    fake = TrackedPhases(fail_cells={FANCY2})
    launch(_study(tmp_path), tracking_uri=store, run_phase=fake, echo=lambda s: None)
    with pytest.raises(UsageError, match="not the last launch"):
        launch(_study(tmp_path), tracking_uri=store, run_phase=fake, grow="retry", launch_id="20000101-000000-abcdef")
    with pytest.raises(UsageError, match="train.epochs"):           # a retry reruns the same trial
        launch(_study(tmp_path, fixed={"train.epochs": 3}), tracking_uri=store, run_phase=fake, grow="retry")
    st = json.loads(state_file(_study(tmp_path)).read_text())
    state_file(_study(tmp_path)).write_text(json.dumps({**st, "done": []}))
    with pytest.raises(UsageError, match="--resume"):
        launch(_study(tmp_path), tracking_uri=store, run_phase=fake, grow="retry")


def test_extend_runs_only_the_new_cells_and_seeds_and_reuses_unchanged_finished_trials(tmp_path, store):
    fake = TrackedPhases()
    first = launch(_study(tmp_path), tracking_uri=store, run_phase=fake, echo=lambda s: None)
    grown = _study(tmp_path, seeds=[0, 1, 2, 3], scientific={"model.kind": ["plain", "fancy"],
                                                               "model.width": [2, 4, 8]})
    again = launch(grown, tracking_uri=store, run_phase=fake, echo=lambda s: None, grow="extend")
    phase, keys = fake.calls[-1]
    # 4 cells x 4 seeds = 16 trials; the launch had 3 cells x 2 seeds: 10 are new, none rerun
    assert phase == "extend1" and len(keys) == 10 and again["launch"] == first["launch"]
    assert again["counts"] == {"trials": 16, "finished": 16, "failed": 0}
    df = load_runs("grow", store)
    assert len(df) == 16 and df.attrs["baseline_cell"] == "model.kind=plain"
    assert not any(C.SUPERSEDED_BY in r.data.tags for r in _runs(store))
    third = launch(grown, tracking_uri=store, run_phase=fake, echo=lambda s: None, grow="extend")
    assert "nothing to extend" in third["nothing"]
    # a changed key reruns every trial it changes; the old runs are superseded
    changed = _study(tmp_path, seeds=[0, 1, 2, 3], fixed={"train.epochs": 3},
                     scientific={"model.kind": ["plain", "fancy"], "model.width": [2, 4, 8]})
    launch(changed, tracking_uri=store, run_phase=fake, echo=lambda s: None, grow="extend")
    assert fake.calls[-1][0] == "extend2" and len(fake.calls[-1][1]) == 16
    assert len(load_runs("grow", store)) == 16


def test_extend_reruns_finished_trials_whose_code_version_changed_and_names_each(tmp_path, store, monkeypatch):
    fake = TrackedPhases()
    launch(_study(tmp_path), tracking_uri=store, run_phase=fake, echo=lambda s: None)
    grown = _study(tmp_path, seeds=[0, 1, 2])                       # one seed more, same code: 3 new trials
    lines = []
    launch(grown, tracking_uri=store, run_phase=fake, echo=lines.append, grow="extend")
    assert fake.calls[-1] == ("extend1", sorted(k for k in fake.calls[-1][1] if k.endswith("seed=2")))
    assert len(fake.calls[-1][1]) == 3 and not any("code version" in ln for ln in lines), lines
    commit(monkeypatch, "beef42")                                   # a new commit: every finished trial reruns
    lines.clear()
    again = launch(grown, tracking_uri=store, run_phase=fake, echo=lines.append, grow="extend")
    assert fake.calls[-1][0] == "extend2" and len(fake.calls[-1][1]) == 9
    changed = [ln for ln in lines if "code version changed (c0ffee -> beef42)" in ln]
    assert len(changed) == 9 and all(ln.startswith("--extend: rerunning trial ") for ln in changed), lines
    assert again["counts"] == {"trials": 9, "finished": 9, "failed": 0}
    df = load_runs("grow", store)
    assert len(df) == 9 and set(df[C.column(C.GIT_COMMIT)]) == {"beef42"}


def test_a_trial_that_died_before_its_first_report_counts_as_failed(tmp_path):
    """Tune's Result.config comes from the trial's last report, so a trial whose process died before Tune
    received one has none.  The launch's counts once dropped such trials: in a full-suite run the closing
    line of a --retry-failed read "5 final trials, 6 finished, -1 failed".  Real ray.tune.Result objects."""
    from ray.tune import Result

    from sweeps.language.expand import final_trials
    from sweeps.runner.phase import counts, trial_results

    study = _study(tmp_path)
    trials = final_trials(study)
    spec = {t.key: trial_dict(study, t.cell.id, t.config, "final", t.key) for t in trials}
    done = [Result(metrics={"config": {"trial": spec[t.key]}, "epoch": 2, "score": 0.5}, checkpoint=None,
                   error=None, path=str(tmp_path / t.key)) for t in trials[:-2]]
    died = [Result(metrics={}, checkpoint=None, error=RuntimeError("actor died"), path=str(tmp_path / "x"))]
    never = [Result(metrics={}, checkpoint=None, error=None, path=str(tmp_path / "y"))]   # interrupted
    out = trial_results(done + died + never, trials)
    assert counts(out) == {"trials": len(trials) - 1, "finished": len(trials) - 2, "failed": 1}
    lost = [r for r in out if r["failed"]]
    assert [r["key"] for r in lost] == [trials[-2].key] and lost[0]["cell"] == trials[-2].cell.id
    # a search trial's sampled settings die with it: counted, with no cell
    assert counts(trial_results(died, None)) == {"trials": 1, "finished": 0, "failed": 1}
    assert trial_results(died, None)[0]["cell"] is None


# ------------------------------------------------------------------------------------------ through the CLI
def _cli_sweep(tmp_path, seeds=(0, 1), widths=(2, 4)):
    raw = toy_sweep("growcli", tmp_path, seeds=seeds, **{"fault.kind": "kill", "fault.epoch": 1})
    raw["scientific"]["model.width"] = list(widths)
    raw["max_failures"] = 0
    return write_yaml(tmp_path / "growcli.yaml", raw)


def _markers(tmp_path, cells, seeds):
    """The toy task's kill-once markers: a trial whose marker exists is not killed (the "fixed" cells)."""
    d = tmp_path / "faults" / "markers"
    d.mkdir(parents=True, exist_ok=True)
    for kind, width in cells:
        for s in seeds:
            (d / f"killed-seed{s}-{kind}-{width}").write_text("0")


def _table(tmp_path, env):
    r = ablate(["table", "growcli", "--format", "csv", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"],
               tmp_path, env)
    assert r.returncode == 0, out(r)
    return r.stdout


def test_cli_retry_failed_reruns_only_the_broken_cell_then_extend_adds_a_cell_and_seeds(tmp_path):
    env = cli_env(tmp_path)
    sweep, uri = _cli_sweep(tmp_path), f"sqlite:///{tmp_path / 'm.db'}"
    # every trial but fancy/width 4's is "fixed" already: that cell's trials kill themselves, once
    _markers(tmp_path, [("plain", 0), ("fancy", 2)], (0, 1))   # plain has no width: "-0"
    r = ablate(["run", sweep, "--tracking-uri", uri, "--no-table"], tmp_path, env)
    assert r.returncode == 1 and "2 failed" in out(r), out(r)
    starts = (tmp_path / "faults" / "starts.log").read_text().splitlines()
    r = ablate(["run", sweep, "--retry-failed", "--tracking-uri", uri], tmp_path, env)
    assert r.returncode == 0, out(r)
    rerun = (tmp_path / "faults" / "starts.log").read_text().splitlines()[len(starts):]
    assert sorted(ln.split(" pid")[0] for ln in rerun) == ["seed=0 kind=fancy", "seed=1 kind=fancy"]
    assert "retry1" in out(r) and "6 final trials, 6 finished, 0 failed" in out(r)
    table = _table(tmp_path, env)
    assert "failed" not in table.split("\n")[0] or ",0," in table     # csv: no failed trials counted
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    runs = c.search_runs([c.get_experiment_by_name("growcli").experiment_id], max_results=1000)
    assert sum(r.data.tags.get(C.PHASE) == C.PHASE_LAUNCH for r in runs) == 1          # one parent run
    assert sum(C.SUPERSEDED_BY in r.data.tags for r in runs) == 2
    df = load_runs("growcli", uri)
    assert len(df) == 6 and set(df["status"]) == {"FINISHED"} and df.groupby("cell").size().eq(2).all()
    r = ablate(["run", sweep, "--retry-failed", "--tracking-uri", uri, "--no-table"], tmp_path, env)
    assert r.returncode == 0 and "nothing to retry" in out(r), out(r)
    assert_clean_error(ablate(["run", sweep, "--retry-failed", "--launch", "nope", "--tracking-uri", uri],
                              tmp_path, env), 2, "--retry-failed", "nope")
    _cli_extend_runs_exactly_the_missing_trials_and_keeps_the_baseline(tmp_path, env, uri)


def _cli_extend_runs_exactly_the_missing_trials_and_keeps_the_baseline(tmp_path, env, uri):
    """`--extend` of the launch above (6 trials finished, 2 of them retried): one cell and two seeds more."""
    _markers(tmp_path, [("plain", 0), *(("fancy", w) for w in (2, 4, 8))], range(4))   # nothing fails now
    n0 = len((tmp_path / "faults" / "starts.log").read_text().splitlines())
    assert n0 == 8, "6 trials, 2 of them run twice"
    sweep = _cli_sweep(tmp_path, seeds=(0, 1, 2, 3), widths=(2, 4, 8))       # one cell and two seeds more
    r = ablate(["run", sweep, "--extend", "--tracking-uri", uri], tmp_path, env)
    assert r.returncode == 0, out(r)
    n1 = len((tmp_path / "faults" / "starts.log").read_text().splitlines())
    # other engineers commit to this repository while the test runs: a finished trial whose code version
    # (HEAD, or the tree's dirtiness) differs from the --extend's is rerun too, and named
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    runs = c.search_runs([c.get_experiment_by_name("growcli").experiment_id], max_results=1000)
    extended = {r.data.tags.get(C.GIT_COMMIT) for r in runs if r.data.tags.get(C.ADDED_IN, "").startswith("extend")}
    assert len(extended) == 1, extended
    finished_before = [r for r in runs if r.data.tags.get(C.PHASE) == "final" and r.info.status == "FINISHED"
                       and not r.data.tags.get(C.ADDED_IN, "").startswith("extend")]
    assert len(finished_before) == 6, len(finished_before)
    changed = sum(r.data.tags.get(C.GIT_COMMIT) not in extended for r in finished_before)
    moved = out(r).count("code version changed")
    assert moved == changed and n1 - n0 == 16 - 6 + changed, out(r)   # the missing trials, and those named
    assert "16 final trials, 16 finished, 0 failed" in out(r)
    df = load_runs("growcli", uri)
    assert len(df) == 16 and df.attrs["baseline_cell"] == "model.kind=plain"
    assert "no baseline" not in out(r) and "model.kind=plain" in out(r)
