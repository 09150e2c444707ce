"""`ablate` as users run it: every documented command and flag in a subprocess,
against real Ray and a real MLflow store; exit codes, output and store contents.

The bad-input table (tests/sweeps/test_cli_errors.py) checks that no user
error ends in a traceback; this module checks that what the README promises
happens, and the defects the CLI issue found stay fixed.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.helpers import (ABLATE, ROOT, ablate, assert_clean_error, cli_env, finished_runs, out, toy_sweep,
                               write_yaml)

SHIPPED = sorted(p.name for p in (ROOT / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("sweep", SHIPPED)
def test_dry_run_of_every_shipped_sweep(tmp_path, sweep):
    r = ablate(["run", ROOT / "sweeps" / sweep, "--dry-run"], tmp_path, timeout=120)
    assert r.returncode == 0, out(r)
    assert "total:" in r.stdout and "Traceback" not in out(r)
    assert not (tmp_path / "home").exists(), "a dry run must not create a run directory or store"


def test_readme_example_is_the_shipped_tuned_sweep():
    """The README's sweep-file example is sweeps/cdlinear_tuned.yaml, verbatim."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Writing a sweep file", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == (ROOT / "sweeps" / "cdlinear_tuned.yaml").read_text()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One real launch through the CLI (a 3-cell toy sweep, 2 seeds, a plot); the
    read-only commands below use its store."""
    tmp = tmp_path_factory.mktemp("cli")
    sweep = toy_sweep("clitoy", tmp, seeds=(0, 1))
    sweep["plot"] = {"kind": "auto"}
    f = write_yaml(tmp / "clitoy.yaml", sweep)
    t0 = time.time()
    r = ablate(["run", f, "--plot", tmp / "run.png"], tmp, timeout=600)
    assert r.returncode == 0, out(r)[-4000:]
    return {"tmp": tmp, "file": f, "run": r, "uri": f"sqlite:///{tmp / 'home' / 'mlflow.db'}",
            "seconds": time.time() - t0}


def test_run_prints_the_table_writes_the_plot_and_tracks_one_run_per_trial(store):
    r, tmp = store["run"], store["tmp"]
    assert "clitoy: 6 final trials, 6 finished, 0 failed" in r.stdout
    assert "| model.kind |" in r.stdout and "baseline" in r.stdout
    assert (tmp / "run.png").stat().st_size > 5000
    assert "Traceback" not in out(r) and "Precision loss" not in out(r)
    from mlflow.tracking import MlflowClient

    c = MlflowClient(store["uri"])
    runs = c.search_runs([c.get_experiment_by_name("clitoy").experiment_id])
    trials = [x for x in runs if x.data.tags.get("ablate.phase") == "final"]
    parents = [x for x in runs if x.data.tags.get("ablate.phase") == "launch"]
    assert len(trials) == 6 and len({x.data.tags["ablate.trial_key"] for x in trials}) == 6
    assert len(parents) == 1 and {x.data.tags["mlflow.parentRunId"] for x in trials} == {parents[0].info.run_id}
    assert "report: " in r.stdout and Path(r.stdout.split("report: ")[1].split()[0]).exists()
    # output to a pipe, default interval: the start, the end, and one line a minute in between
    # (a 1 s interval in a log file: tests/sweeps/test_cli_small_things.py; a terminal: the test below)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("[final]")]
    assert 2 <= len(lines) <= 2 + store["seconds"] // 60, r.stdout[-3000:]
    assert lines[0].startswith("[final] 0 finished") and "6 pending" in lines[0], lines
    assert lines[-1].startswith("[final] 6 finished, 0 running, 0 pending, 0 failed of 6"), lines


def _csv(text):
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize("fmt", ["md", "latex", "csv"])
def test_table_formats(store, fmt):
    r = ablate(["table", "clitoy", "--format", fmt], store["tmp"])
    assert r.returncode == 0, out(r)
    if fmt == "csv":
        rows = _csv(r.stdout)
        assert [x["model.kind"] for x in rows] == ["plain", "fancy", "fancy"] and {x["n"] for x in rows} == {"2"}
    elif fmt == "latex":
        assert r.stdout.lstrip().startswith(r"\begin{tabular}")
    else:
        assert r.stdout.startswith("| model.kind")


def test_table_by_file_metric_launch_and_paper(store):
    tmp = store["tmp"]
    r = ablate(["table", store["file"], "--metric", "train_loss", "--format", "csv"], tmp)
    assert r.returncode == 0, out(r)
    assert len(_csv(r.stdout)) == 3
    launch = json.loads(next((tmp / "home").rglob("clitoy.ablate.json")).read_text())["launch"]
    for sel in (launch, "all", "latest"):
        r = ablate(["table", "clitoy", "--launch", sel], tmp)
        assert r.returncode == 0, out(r)
    r = ablate(["table", "clitoy", "--paper"], tmp)
    assert r.returncode == 0 and "paper comparison unavailable" in r.stdout, out(r)


def test_plot_and_interaction_plot(store):
    tmp = store["tmp"]
    r = ablate(["plot", "clitoy", "-o", tmp / "p.png"], tmp)
    assert r.returncode == 0 and (tmp / "p.png").stat().st_size > 5000, out(r)
    r = ablate(["plot", "clitoy", "--kind", "interaction", "-o", tmp / "i.png"], tmp)
    assert_clean_error(r, 2, "interaction", "two scientific axes")


def test_tasks_lists_and_describes_without_reprs(tmp_path):
    r = ablate(["tasks"], tmp_path)
    assert r.returncode == 0 and "digits:" in r.stdout and "toy:" in r.stdout
    r = ablate(["tasks", "toy"], tmp_path)
    assert r.returncode == 0, out(r)
    line = next(ln for ln in r.stdout.splitlines() if ln.strip().startswith("model.kind"))
    assert "'plain'" not in line and "one of plain, fancy" in line
    cols = [ln.index("default") for ln in r.stdout.splitlines() if ln.strip().startswith("key")]
    assert cols, r.stdout


def test_trial_reruns_a_cell_and_from_run_reproduces(store):
    tmp = store["tmp"]
    r = ablate(["trial", store["file"], "--set", "model.kind=fancy", "--set", "model.width=4", "--seed", "1"], tmp)
    assert r.returncode == 0, out(r)
    assert json.loads(r.stdout)["epoch"] == 2
    from mlflow.tracking import MlflowClient

    c = MlflowClient(store["uri"])
    exp = c.get_experiment_by_name("clitoy").experiment_id
    rid = next(x.info.run_id for x in c.search_runs([exp]) if x.data.tags.get("ablate.phase") == "final")
    r = ablate(["trial", "--from-run", rid], tmp)
    assert r.returncode == 0 and "reproduced exactly" in r.stdout, out(r)


def test_ui_refuses_a_port_in_use_and_a_missing_store(store, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = ablate(["ui", "--port", port], store["tmp"], timeout=60)
    assert_clean_error(r, 2, str(port), "in use")
    r = ablate(["ui"], tmp_path, timeout=60)
    assert_clean_error(r, 3, "no tracking store")
    assert not (tmp_path / "home").exists()


def test_ui_serves_the_store(store):
    from tests.helpers import free_port

    port = free_port()
    p = subprocess.Popen([*ABLATE, "ui", "--port", str(port)], cwd=store["tmp"], env=cli_env(store["tmp"]),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        import urllib.request

        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
                break
            except OSError:
                assert p.poll() is None, p.stdout.read()
                time.sleep(0.5)
        assert body.strip() == b"OK"
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=30)


def test_set_reaches_dotted_section_keys_and_warns_when_the_baseline_goes(tmp_path):
    f = write_yaml(tmp_path / "s.yaml", toy_sweep("setk", tmp_path))
    r = ablate(["run", f, "--dry-run", "--set", "baseline.model.kind=fancy", "--set", "scientific.model.width=[2]"],
               tmp_path)
    assert r.returncode == 0, out(r)
    assert "model.kind=fancy,model.width=2 seed=0 (baseline)" in r.stdout
    r = ablate(["run", f, "--dry-run", "--set", "model.kind=[fancy]"], tmp_path)
    assert r.returncode == 0 and "leaves out the baseline cell (model.kind=plain)" in r.stderr, out(r)
    r = ablate(["run", f, "--dry-run", "--set", "baseline.model.knd=fancy"], tmp_path)
    assert_clean_error(r, 2, "baseline.model.knd")


def test_a_mistyped_flag_gets_the_subcommands_usage(tmp_path):
    r = ablate(["run", "x.yaml", "--dryrun"], tmp_path)
    assert r.returncode == 2 and "Traceback" not in out(r)
    assert "usage: ablate run" in r.stderr and "did you mean --dry-run" in r.stderr, r.stderr


def test_a_smoke_launch_says_so_and_launch_all_warns_when_it_pools_smoke_and_full_launches(tmp_path):
    f = write_yaml(tmp_path / "m.yaml", toy_sweep("mixed", tmp_path))
    r = ablate(["run", f, "--smoke"], tmp_path)                # a smoke launch says so under its table
    assert r.returncode == 0 and "a --smoke run" in r.stdout, out(r)[-2000:]
    for fmt in ("md", "latex"):
        assert "--smoke run" in ablate(["table", "mixed", "--format", fmt], tmp_path).stdout
    r = ablate(["run", f, "--no-table"], tmp_path)
    assert r.returncode == 0, out(r)[-3000:]
    r = ablate(["table", "mixed", "--launch", "all"], tmp_path)
    assert r.returncode == 0, out(r)
    assert "--smoke runs" in r.stderr and "not comparable" in r.stderr, r.stderr
    smoke = json.loads(next((tmp_path / "home").rglob("mixed.ablate.json")).read_text())
    assert smoke["smoke"] is False
    r = ablate(["table", "mixed", "--launch", "latest"], tmp_path)
    assert "--smoke" not in out(r)


def test_unknown_names_exit_2_and_list_what_exists(store):
    tmp = store["tmp"]
    r = ablate(["table", "nope"], tmp)
    line = assert_clean_error(r, 2, "'nope'", "clitoy")
    assert "Default" not in line
    assert_clean_error(ablate(["table", "clitoy", "--launch", "20990101-000000-abcdef"], tmp), 2, "launch")
    assert_clean_error(ablate(["table", "clitoy", "--metric", "nope"], tmp), 2, "'nope'", "score")
    assert_clean_error(ablate(["plot", "clitoy", "--metric", "nope"], tmp), 2, "'nope'")
    assert_clean_error(ablate(["trial", "--from-run", "0" * 32], tmp), 2, "no such run")
    assert_clean_error(ablate(["run", store["file"], "--resume", "--set", "name=other"], tmp), 2,
                       "--resume", "no earlier launch")


def test_from_run_refuses_the_launch_run_and_reproduces_a_failure(tmp_path):
    f = write_yaml(tmp_path / "n.yaml", toy_sweep("nanrun", tmp_path, **{"fault.kind": "nan", "fault.epoch": 2}))
    r = ablate(["run", f, "--no-table", "--set", "seeds=[0]", "--set", "model.kind=[plain]"], tmp_path)
    assert r.returncode == 1, out(r)[-3000:]
    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    runs = c.search_runs([c.get_experiment_by_name("nanrun").experiment_id])
    parent = next(x for x in runs if x.data.tags["ablate.phase"] == "launch")
    failed = next(x for x in runs if x.info.status == "FAILED")
    assert_clean_error(ablate(["trial", "--from-run", parent.info.run_id], tmp_path), 2, "not a trial")
    r = ablate(["trial", "--from-run", failed.info.run_id], tmp_path)
    assert r.returncode == 0 and "failed the same way -> reproduced exactly" in r.stdout, out(r)


def test_from_run_of_an_asha_stopped_run_compares_at_its_epoch(tmp_path):
    sweep = toy_sweep("asha", tmp_path, seeds=(0,), **{"train.epochs": 6})
    sweep["scientific"] = {"model.kind": ["plain"]}
    sweep.pop("baseline")
    sweep["nuisance"] = {"optim.lr": {"loguniform": [1e-4, 0.5]}}
    sweep["search"] = {"trials_per_cell": 6, "scheduler": "asha", "grace_period": 1, "reduction_factor": 2}
    r = ablate(["run", write_yaml(tmp_path / "a.yaml", sweep), "--no-table"], tmp_path)
    assert r.returncode == 0, out(r)[-3000:]
    from mlflow.tracking import MlflowClient

    c = MlflowClient(f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}")
    runs = c.search_runs([c.get_experiment_by_name("asha").experiment_id])
    stopped = [x for x in runs if x.data.tags.get("ablate.stopped_early") == "true"]
    assert stopped, "ASHA stopped no trial"
    r = ablate(["trial", "--from-run", stopped[0].info.run_id], tmp_path)
    assert r.returncode == 0, out(r)
    assert "stopped early by ASHA at epoch" in r.stderr and "reproduced exactly" in r.stdout, out(r)


def test_nuisance_search_every_distribution_from_the_cli(tmp_path):
    """The Optuna search as users run it: loguniform, uniform, int and choice axes, planned with ASHA
    and without (dry run), launched without (--smoke)."""
    sweep = toy_sweep("nui", tmp_path, seeds=(0, 1), **{"train.epochs": 3})
    sweep["nuisance"] = {"optim.lr": {"loguniform": [1e-3, 0.5]}, "model.x0": {"uniform": [0.5, 1.5]},
                         "fault.epoch": {"int": [2, 5]}, "train.sleep": {"choice": [0.0, 0.001]}}
    for sched in ("asha", "none"):
        sweep["search"] = {"trials_per_cell": 2, "scheduler": sched, "metric": "score"}
        f = write_yaml(tmp_path / f"n-{sched}.yaml", {**sweep, "name": f"nui-{sched}"})
        r = ablate(["run", f, "--dry-run"], tmp_path)
        assert r.returncode == 0 and "tuned per cell" in r.stdout, out(r)
        assert "6 Optuna TPE trials" in r.stdout.replace("= ", "") or "× 2 Optuna TPE trials" in r.stdout
        if sched == "asha":     # launched with ASHA through the CLI: test_the_tuned_cdlinear_sweep_smoke_through_the_cli
            assert "ASHA" in r.stdout, r.stdout
            continue
        r = ablate(["run", f, "--smoke"], tmp_path)
        assert r.returncode == 0, out(r)[-3000:]
        assert f"nui-{sched}: search phase: 6 trials" in r.stdout, r.stdout[-2000:]
        assert "best nuisance for [model.kind=plain]" in r.stdout
        if sched == "none":                  # the table under the --smoke launch: tuned apart from the seeds
            assert re.search(r"nuisance axes tuned on seed \d+, apart from the evaluation seeds", r.stdout), r.stdout


def test_the_tuned_cdlinear_sweep_smoke_through_the_cli(tmp_path):
    """sweeps/cdlinear_tuned.yaml: lr tuned per cell on val_acc (data.val_fraction), ASHA, then seeds."""
    r = ablate(["run", ROOT / "sweeps" / "cdlinear_tuned.yaml", "--smoke"], tmp_path, timeout=900)
    assert r.returncode == 0, out(r)[-3000:]
    assert "cdlinear_tuned: search phase: 6 trials" in r.stdout
    assert "3 final trials, 3 finished, 0 failed" in r.stdout


def _wait_for(pred, timeout=300, every=0.3):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if pred():
                return True
        except Exception:  # noqa: BLE001 - a poll of the store while the launch writes it; try again
            pass
        time.sleep(every)
    return False


def _finished(uri, name):
    return finished_runs(uri, name)


def test_suite_ctrl_c_resume_then_plot_table_and_report_per_study(tmp_path):
    """A suite: Ctrl-C, then ``--resume --plot`` runs only what never finished and writes one plot per study;
    table, plot and report read both studies."""
    home = tmp_path / "home"
    uri = f"sqlite:///{home / 'mlflow.db'}"
    first = toy_sweep("x", tmp_path, seeds=(0, 1, 2, 3), **{"train.sleep": 0.7, "train.epochs": 2})
    suite = {"name": "su", "defaults": {k: v for k, v in first.items() if k != "name"},
             "studies": {"first": {}, "second": {"seeds": [0, 1]}}}
    f = write_yaml(tmp_path / "suite.yaml", suite)
    p = subprocess.Popen([*ABLATE, "run", str(f), "--no-table"], cwd=tmp_path, env=cli_env(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert _wait_for(lambda: len(_finished(uri, "su.first")) >= 2 or p.poll() is not None), "did not start"
    assert p.poll() is None, f"the driver exited ({p.returncode}) before the Ctrl-C:\n{p.communicate()[0][-3000:]}"
    os.killpg(p.pid, signal.SIGINT)
    text, _ = p.communicate(timeout=180)
    assert p.returncode == 130 and "--resume" in text and "Traceback" not in text, text[-3000:]
    assert not _finished(uri, "su.second")
    r = ablate(["run", f, "--resume", "--plot", tmp_path / "fig.png"], tmp_path)
    assert r.returncode == 0, out(r)[-3000:]
    assert "su.second: not started by suite launch" in r.stdout
    assert len(_finished(uri, "su.first")) == 12 and len(_finished(uri, "su.second")) == 6
    keys = [x.data.tags["ablate.trial_key"] for x in _finished(uri, "su.first")]
    assert len(keys) == len(set(keys)), "a trial ran twice"
    for study in ("first", "second"):                       # --plot on a suite: one file per study
        assert (tmp_path / f"fig.{study}.png").stat().st_size > 5000
    assert not (tmp_path / "fig.png").exists()
    r = ablate(["run", f, "--resume", "--no-table"], tmp_path)
    assert r.returncode == 0 and r.stdout.count("already complete") == 2, out(r)[-2000:]

    r = ablate(["table", "su", "--format", "csv"], tmp_path)
    rows = _csv(r.stdout)
    assert r.returncode == 0 and {x["study"] for x in rows} == {"su.first", "su.second"} and len(rows) == 6, r.stdout
    assert r.stdout.count("\n") == 7, "one CSV with one header"
    r = ablate(["plot", "su", "-o", tmp_path / "q.png"], tmp_path)
    assert r.returncode == 0 and (tmp_path / "q.first.png").exists() and (tmp_path / "q.second.png").exists(), out(r)
    assert "no critical-difference diagram" in r.stdout          # 2 studies: too few, and it says so
    r = ablate(["table", "su"], tmp_path)
    assert r.returncode == 0 and "\nsu.first" in r.stdout and "\nsu.second" in r.stdout, out(r)
    assert "P(improvement)" in r.stdout and "Friedman" in r.stdout, r.stdout[-2000:]
    r = ablate(["report", "su", "-o", tmp_path / "suite.html", "--ui-url", "http://mlflow.example:5000/"], tmp_path)
    assert r.returncode == 0, out(r)
    page = (tmp_path / "suite.html").read_text()
    assert page.count("su.first") >= 2 and page.count("su.second") >= 2
    assert "http://mlflow.example:5000/#/experiments/" in page and "ablate trial --from-run" not in page


def test_two_launches_creating_one_new_store_at_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}"
    procs = []
    for name in ("race1", "race2"):
        f = write_yaml(tmp_path / f"{name}.yaml", {**toy_sweep(name, tmp_path, seeds=(0,)),
                                                   "scientific": {"model.kind": ["plain"]}})
        f.write_text(f.read_text().replace("baseline:\n  model.kind: plain\n", ""))
        procs.append(subprocess.Popen([*ABLATE, "run", str(f), "--tracking-uri", uri, "--no-table"],
                                      cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    for p in procs:
        text, _ = p.communicate(timeout=600)
        assert p.returncode == 0, text[-3000:]
    assert len(_finished(uri, "race1")) == 1 and len(_finished(uri, "race2")) == 1


def test_a_file_store_works_without_mlflow_allow_file_store(tmp_path):
    env = cli_env(tmp_path)
    env.pop("MLFLOW_ALLOW_FILE_STORE", None)
    f = write_yaml(tmp_path / "fs.yaml", {**toy_sweep("fstore", tmp_path, seeds=(0,)),
                                          "tracking": {"uri": str(tmp_path / "mlruns")}})
    r = ablate(["run", f], tmp_path, env=env)
    assert r.returncode == 0, out(r)[-3000:]
    r = ablate(["table", "fstore", "--tracking-uri", tmp_path / "mlruns", "--format", "csv"], tmp_path, env=env)
    assert r.returncode == 0 and len(_csv(r.stdout)) == 3, out(r)


def test_unreachable_server_fails_fast_for_every_command(tmp_path):
    from tests.helpers import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    f = write_yaml(tmp_path / "u.yaml", toy_sweep("unr", tmp_path))
    for args in (["table", "unr"], ["plot", "unr"], ["trial", "--from-run", "abc"], ["run", f],
                 ["report", "unr"]):
        t0 = time.time()
        r = ablate([*args, "--tracking-uri", uri], tmp_path, timeout=120)
        assert_clean_error(r, 3, "cannot be reached")
        assert time.time() - t0 < 20, f"{args}: {time.time() - t0:.0f} s"


def test_read_only_commands_never_create_a_store(tmp_path):
    for args in (["table", "x"], ["plot", "x"], ["report", "x"], ["trial", "--from-run", "abc"], ["ui"]):
        r = ablate(args, tmp_path, timeout=60)
        assert_clean_error(r, 3, "no tracking store")
    assert not (tmp_path / "home").exists()
    db = tmp_path / "given.db"
    r = ablate(["table", "x", "--tracking-uri", f"sqlite:///{db}"], tmp_path)
    assert_clean_error(r, 3, "no tracking store", str(db))
    assert not db.exists()


_KILLED_WRITER = """
import os, signal, sqlite3, sys
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size=1")          # spill pages into the database file before commit
con.execute("BEGIN")
con.execute("create table half_written(x)")
con.execute("insert into half_written values (randomblob(400000))")
con.execute("update runs set name = name || '-uncommitted'")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_store_left_mid_transaction_by_a_killed_writer_is_recovered(store, tmp_path):
    """A driver SIGKILLed inside an MLflow write leaves a hot journal; sqlite rolls it back on
    the next read-write open. The store check must not refuse such a store as unreadable."""
    import shutil
    import sqlite3
    import sys

    db = tmp_path / "mlflow.db"
    shutil.copy(Path(store["uri"][len("sqlite:///"):]), db)
    subprocess.run([sys.executable, "-c", _KILLED_WRITER, str(db)], timeout=60)
    assert (tmp_path / "mlflow.db-journal").exists(), "the writer did not leave a hot journal"
    with pytest.raises(sqlite3.OperationalError):      # the condition the check used to trip on
        sqlite3.connect(f"file:{db}?mode=ro", uri=True).execute("select * from sqlite_master").fetchall()
    r = ablate(["table", "clitoy", "--format", "csv", "--tracking-uri", f"sqlite:///{db}"], tmp_path)
    assert r.returncode == 0, out(r)
    assert [x["model.kind"] for x in _csv(r.stdout)] == ["plain", "fancy", "fancy"]
    con = sqlite3.connect(db)
    tables = {t for (t,) in con.execute("select name from sqlite_master where type='table'")}
    uncommitted = con.execute("select count(*) from runs where name like '%-uncommitted'").fetchone()[0]
    con.close()
    assert "half_written" not in tables and uncommitted == 0, "the killed transaction was not rolled back"


