"""The launch's decisions without Ray: which phases run, with which trials, what the state file records, and how a
resume continues, through ``launch()`` with a fake phase runner (sweeps/runner/state.py ``Launch.run_phase``)
against a real MLflow sqlite store.  The real phase runner is tested through the CLI elsewhere
(tests/sweeps/test_cli*.py, test_looks.py); here each decision is checked in milliseconds."""
from __future__ import annotations

import json

import pytest

from sweeps.errors import LaunchInterrupted, TrialsFailed
from sweeps.runner.launch import launch, state_file
from sweeps.runner.state import LaunchState
from tests.helpers import toy_study


class FakePhases:
    """Records each phase a launch asks for and answers like the real runner: one outcome per trial.

    ``metric(cell, params)`` gives a trial's metric; ``fail_cells`` fail every trial of those cells;
    ``interrupt_at`` raises LaunchInterrupted when that phase starts (a Ctrl-C)."""

    def __init__(self, metric=lambda cell, params: 1.0, fail_cells=(), interrupt_at=None):
        self.metric, self.fail_cells, self.interrupt_at = metric, set(fail_cells), interrupt_at
        self.calls = []

    def __call__(self, run, phase, callbacks, trials=None, look=None):
        self.calls.append((phase, [(t.cell.id, t.seed) for t in trials or []], look))
        if phase == self.interrupt_at:
            self.interrupt_at = None
            raise LaunchInterrupted(f"{phase} interrupted")
        if phase == "search":
            return self._search(run)
        return [{"cell": t.cell.id, "params": t.config, "failed": t.cell.id in self.fail_cells,
                 "metric": None if t.cell.id in self.fail_cells else self.metric(t.cell.id, t.config),
                 "epochs": t.config["train.epochs"]} for t in trials]

    def _search(self, run):
        from sweeps.language.expand import cells

        out = []
        for c in cells(run.study):
            for lr in (0.01, 0.1, 0.5):
                params = {**c.config, "optim.lr": lr}
                out.append({"cell": c.id, "params": params, "failed": c.id in self.fail_cells,
                            "metric": None if c.id in self.fail_cells else -abs(lr - 0.1), "epochs": 2})
        return out


def _study(tmp_path, **over):
    return toy_study(tmp_path, **over)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_HOME", str(tmp_path / "home"))
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _parent_status(uri, summary):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri).get_run(summary["parent_run_id"]).info.status


def test_a_fixed_design_runs_one_final_phase_of_every_cell_and_seed(tmp_path, store):
    study, fake = _study(tmp_path), FakePhases()
    summary = launch(study, tracking_uri=store, run_phase=fake, echo=lambda s: None)
    assert [c[0] for c in fake.calls] == ["final"]
    assert sorted(fake.calls[0][1]) == sorted((c, s) for c in ("model.kind=plain", "model.kind=fancy,model.width=2",
                                                                "model.kind=fancy,model.width=4") for s in (0, 1, 2))
    assert summary["counts"] == {"trials": 9, "finished": 9, "failed": 0}
    saved = json.loads(state_file(study).read_text())
    assert saved["done"] == ["final"] and saved["counts"] == summary["counts"]
    assert saved["design"] == {"seeds.looks": None} and saved["parent_run_id"] == summary["parent_run_id"]
    assert _parent_status(store, summary) == "FINISHED"
    again = launch(study, tracking_uri=store, run_phase=fake, resume=True, echo=lambda s: None)
    assert again["complete_before"] and len(fake.calls) == 1          # a finished launch runs nothing


def test_the_search_picks_each_cells_best_setting_for_its_final_trials(tmp_path, store):
    study = _study(tmp_path, nuisance={"optim.lr": {"loguniform": [0.001, 1.0]}},
                   search={"trials_per_cell": 3})
    fake = FakePhases()
    launch(study, tracking_uri=store, run_phase=fake, echo=lambda s: None)
    assert [c[0] for c in fake.calls] == ["search", "final"]
    state = LaunchState.read(state_file(study))
    assert state.done == ["search", "final"]
    assert {v["optim.lr"] for v in state.best_nuisance.values()} == {0.1}


