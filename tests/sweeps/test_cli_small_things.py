"""What a new user meets first (issue 27), each through the ``ablate`` command in a subprocess against real
Ray and a real MLflow store: progress in a log file, no warnings the user cannot act on, a study whose every
trial failed (one line instead of a plotting error, failure reasons without terminal colour codes),
``ablate ui`` printing its URL only once it answers, and ``ablate table`` reading a local store without
MLflow's client (the same table either way, and without importing what it does not need)."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers import ABLATE, ablate, cli_env, free_port, out, toy_sweep, write_yaml

TOKEN_NOTICE = "Token authentication is enabled"


def _env(tmp: Path, **extra) -> dict:
    env = cli_env(tmp, **extra)
    env.pop("RAY_AUTH_MODE", None)        # as on a fresh machine: Ray then turns tokens on and says so
    return env


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A toy launch whose output goes to a log file (a pipe), with a progress line asked for every second."""
    tmp = tmp_path_factory.mktemp("log")
    f = write_yaml(tmp / "logged.yaml", toy_sweep("logged", tmp, seeds=(0, 1), **{"train.sleep": 0.5,
                                                                                   "train.epochs": 3}))
    env = _env(tmp, ABLATE_PROGRESS_S="1")
    r = ablate(["run", f, "--no-table"], tmp, env=env, timeout=900)
    assert r.returncode == 0, out(r)[-4000:]
    return {"tmp": tmp, "file": f, "run": r, "env": _env(tmp), "uri": f"sqlite:///{tmp / 'home' / 'mlflow.db'}"}


def test_a_log_file_gets_progress_lines_with_an_eta_and_no_token_notice(logged):
    r = logged["run"]
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("[final]")]
    assert len(lines) >= 4, r.stdout[-3000:]          # start, end, and the periodic lines in between
    assert lines[0].startswith("[final] 0 finished") and lines[-1].startswith("[final] 6 finished, 0 running")
    assert any(re.search(r"\d+ running.*; \d+m\d\ds elapsed, ETA \d+m\d\ds$", ln) for ln in lines[1:-1]), lines
    assert TOKEN_NOTICE not in out(r), "the embedded local Ray's token notice is not the user's business"


def test_progress_interval_defaults_and_a_bad_value(tmp_path, monkeypatch):
    from sweeps.errors import SettingError
    from sweeps.runner.progress import LOG_EVERY_S, TTY_EVERY_S, interval_s

    monkeypatch.delenv("ABLATE_PROGRESS_S", raising=False)
    assert (interval_s(tty=True), interval_s(tty=False)) == (TTY_EVERY_S, LOG_EVERY_S) == (10.0, 60.0)
    monkeypatch.setenv("ABLATE_PROGRESS_S", "2.5")
    assert interval_s(tty=True) == interval_s(tty=False) == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        monkeypatch.setenv("ABLATE_PROGRESS_S", bad)
        with pytest.raises(SettingError, match=f"ABLATE_PROGRESS_S='{bad}' is not allowed"):
            interval_s(tty=False)


def test_a_bad_progress_interval_stops_the_run_before_anything_starts(tmp_path):
    f = write_yaml(tmp_path / "p.yaml", toy_sweep("badprog", tmp_path))
    r = ablate(["run", f], tmp_path, env=_env(tmp_path, ABLATE_PROGRESS_S="soon"))
    assert r.returncode == 2 and "Traceback" not in out(r), out(r)
    assert r.stderr.strip().splitlines() == ["ablate: error: ABLATE_PROGRESS_S='soon' is not allowed: seconds between "
                                             "progress lines, a number > 0 (unset: 10 on a terminal, 60 in a log "
                                             "file)"], r.stderr
    assert not (tmp_path / "home").exists(), "no store, no Ray, no run before the error"


def test_the_token_notice_is_dropped_only_around_the_local_instance():
    import logging

    from sweeps.runner.cluster import TOKEN_NOTICE_LOGGER, _quiet_local_token_notice

    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    log = logging.getLogger(TOKEN_NOTICE_LOGGER)
    log.addHandler(Keep())
    try:
        with _quiet_local_token_notice():
            log.warning("Token authentication is enabled for this Ray cluster. Set RAY_AUTH_MODE=disabled to opt out.")
            log.warning("Token authentication is enabled but no token was found.")
        log.warning("Token authentication is enabled for this Ray cluster. (a cluster's)")
    finally:
        log.handlers = [h for h in log.handlers if not isinstance(h, Keep)]
    assert seen == ["Token authentication is enabled but no token was found.",
                    "Token authentication is enabled for this Ray cluster. (a cluster's)"]