def _interrupted_before_ablate_code_ran(text: str) -> bool:
    """A SIGINT inside CPython's own start-up (``init_sys_streams``, ``site``, the argv[0] zipimport check) or
    pip's console-script wrapper lines is handled as Python does: a traceback, a fatal-error report, the bare
    word ``KeyboardInterrupt``, or (argv[0] check) a message after which the command goes on.  The handler
    goes in at the first statement of sweeps/cli/console.py; a signal that arrived while Python was still
    loading the package files before it is raised at the first bytecode of ``sweeps/__init__.py``,
    ``sweeps/cli/__init__.py`` or console.py (before its ``try:``), so a traceback ending there is also
    before any ablate code could catch it.
    Measured here, idle, SIGINT at 5-30 ms after start: 233 of 400 starts ended so, 151 exited 130 with
    one line, 16 were killed silently; under load (the suite in CI) 50 ms can land there.  A frame
    anywhere else in ablate's own files fails the test."""
    if "Traceback" not in text and "Fatal Python error" not in text and text.strip() != "KeyboardInterrupt":
        return False
    console = ROOT / "sweeps" / "cli" / "console.py"
    handler_line = console.read_text().splitlines().index("try:") + 1
    before_handler = {ROOT / "sweeps" / "__init__.py", ROOT / "sweeps" / "cli" / "__init__.py"}
    for f, line in re.findall(r'File "([^"]+)", line (\d+)', text):
        path = Path(f)
        if not path.is_absolute() or ".venv" in path.parts or not path.resolve().is_relative_to(ROOT):
            continue
        if path.resolve() in before_handler or (path.resolve() == console and int(line) < handler_line):
            continue        # console.py's first bytecode, before its try: (where a pending signal is raised)
        return False
    return True


