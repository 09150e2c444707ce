"""Sweep-file loading, validation and grid expansion (no Ray, no MLflow)."""
from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sweeps.language.expand import cells, final_trials
from sweeps.errors import SweepError
from sweeps.language.load import load, load_all, parse_assignments

from tests.helpers import ROOT, SWEEPS

ABLATE = [sys.executable, "-m", "sweeps.cli"]


def write(tmp_path, data, name="s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return p


GOOD = {"name": "t", "task": "digits", "metric": {"name": "test_acc"}, "seeds": [0, 1],
        "baseline": {"model.linear": "dense"},
        "scientific": {"model.linear": ["dense", "cdlinear"], "model.block_size": [4, 8]}}


def test_conditional_axis_does_not_multiply_baseline(tmp_path):
    study = load(write(tmp_path, GOOD))
    ids = [c.id for c in cells(study)]
    assert ids == ["model.linear=dense", "model.linear=cdlinear,model.block_size=4",
                   "model.linear=cdlinear,model.block_size=8"]
    trials = final_trials(study)
    assert len(trials) == 6
    dense = [t for t in trials if t.cell.id == "model.linear=dense"]
    assert all("model.block_size" not in t.config for t in dense)
    assert sorted(t.seed for t in dense) == [0, 1]
    assert all(t.config["seed"] == t.seed for t in trials)


def test_shipped_sweep_files_validate():
    for f in sorted(SWEEPS.glob("*.yaml")):
        for smoke in (False, True):
            studies = load_all(f, smoke=smoke)
            assert studies, f
            for s in studies:
                assert final_trials(s, {c.id: {k: d.args[0] for k, d in s.nuisance.items()} for c in cells(s)})


def test_cdlinear_block_is_table1():
    study = load(SWEEPS / "cdlinear_block.yaml")
    trials = final_trials(study)
    assert len(trials) == 9 and study.seeds == [0, 1, 2]
    assert {t.config["train.epochs"] for t in trials} == {25}
    assert {t.config["optim.lr"] for t in trials} == {0.1}


def test_smoke_shrinks(tmp_path):
    study = load(write(tmp_path, GOOD), smoke=True)
    assert study.seeds == [0]
    assert study.fixed["train.epochs"] == 2


@pytest.mark.parametrize("patch, path, words", [
    ({"scientific": {"model.linear": ["dense", "cdlinear"], "model.block_size": [3]}}, "scientific.model.block_size", ["3", "divide", "[1, 2, 4, 8, 16, 32, 64]"]),
    ({"task": "digitz"}, "task", ["digitz", "valid tasks", "digits"]),
    ({"fixed": {"train.epoch": 3}}, "fixed.train.epoch", ["did you mean 'train.epochs'"]),
    ({"seeds": [0, -1]}, "seeds[1]", ["-1", "integers in [0"]),
    ({"seeds": []}, "seeds", ["non-empty"]),
    ({"seeds": [1, 1]}, "seeds", ["repeats"]),
    ({"metric": {"name": "accuracy"}}, "metric.name", ["accuracy", "test_acc"]),
    ({"fixed": {"optim.lr": -1}}, "fixed.optim.lr", ["-1", "number in"]),
    ({"fixed": {"train.epochs": "many"}}, "fixed.train.epochs", ["many", "integer"]),
    ({"scientific": {"model.linear": ["dense", "sparse"]}}, "scientific.model.linear[1]", ["sparse", "'cdlinear'"]),
    ({"scientific": {"model.linear": "dense"}}, "scientific.model.linear", ["non-empty list"]),
    ({"nuisance": {"optim.lr": {"loguniform": [0, 1]}}}, "nuisance.optim.lr.loguniform", ["low > 0"]),
    ({"nuisance": {"optim.lr": {"normal": [0, 1]}}}, "nuisance.optim.lr.normal", ["loguniform"]),
    ({"search": {"scheduler": "hyperband"}}, "search.scheduler", ["hyperband", "asha"]),
    ({"resources": {"cpu": 0}}, "resources.cpu", ["> 0"]),
    ({"resources": {"gpu": 1.5}}, "resources.gpu", ["fraction"]),
    ({"max_failures": -5}, "max_failures", [">= 0"]),
    ({"baseline": {"model.linear": "conv"}}, "baseline.model.linear", ["conv", "axis values"]),
    ({"schientific": {}}, "schientific", ["did you mean 'scientific'"]),
    ({"fixed": {"seed": 3}}, "fixed.seed", ["seeds"]),
])
def test_invalid_values_name_the_key(tmp_path, patch, path, words):
    bad = {**GOOD, **patch}
    with pytest.raises(SweepError) as e:
        load(write(tmp_path, bad))
    msg = str(e.value)
    assert f": {path}: " in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    assert str(tmp_path / "s.yaml") in msg


@pytest.mark.parametrize("content, path", [
    ("name: t\ntask: digits\nscientific: {a: [1, 2]\n", "<yaml>"),
    ("- just\n- a list\n", "<top>"),
])
def test_malformed_files(tmp_path, content, path):
    with pytest.raises(SweepError, match=path):
        load(write(tmp_path, content))


def test_cli_rejects_bad_file_fast_without_side_effects(tmp_path):
    """Acceptance 4: exit 2 in < 2 s, message names the key path, no Ray, no MLflow run."""
    cases = {
        "blocksize.yaml": ({**GOOD, "scientific": {"model.linear": ["dense", "cdlinear"], "model.block_size": [3]}},
                           "scientific.model.block_size"),
        "task.yaml": ({**GOOD, "task": "nope"}, "task"),
        "key.yaml": ({**GOOD, "fixed": {"optim.lrr": 0.1}}, "fixed.optim.lrr"),
        "seed.yaml": ({**GOOD, "seeds": [-3]}, "seeds[0]"),
    }
    for fname, (data, path) in cases.items():
        f = write(tmp_path, data, fname)
        t0 = time.perf_counter()
        r = subprocess.run(ABLATE + ["run", str(f)], cwd=tmp_path, capture_output=True, text=True,
                           env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
        took = time.perf_counter() - t0
        assert r.returncode == 2, r.stderr
        assert f"{f}: {path}:" in r.stderr, r.stderr
        assert took < 2.0, f"validation took {took:.2f}s"
        assert not (tmp_path / "ablate_runs").exists(), "a tracking store was created for an invalid sweep"
        assert not (tmp_path / "mlruns").exists()


def test_dry_run_lists_trials(tmp_path):
    f = write(tmp_path, GOOD)
    r = subprocess.run(ABLATE + ["run", str(f), "--dry-run"], cwd=tmp_path, capture_output=True, text=True,
                       env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr
    assert "3 cells × 2 seeds = 6 trials" in r.stdout
    assert r.stdout.count("seed=") == 6
    assert not (tmp_path / "ablate_runs").exists()


def test_set_overrides(tmp_path):
    f = write(tmp_path, GOOD)
    s = load(f, overrides=parse_assignments(["model.block_size=4", "train.epochs=3", "seeds=[5]"]))
    assert s.scientific["model.block_size"] == [4] and s.fixed["train.epochs"] == 3 and s.seeds == [5]
    with pytest.raises(SweepError, match="model.blok_size"):
        load(f, overrides={"model.blok_size": 4})
    assert parse_assignments(["a.b=[1, 2]", "c=x"]) == {"a.b": [1, 2], "c": "x"}
    with pytest.raises(ValueError):
        parse_assignments(["novalue"])


def test_suite_files(tmp_path):
    suite = {"name": "su", "defaults": {"seeds": [0, 1], "metric": {"name": "test_acc"}},
             "studies": {"a": {"task": "digits", "scientific": {"model.linear": ["dense"]}},
                         "b": {"task": "toy", "metric": {"name": "score"}, "seeds": [3],
                               "scientific": {"model.kind": ["plain", "fancy"], "model.width": [2, 4]}}}}
    f = write(tmp_path, suite)
    studies = load_all(f)
    assert [s.name for s in studies] == ["su.a", "su.b"]
    assert studies[0].seeds == [0, 1] and studies[1].seeds == [3]
    assert len(cells(studies[1])) == 3
    assert [s.name for s in load_all(f, only=["b"])] == ["su.b"]
    with pytest.raises(SweepError, match="'c' is not a study"):
        load_all(f, only=["c"])
    bad = {**suite, "studies": {"a": {"task": "digits", "metric": {"name": "nope"}}}}
    with pytest.raises(SweepError, match=r"studies\.a\.metric\.name"):
        load_all(write(tmp_path, bad, "bad.yaml"))


def test_only_the_missing_result_json_warning_is_dropped():
    import logging

    from sweeps.runner.tune_logs import _mute_missing_result_json

    log = logging.getLogger("ray.tune.analysis.experiment_analysis")
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    h = Keep()
    log.addHandler(h)
    try:
        _mute_missing_result_json()
        _mute_missing_result_json()                 # idempotent: one filter
        log.warning("Failed to fetch metrics for 2 trial(s):\n- t: FileNotFoundError('both result.json and progress.csv were not found')")
        log.warning("Failed to fetch metrics for 1 trial(s):\n- t: ValueError('corrupt')")
        log.warning("something else")
    finally:
        log.removeHandler(h)
    assert seen == ["Failed to fetch metrics for 1 trial(s):\n- t: ValueError('corrupt')", "something else"]
    assert sum(type(f).__name__ == "_DropMissingResultJson" for f in log.filters) == 1


def test_search_on_a_metric_reported_every_few_epochs_is_refused_before_launch(tmp_path):
    """3-body rolls out its test orbits every 5th epoch (tasks/physics SYSTEMS): a
    nuisance search on test_traj_mse would fail Tune's strict metric check."""
    sweep = {"name": "tb", "task": "physics", "metric": {"name": "test_traj_mse"}, "seeds": [0],
             "fixed": {"data.system": "three_body"}, "scientific": {"model.fusion": ["none", "cfu"]},
             "nuisance": {"optim.lr": {"loguniform": [1e-4, 1e-2]}}}
    with pytest.raises(SweepError) as e:
        load(write(tmp_path, sweep))
    msg = str(e.value)
    assert "search.metric" in msg and "every 5 epochs" in msg and "eval.rollout_every" in msg
    ok = dict(sweep, fixed={"data.system": "three_body", "eval.rollout_every": 1})
    assert load(write(tmp_path, ok, "ok.yaml")).search["metric"] == "test_traj_mse"
    # a metric reported every epoch, or no search at all, is fine at the default
    load(write(tmp_path, dict(sweep, search={"metric": "test_loss"}), "tl.yaml"))
    load(write(tmp_path, {k: v for k, v in sweep.items() if k != "nuisance"}, "grid.yaml"))
    load(write(tmp_path, dict(sweep, fixed={"data.system": "two_body"}), "two.yaml"))


def test_the_sweep_files_analysis_choices_are_the_design_modules_own():
    # One contract module (analysis/contract.py) for the sweep-file language, the design and the store reader:
    # the same objects, not copies, so a file that passes validation can always be planned and replayed.
    from analysis import contract, store
    from analysis.stats import _sequential as seq
    from sweeps.language import sections, study

    assert sections.SPENDINGS is seq.SPENDINGS is contract.SPENDINGS and sections.TESTS is seq.TESTS
    assert sections.LOOKS_CORRECTIONS is seq.CORRECTIONS
    assert (sections.HSD_RANGE, sections.HSD_GAMMA) == (seq.HSD_RANGE, seq.HSD_GAMMA)
    assert study.DEFAULT_ANALYSIS is store.DEFAULT_ANALYSIS is contract.DEFAULT_ANALYSIS


def test_hsd_spending_records_its_gamma(tmp_path):
    p = tmp_path / "hsd.yaml"
    p.write_text(yaml.safe_dump({"name": "hsd", "task": "toy", "metric": {"name": "score", "mode": "max"},
                                 "baseline": {"model.shift": 0.0}, "seeds": {"looks": [2, 3]},
                                 "scientific": {"model.shift": [0.0, 1.0]}, "analysis": {"spending": "hsd"}}))
    assert load(str(p)).analysis["hsd_gamma"] == -4.0        # the launch's tag then replays without a default
    assert load(str(p), overrides=parse_assignments(["analysis.hsd_gamma=1.5"])).analysis["hsd_gamma"] == 1.5


def test_resume_keeps_the_design_of_an_adaptive_launch(tmp_path):
    from sweeps.errors import UsageError
    from sweeps.runner.launch import check_same_design as _check_same_design
    from sweeps.runner.state import LaunchState

    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump({"name": "a", "task": "toy", "metric": {"name": "score", "mode": "max"},
                                 "baseline": {"model.shift": 0.0}, "seeds": {"looks": [2, 3]},
                                 "scientific": {"model.shift": [0.0, 1.0]}}))
    LaunchState.new(tmp_path / "a.ablate.json", load(str(p))).save()
    state = LaunchState.read(tmp_path / "a.ablate.json")                    # as read back from the state file
    _check_same_design(load(str(p)), state)                                 # unchanged: resumes
    for sets, words in ((["seeds={looks: [2, 4]}"], "seeds.looks was [2, 3], now [2, 4]"),
                        (["analysis.futility=0.01"], "analysis.futility was None, now 0.01"),
                        (["seeds=[0, 1]"], "seeds.looks was [2, 3], now None")):
        with pytest.raises(UsageError, match=re.escape(words)):
            _check_same_design(load(str(p), overrides=parse_assignments(sets)), state)
    _check_same_design(load(str(p), overrides=parse_assignments(["analysis.alpha=0.1"])),
                       dataclasses.replace(state, design=None))              # launches from before the record
    _check_same_design(load(str(p), overrides=parse_assignments(["analysis.alpha=0.1"])),
                       dataclasses.replace(state, done=["look0", "look1", "final"]))   # finished: nothing would run
