"""Bad input through the CLI, table-driven: every case must exit with the
documented code (2 bad input, 3 store or cluster unusable) and one clear line
naming what is wrong, never a traceback, and must not launch anything.

Cases run against a tiny real store (two toy runs written by the CLI) so that
run ids, launches and metrics exist to be misnamed.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.helpers import ROOT, ablate, assert_clean_error, cli_env, out, toy_sweep, write_yaml


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("errs")
    good = toy_sweep("errtoy", tmp, seeds=(0,))
    write_yaml(tmp / "good.yaml", good)
    suite = {"name": "esuite", "defaults": {k: v for k, v in good.items() if k != "name"},
             "studies": {"a": {}, "b": {}}}
    write_yaml(tmp / "suite.yaml", suite)
    r = ablate(["run", tmp / "good.yaml", "--no-table", "--set", "model.kind=[plain]"], tmp)
    assert r.returncode == 0, out(r)[-3000:]
    (tmp / "notyaml.yaml").write_text("name: [unclosed\n")
    (tmp / "list.yaml").write_text("- a\n- b\n")
    (tmp / "latin1.yaml").write_bytes("name: caf\xe9\ntask: toy\n".encode("latin-1"))
    (tmp / "twice.yaml").write_text("name: twice\ntask: toy\nseeds: [0]\nfixed: {train.epochs: 2}\n"
                                    "metric: {name: score}\nseeds: [0, 1]\n")
    (tmp / "twice_inner.yaml").write_text("name: twice\ntask: toy\nfixed:\n  train.epochs: 2\n"
                                          "  optim.lr: 0.1\n  train.epochs: 3\n")
    (tmp / "corrupt.db").write_bytes(b"this is not a database at all" * 10)
    con = sqlite3.connect(tmp / "foreign.db")
    con.execute("create table t (x int)")
    con.commit()
    con.close()
    # MLflow's tables, but a schema revision MLflow does not know: its migration fails inside our lock
    con = sqlite3.connect(tmp / "unknown_rev.db")
    for ddl in ("create table experiments (experiment_id int)", "create table runs (run_uuid text)",
                "create table alembic_version (version_num text)", "insert into alembic_version values ('0bad')"):
        con.execute(ddl)
    con.commit()
    con.close()
    (tmp / "afile").write_text("x")
    return tmp


def _bad(world, **patch) -> Path:
    data = {**toy_sweep("bad", world, seeds=(0,)), **patch}
    return write_yaml(world / f"bad{abs(hash(repr(patch))) % 10**8}.yaml", data)


# (args builder, exit code, words the error line must contain)
CASES = {
    # sweep files
    "missing file": (lambda w: ["run", w / "nope.yaml"], 2, ["nope.yaml", "cannot read"]),
    "not yaml": (lambda w: ["run", w / "notyaml.yaml"], 2, ["<yaml>", "not valid YAML"]),
    "not a mapping": (lambda w: ["run", w / "list.yaml"], 2, ["<top>", "mapping"]),
    "not utf-8": (lambda w: ["run", w / "latin1.yaml"], 2, ["latin1.yaml", "not UTF-8", "0xe9"]),
    "not utf-8, read": (lambda w: ["table", w / "latin1.yaml"], 2, ["latin1.yaml", "not UTF-8"]),
    "a key twice": (lambda w: ["run", w / "twice.yaml", "--dry-run"], 2, ["seeds", "twice", "lines 3 and 6"]),
    "a nested key twice": (lambda w: ["run", w / "twice_inner.yaml"], 2, ["train.epochs", "lines 4 and 6"]),
    "unknown top key": (lambda w: ["run", _bad(w, seedz=[1])], 2, ["seedz", "did you mean 'seeds'"]),
    "unknown task": (lambda w: ["run", _bad(w, task="toi")], 2, ["task", "'toi'", "valid tasks"]),
    "bad metric": (lambda w: ["run", _bad(w, metric={"name": "acc"})], 2, ["metric.name", "'acc'", "score"]),
    "negative seed": (lambda w: ["run", _bad(w, seeds=[-1])], 2, ["seeds[0]", "-1"]),
    "bad looks": (lambda w: ["run", _bad(w, seeds={"looks": [5, 3]})], 2, ["seeds.looks", "increasing"]),
    "one look": (lambda w: ["run", _bad(w, seeds={"looks": [3]})], 2, ["seeds.looks", "at least two"]),
    "bad value": (lambda w: ["run", _bad(w, fixed={"optim.lr": "fast"})], 2, ["fixed.optim.lr", "'fast'"]),
    "bad axis value": (lambda w: ["run", _bad(w, scientific={"model.kind": ["plain", "odd"]})], 2,
                       ["scientific.model.kind[1]", "'odd'", "fancy"]),
    "bad dist": (lambda w: ["run", _bad(w, nuisance={"optim.lr": {"normal": [0, 1]}})], 2,
                 ["nuisance.optim.lr.normal", "loguniform"]),
    "nuisance also fixed": (lambda w: ["run", _bad(w, fixed={"optim.lr": 0.1},
                                                   nuisance={"optim.lr": {"uniform": [0, 1]}})], 2,
                            ["nuisance.optim.lr", "also set in 'fixed'"]),
    "unknown analysis key": (lambda w: ["run", _bad(w, analysis={"alpah": 0.05})], 2, ["analysis.alpah", "alpha"]),
    "negative min_effect": (lambda w: ["run", _bad(w, analysis={"min_effect": -1})], 2,
                            ["analysis.min_effect", "-1", "> 0"]),
    "alpha out of range": (lambda w: ["run", _bad(w, analysis={"alpha": 1.5})], 2, ["analysis.alpha", "1.5"]),
    "bad correction": (lambda w: ["run", _bad(w, analysis={"correction": "sidak"})], 2,
                       ["analysis.correction", "holm"]),
    "paired one seed": (lambda w: ["run", _bad(w, analysis={"test": "paired"})], 2, ["analysis.test", "paired"]),
    "spending without looks": (lambda w: ["run", _bad(w, analysis={"spending": "pocock"})], 2,
                               ["analysis.spending", "looks"]),
    "futility out of range": (lambda w: ["run", _bad(w, seeds={"looks": [2, 3]}, analysis={"futility": 1.5})], 2,
                              ["analysis.futility", "1.5", "(0, 1)"]),
    "futility without looks": (lambda w: ["run", _bad(w, analysis={"futility": 0.01})], 2,
                               ["analysis.futility", "looks"]),
    "hsd_gamma out of range": (lambda w: ["run", _bad(w, seeds={"looks": [2, 3]},
                                                      analysis={"spending": "hsd", "hsd_gamma": 40})], 2,
                               ["analysis.hsd_gamma", "40", "[-20, 20]"]),
    "hsd_gamma without hsd": (lambda w: ["run", _bad(w, seeds={"looks": [2, 3]}, analysis={"hsd_gamma": -2})], 2,
                              ["analysis.hsd_gamma", "spending: hsd", "'obrien_fleming'"]),
    "bad spending": (lambda w: ["run", _bad(w, seeds={"looks": [2, 3]}, analysis={"spending": "haybittle"})], 2,
                     ["analysis.spending", "'haybittle'", "obrien_fleming, pocock, hsd"]),
    "bh with looks": (lambda w: ["run", _bad(w, seeds={"looks": [2, 3]}, analysis={"correction": "bh"})], 2,
                      ["analysis.correction", "'bh'", "looks", "holm, bonferroni"]),
    "bad checkpoint": (lambda w: ["run", _bad(w, checkpoint={"every_s": -3})], 2, ["checkpoint.every_s", "-3"]),
    "bad resources": (lambda w: ["run", _bad(w, resources={"cpu": 0})], 2, ["resources.cpu", "> 0"]),
    "bad search key": (lambda w: ["run", _bad(w, search={"trials": 3})], 2, ["search.trials", "trials_per_cell"]),
    "looks without baseline": (lambda w: ["run", _bad(w, baseline={}, seeds={"looks": [2, 3]})], 2,
                               ["seeds.looks", "baseline"]),
    # flags
    "set without =": (lambda w: ["run", w / "good.yaml", "--set", "train.epochs"], 2, ["--set", "key=value"]),
    "set bad yaml": (lambda w: ["run", w / "good.yaml", "--set", "seeds=[1,"], 2, ["--set seeds", "YAML"]),
    "set unknown key": (lambda w: ["run", w / "good.yaml", "--set", "train.epoch=3"], 2,
                        ["train.epoch", "did you mean 'train.epochs'"]),
    "set bad value": (lambda w: ["run", w / "good.yaml", "--set", "train.epochs=many"], 2,
                      ["fixed.train.epochs", "'many'"]),
    "only on a single sweep": (lambda w: ["run", w / "good.yaml", "--only", "a"], 2, ["--only", "not a suite"]),
    "only unknown study": (lambda w: ["run", w / "suite.yaml", "--only", "c"], 2, ["'c'", "a, b"]),
    "unknown flag": (lambda w: ["table", "errtoy", "--formt", "csv"], 2, ["--formt", "--format"]),
    "bad format": (lambda w: ["table", "errtoy", "--format", "xls"], 2, ["--format", "xls"]),
    "ray client address": (lambda w: ["run", w / "good.yaml", "--address", "ray://h:10001"], 2, ["ray://"]),
    "bad port": (lambda w: ["ui", "--port", "70000"], 2, ["--port", "70000"]),
    "ui on a server": (lambda w: ["ui", "--tracking-uri", "http://127.0.0.1:1"], 2, ["tracking server"]),
    "bad ui url": (lambda w: ["report", "errtoy", "--ui-url", "ftp://x"], 2, ["--ui-url", "ftp://x"]),
    "trial negative seed": (lambda w: ["trial", w / "good.yaml", "--set", "model.kind=plain", "--seed", "-2"], 2,
                            ["--seed", "-2"]),
    "trial of a suite": (lambda w: ["trial", w / "suite.yaml"], 2, ["suite", "--only"]),
    "trial with nothing": (lambda w: ["trial"], 2, ["sweep file", "--from-run"]),
    "from-run with set": (lambda w: ["trial", "--from-run", "abc", "--set", "seed=1"], 2, ["--from-run", "--set"]),
    "unknown task name": (lambda w: ["tasks", "digitz"], 2, ["'digitz'", "digits"]),
    # names that are not in the store
    "unknown sweep": (lambda w: ["table", "nosuch"], 2, ["'nosuch'", "errtoy"]),
    "unknown launch": (lambda w: ["plot", "errtoy", "--launch", "nolaunch"], 2, ["nolaunch", "launches"]),
    "unknown metric": (lambda w: ["report", "errtoy", "--metric", "nometric"], 2, ["'nometric'", "score"]),
    "unknown run id": (lambda w: ["trial", "--from-run", "f" * 32], 2, ["no such run"]),
    "resume without launch": (lambda w: ["run", _bad(w, name="never"), "--resume"], 2, ["--resume", "never"]),
    "sweep file missing for table": (lambda w: ["table", w / "gone.yaml"], 2, ["no such sweep file"]),
    # environment and stores
    "home is a file": (lambda w: ["run", w / "good.yaml"], 2, ["afile", "not a directory"]),
    "home under a file": (lambda w: ["run", w / "good.yaml"], 2, ["afile", "cannot create the run directory"]),
    "home is a file for table": (lambda w: ["table", "errtoy"], 2, ["afile", "not a directory"]),
    "corrupt store": (lambda w: ["table", "errtoy", "--tracking-uri", f"sqlite:///{w / 'corrupt.db'}"], 3,
                      ["corrupt.db", "not a sqlite database"]),
    "store of an unknown schema revision": (
        lambda w: ["run", w / "good.yaml", "--tracking-uri", f"sqlite:///{w / 'unknown_rev.db'}"], 3,
        ["unknown_rev.db", "cannot be used"]),
    "foreign sqlite": (lambda w: ["run", w / "good.yaml", "--tracking-uri", f"sqlite:///{w / 'foreign.db'}"], 3,
                       ["foreign.db", "not an MLflow tracking store"]),
    "store is a directory": (lambda w: ["table", "errtoy", "--tracking-uri", f"sqlite:///{w}"], 3,
                             ["is a directory"]),
    "missing store": (lambda w: ["plot", "errtoy", "--tracking-uri", f"sqlite:///{w / 'absent.db'}"], 3,
                      ["no tracking store", "absent.db"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_with_one_clear_line(world, case):
    build, code, words = CASES[case]
    env = cli_env(world)
    if case.startswith("home is a file"):
        env["ABLATE_HOME"] = str(world / "afile")
    elif case == "home under a file":
        env["ABLATE_HOME"] = str(world / "afile" / "sub")
    before = sorted(p.name for p in (world / "home").iterdir()) if (world / "home").exists() else []
    r = ablate(build(world), world, env=env, timeout=120)
    assert_clean_error(r, code, *words)
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(errors) <= 1 or all(": " in ln for ln in errors), r.stderr
    after = sorted(p.name for p in (world / "home").iterdir()) if (world / "home").exists() else []
    assert after == before, "a rejected command changed the run directory"
    assert "absent.db" not in " ".join(p.name for p in world.iterdir())


def test_every_sweep_error_is_listed_in_one_pass(world):
    f = _bad(world, seeds=[-1], metric={"name": "acc"}, fixed={"train.epoch": 3})
    r = ablate(["run", f], world)
    assert r.returncode == 2 and "Traceback" not in out(r)
    for key in ("seeds[0]", "metric.name", "fixed.train.epoch"):
        assert f": {key}: " in r.stderr, r.stderr


def test_readme_exit_codes_match_the_code():
    from sweeps import errors

    readme = (ROOT / "README.md").read_text()
    for code in (errors.EXIT_OK, errors.EXIT_FAILED, errors.EXIT_BAD_INPUT, errors.EXIT_ENV, errors.EXIT_INTERNAL,
                 errors.EXIT_INTERRUPTED):
        assert f"| {code} |" in readme, f"exit code {code} is not in the README's table"