@pytest.mark.parametrize("delay", [0.05, 0.4, 1.0, 2.0, 3.5, 6.0])
def test_ctrl_c_at_any_moment_of_start_up_exits_130_cleanly(tmp_path, delay):
    f = write_yaml(tmp_path / "c.yaml", toy_sweep("cc", tmp_path, **{"train.sleep": 1.0, "train.epochs": 5}))
    p = subprocess.Popen([*ABLATE, "run", str(f)], cwd=tmp_path, env=cli_env(tmp_path), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    time.sleep(delay)
    os.killpg(p.pid, signal.SIGINT)
    text, _ = p.communicate(timeout=180)
    assert "Segmentation" not in text, text[-3000:]
    if _interrupted_before_ablate_code_ran(text):
        assert "KeyboardInterrupt" in text, text[-3000:]
        return
    assert "Traceback" not in text, text[-3000:]
    if p.returncode == -signal.SIGINT:         # killed before the interpreter had installed any handler
        assert not text.strip(), text
        return
    assert p.returncode == 130, f"exit {p.returncode} after SIGINT at {delay} s:\n{text[-3000:]}"
    assert "interrupted" in text


def test_address_forms_are_validated_before_anything_runs(tmp_path):
    f = write_yaml(tmp_path / "a.yaml", toy_sweep("addr", tmp_path))
    assert_clean_error(ablate(["run", f, "--address", "ray://head:10001"], tmp_path), 2, "ray://", "--address auto")
    assert_clean_error(ablate(["run", f, "--address", "not an address"], tmp_path), 2, "--address")
    t0 = time.time()
    r = ablate(["run", f, "--address", "127.0.0.1:1"], tmp_path, timeout=120)
    assert_clean_error(r, 3, "127.0.0.1:1")
    assert time.time() - t0 < 30


def test_progress_lines_with_an_eta_on_a_terminal(tmp_path):
    import pty
    import re

    f = write_yaml(tmp_path / "p.yaml", toy_sweep("prog", tmp_path, seeds=(0, 1, 2),
                                                  **{"train.sleep": 0.6, "train.epochs": 2}))
    # a pipe at the default interval: test_run_prints_the_table_writes_the_plot_and_tracks_one_run_per_trial
    env = {**cli_env(tmp_path), "ABLATE_PROGRESS_S": "1"}
    master, slave = pty.openpty()
    p = subprocess.Popen([*ABLATE, "run", str(f), "--no-table"], cwd=tmp_path, env=env, stdin=slave,
                         stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data.decode(errors="replace"))
    p.wait(timeout=300)
    text = "".join(chunks)
    assert p.returncode == 0, text[-3000:]
    progress = [ln for ln in text.splitlines() if ln.startswith("[final]")]
    assert len(progress) >= 4, text[-3000:]
    assert any(re.search(r"ETA \d+m\d\ds", ln) for ln in progress), progress


def test_the_adaptive_cdlinear_sweep_smoke_through_the_cli(tmp_path):
    """sweeps/cdlinear_looks.yaml at --smoke: only its first look, i.e. a fixed design on seeds 0-2."""
    r = ablate(["run", ROOT / "sweeps" / "cdlinear_looks.yaml", "--smoke", "--dry-run"], tmp_path)
    assert r.returncode == 0 and "3 cells × 3 seeds = 9 trials" in r.stdout, out(r)
    r = ablate(["run", ROOT / "sweeps" / "cdlinear_looks.yaml", "--smoke"], tmp_path, timeout=900)
    assert r.returncode == 0, out(r)[-3000:]
    assert "9 final trials, 9 finished, 0 failed" in r.stdout and "a --smoke run" in r.stdout


def test_every_shipped_sweep_file_has_a_smoke_test():
    here = Path(__file__).parent
    text = "".join(p.read_text() for p in here.glob("test_*.py"))
    for sweep in SHIPPED:
        assert sweep in text or sweep.removesuffix(".yaml") in text, f"{sweep} has no smoke test"


def test_the_readme_documents_every_command_and_flag():
    import argparse

    from sweeps.cli.main import build_parser

    readme = (ROOT / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        assert f"ablate {name}" in readme, name
        for action in parser._actions:
            flags = [o for o in action.option_strings if o not in ("-h", "--help")]
            if flags:
                assert any(f"`{f}" in readme for f in flags), f"ablate {name} {flags[0]} is not in the README"