def test_a_trial_that_leaves_out_the_baseline_cell_does_not_warn_about_a_table(tmp_path):
    f = write_yaml(tmp_path / "t.yaml", toy_sweep("trialwarn", tmp_path))
    r = ablate(["trial", f, "--set", "model.kind=fancy", "--set", "model.width=2"], tmp_path, env=_env(tmp_path))
    assert r.returncode == 0, out(r)[-3000:]
    assert "ablate: warning" not in r.stderr and "baseline" not in r.stderr, r.stderr
    assert '"score"' in r.stdout
    # the sweep itself still warns: its table loses the Δ column
    r = ablate(["run", f, "--dry-run", "--set", "model.kind=fancy"], tmp_path, env=_env(tmp_path))
    assert r.returncode == 0 and "leaves out the baseline cell" in r.stderr, out(r)


@pytest.fixture(scope="module")
def failed(tmp_path_factory):
    """A launch whose every trial raises at its first epoch (the toy's fault.kind error), with --plot."""
    tmp = tmp_path_factory.mktemp("fail")
    sweep = toy_sweep("allfail", tmp, seeds=(0,), **{"fault.kind": "error", "fault.epoch": 1})
    sweep["max_failures"] = 0
    f = write_yaml(tmp / "allfail.yaml", sweep)
    r = ablate(["run", f, "--plot", tmp / "run.png"], tmp, env=_env(tmp), timeout=900)
    return {"tmp": tmp, "run": r, "env": _env(tmp), "uri": f"sqlite:///{tmp / 'home' / 'mlflow.db'}"}


def test_every_trial_failed_one_line_says_there_is_nothing_to_plot(failed):
    r, tmp = failed["run"], failed["tmp"]
    text = out(r)
    assert r.returncode == 1, text[-4000:]                      # trials failed; not an internal error
    assert "Could not interpret" not in text and "Traceback" not in text and "internal error" not in text
    said = [ln for ln in text.splitlines() if "nothing to plot" in ln]
    assert said == [f"plot: {tmp / 'run.png'} not written, nothing to plot: none of the 3 trials finished "
                    f"(3 failed), so no score was recorded"], said
    assert not (tmp / "run.png").exists()
    assert "allfail: 3 final trials, 0 finished, 3 failed" in r.stdout and "report: " in r.stdout
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("| plain"))     # the table of failures
    assert "| 0 " in row and "| 1 " in row, row                                   # n = 0, failed = 1
    assert TOKEN_NOTICE not in text
    p = ablate(["plot", "allfail", "-o", tmp / "p.png"], tmp, env=failed["env"])
    assert p.returncode == 1 and not (tmp / "p.png").exists(), out(p)
    assert p.stderr.strip().splitlines() == ["ablate: error: allfail: nothing to plot: none of the 3 trials "
                                             "finished (3 failed), so no score was recorded; `ablate table` and "
                                             "`ablate report` list the runs and why they failed"], out(p)
    t = ablate(["table", "allfail", "--format", "csv"], tmp, env=failed["env"])
    rows = list(csv.DictReader(io.StringIO(t.stdout)))
    assert t.returncode == 0 and [row["failed"] for row in rows] == ["1", "1", "1"], out(t)


def test_failure_reasons_are_stored_and_shown_without_colour_codes(failed):
    from mlflow.tracking import MlflowClient

    c = MlflowClient(failed["uri"])
    runs = c.search_runs([c.get_experiment_by_name("allfail").experiment_id], "tags.`ablate.phase` = 'final'")
    reasons = [x.data.tags["ablate.failure_reason"] for x in runs]
    assert len(reasons) == 3 and all("RuntimeError: injected error at epoch 1" in x for x in reasons), reasons
    assert all("\x1b" not in x for x in reasons), [x[:200] for x in reasons]
    assert any("ray::ImplicitFunc.train()" in x for x in reasons), "Ray's error file, without its colours"
    html = failed["tmp"] / "r.html"
    r = ablate(["report", "allfail", "-o", html], failed["tmp"], env=failed["env"])
    assert r.returncode == 0, out(r)
    page = html.read_text()
    assert "\x1b" not in page and "[36m" not in page and "RuntimeError: injected error at epoch 1" in page
    assert "nothing to plot: none of the 3 trials finished (3 failed)" in page
    assert page.count('<table class="data failures">') == 1