def test_a_cell_whose_every_search_trial_failed_stops_the_launch(tmp_path, store):
    study = _study(tmp_path, nuisance={"optim.lr": {"loguniform": [0.001, 1.0]}},
                   search={"trials_per_cell": 3})
    fake = FakePhases(fail_cells={"model.kind=fancy,model.width=4"})
    with pytest.raises(TrialsFailed, match=r"model.kind=fancy,model.width=4"):
        launch(study, tracking_uri=store, run_phase=fake, echo=lambda s: None)
    assert [c[0] for c in fake.calls] == ["search"]
    assert LaunchState.read(state_file(study)).done == []


def _adaptive(tmp_path):
    return _study(tmp_path, name="adaptive", seeds={"looks": [3, 5, 8]}, analysis={"spending": "pocock"},
                  scientific={"model.kind": ["plain", "fancy"], "model.width": [2, 4]})


def _values(effects):
    """values(run) for looks: each cell's seeds so far, its score = effect + a small seed wobble."""
    seen = {}

    def values(run):
        return {c: dict(s) for c, s in seen.items()}

    def metric(cell, params):
        v = effects[cell] + 0.01 * ((params["seed"] * 7919) % 13 - 6)
        seen.setdefault(cell, {})[params["seed"]] = v
        return v
    return values, metric


EFFECTS = {"model.kind=plain": 0.0, "model.kind=fancy,model.width=2": 5.0, "model.kind=fancy,model.width=4": 0.0}


def test_looks_give_more_seeds_only_to_undecided_cells_and_the_baseline(tmp_path, store):
    study = _adaptive(tmp_path)
    values, metric = _values(EFFECTS)
    fake = FakePhases(metric=metric)
    launch(study, tracking_uri=store, run_phase=fake, values=values, echo=lambda s: None)
    phases = [c[0] for c in fake.calls]
    assert phases[0] == "look0" and {c for c, _ in fake.calls[0][1]} == set(EFFECTS)
    assert len(phases) >= 2, phases
    later = {c for _, trials, _ in fake.calls[1:] for c, _ in trials}
    assert "model.kind=fancy,model.width=2" not in later          # decided better at look 1 (Δ 5 vs SD 0.04)
    assert later == {"model.kind=plain", "model.kind=fancy,model.width=4"}
    assert fake.calls[1][1] and {s for _, s in fake.calls[1][1]} == {3, 4}
    state = LaunchState.read(state_file(study))
    assert state.looks["1"] == sorted(later, key=["model.kind=fancy,model.width=4", "model.kind=plain"].index)
    assert state.looks_correction == "holm" and state.done[-1] == "final"


def test_a_resumed_look_runs_exactly_the_cells_recorded_before_it_started(tmp_path, store):
    study = _adaptive(tmp_path)
    values, metric = _values(EFFECTS)
    fake = FakePhases(metric=metric, interrupt_at="look1")
    with pytest.raises(LaunchInterrupted):
        launch(study, tracking_uri=store, run_phase=fake, values=values, echo=lambda s: None)
    recorded = LaunchState.read(state_file(study)).looks["1"]
    # whatever the store would say now, the half-done look keeps its recorded cells
    fake2 = FakePhases(metric=metric)
    launch(study, tracking_uri=store, run_phase=fake2, values=lambda run: {}, resume=True, echo=lambda s: None)
    assert fake2.calls[0][0] == "look1"
    assert sorted({c for c, _ in fake2.calls[0][1]}) == sorted(recorded)


def test_the_state_file_keeps_keys_it_does_not_know(tmp_path):
    p = tmp_path / "x.ablate.json"
    p.write_text(json.dumps({"launch": "20260101-000000-abcdef", "done": ["final"], "best_nuisance": {},
                             "sweep_file": "s.yaml", "smoke": False, "suite_launch": None, "future_key": [1, 2]}))
    st = LaunchState.read(p)
    assert st.design is None and st.is_done("final")
    st.save()
    assert json.loads(p.read_text())["future_key"] == [1, 2] and "design" not in json.loads(p.read_text())
    p.write_text("[1, 2]")
    from sweeps.errors import SettingError

    with pytest.raises(SettingError, match="cannot be read"):
        LaunchState.read(p)