def test_a_local_store_is_read_without_mlflow_and_gives_the_same_table(logged):
    tmp, env = logged["tmp"], logged["env"]
    fast = ablate(["table", "logged", "--format", "csv"], tmp, env=env)
    slow = ablate(["table", "logged", "--format", "csv"], tmp, env={**env, "ABLATE_STORE_READER": "mlflow"})
    assert fast.returncode == slow.returncode == 0, out(fast) + out(slow)
    assert fast.stdout == slow.stdout and len([ln for ln in fast.stdout.splitlines() if ln]) == 4
    probe = ("import sys; sys.argv = ['ablate', 'table', 'logged']; from sweeps.cli.main import main\n"
             "rc = main()\nimport json; print(json.dumps([rc, sorted(m for m in sys.modules if m.split('.')[0] in "
             "('mlflow', 'statsmodels', 'sqlalchemy', 'alembic', 'seaborn', 'matplotlib', 'torch', 'ray'))]))")
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)
    rc, mods = json.loads(r.stdout.strip().splitlines()[-1])
    assert rc == 0, out(r)
    assert not [m for m in mods if m.split(".")[0] in ("mlflow", "sqlalchemy", "alembic", "seaborn", "matplotlib",
                                                       "torch", "ray")], mods
    assert "statsmodels.formula.api" not in mods, "no ANOVA for a grid with a conditional axis: no formula API"
    r = ablate(["table", "logged"], tmp, env={**env, "ABLATE_STORE_READER": "sometimes"})
    assert r.returncode == 2 and "ABLATE_STORE_READER='sometimes' is not allowed: one of auto, mlflow" in r.stderr


class _Ui:
    """``ablate ui`` as a user starts it in a terminal: its own process group, lines read as they come."""

    def __init__(self, tmp: Path, env: dict, port: int):
        self.p = subprocess.Popen([*ABLATE, "ui", "--port", str(port)], cwd=tmp, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines = []

    def next_line(self, timeout: float) -> str:
        import select

        deadline = time.time() + timeout
        while time.time() < deadline:
            if select.select([self.p.stderr], [], [], 0.5)[0]:
                line = self.p.stderr.readline()
                if line:
                    self.lines.append(line.rstrip("\n"))
                    return self.lines[-1]
                return ""                                   # EOF: the process ended
        raise AssertionError(f"no line from ablate ui in {timeout} s: {self.lines}")

    def stop(self, sig=signal.SIGINT) -> int:
        if self.p.poll() is None:
            os.kill(self.p.pid, sig)                        # Ctrl-C reaches ablate (the server has its own session)
        try:
            return self.p.wait(timeout=60)
        finally:
            if self.p.poll() is None:
                os.killpg(self.p.pid, signal.SIGKILL)


def _listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def test_ui_prints_its_url_only_when_it_answers_and_ctrl_c_stops_it(logged):
    port = free_port()
    ui = _Ui(logged["tmp"], logged["env"], port)
    try:
        first = ui.next_line(120)
        assert first.startswith(f"starting the MLflow UI on http://127.0.0.1:{port}") and first.endswith("…"), first
        ready = ui.next_line(240)
        assert ready.startswith(f"MLflow UI on http://127.0.0.1:{port} ") and "Ctrl-C stops it" in ready, ui.lines
        # the moment the URL is printed, it answers
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
            assert r.status == 200 and r.read().strip() == b"OK"
        other = [a for a in {i[4][0] for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
                 if not a.startswith("127.")]
        assert not any(_listening(port, a) for a in other), f"the UI must listen on 127.0.0.1 only ({other})"
        log = Path(ready.split("server log ")[1].split(")")[0])
        assert log.exists()
    finally:
        code = ui.stop(signal.SIGINT)
    assert code == 130, ui.lines + [ui.p.stderr.read()]
    deadline = time.time() + 20
    while _listening(port) and time.time() < deadline:
        time.sleep(0.5)
    assert not _listening(port), "Ctrl-C must stop the server too"
    assert not log.exists(), "a stopped UI leaves no log behind"


def test_ui_that_never_answers_exits_3_with_its_log(logged):
    port = free_port()
    ui = _Ui(logged["tmp"], {**logged["env"], "ABLATE_UI_TIMEOUT_S": "1"}, port)
    try:
        code = ui.p.wait(timeout=120)
    finally:
        if ui.p.poll() is None:             # before the fix it serves on: stop it with the test
            os.killpg(ui.p.pid, signal.SIGKILL)
    err = ui.p.stderr.read()
    assert code == 3, err
    lines = err.splitlines()
    assert lines[0].startswith(f"starting the MLflow UI on http://127.0.0.1:{port}")
    assert lines[1].startswith(f"ablate: error: the MLflow UI did not answer on http://127.0.0.1:{port} within 1 s "
                               f"(ABLATE_UI_TIMEOUT_S); the last lines of its log ")
    assert all(ln.startswith("  | ") for ln in lines[2:]) and lines[2:], err
    time.sleep(2)
    assert not _listening(port), "the server that never answered is stopped"
    r = ablate(["ui", "--port", str(free_port())], logged["tmp"], env={**logged["env"], "ABLATE_UI_TIMEOUT_S": "soon"})
    assert r.returncode == 2 and "ABLATE_UI_TIMEOUT_S='soon' is not allowed" in r.stderr, out(r)
