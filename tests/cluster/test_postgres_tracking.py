"""Tracking on a real database: a PostgreSQL server started here (initdb + pg_ctl as the postgres
user, password authentication) behind the head's MLflow server as docs/cluster/tracking-server.sh
starts it (the database URI in ~/.ablate/mlflow.env, artifacts served through the server; no
systemd here, so the script's background start).

- Two launches by two drivers at once against that one server: nothing lost, nothing duplicated.
- `ablate table` and `ablate report` read the same numbers from it as from a sqlite store.
- The tracker's direct SQL writes on PostgreSQL (a postgresql:// tracking URI) give the runs MLflow's
  client gives (the check that puts PostgreSQL in sweeps.runner.tracker.TESTED_DIALECTS).
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.cluster import hosts
from tests.helpers import ROOT, ABLATE, ablate, cli_env, free_port, out, toy_sweep, write_yaml

why_not = hosts.need_root() or hosts.missing("initdb")
pytestmark = pytest.mark.skipif(why_not is not None, reason=str(why_not))
SERVER = ROOT / "docs" / "cluster" / "tracking-server.sh"


@pytest.fixture(scope="module")
def tracking():
    """(PostgreSQL server, URI of the MLflow server on it, that server's database URI)."""
    tmp = Path(tempfile.mkdtemp(prefix="pgt", dir="/tmp"))
    tmp.chmod(0o755)
    home = tmp / "head"                     # the head's home: the venv, ~/.ablate/mlflow.env, ~/ablate-store
    (home / ".ablate").mkdir(parents=True)
    (home / "ablate-venv").symlink_to(ROOT / ".venv")
    with hosts.postgres(tmp) as pg:
        db = pg.create_database("mlflow_head")
        (home / ".ablate" / "mlflow.env").write_text(f"MLFLOW_BACKEND_STORE_URI={db}\n")
        port = free_port()
        env = {"HOME": str(home), "USER": "root", "PATH": os.environ["PATH"], "ABLATE_MLFLOW_PORT": str(port)}
        t0 = time.time()
        r = subprocess.run(["bash", str(SERVER), "start"], env=env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, out(r)[-3000:] + (home / "ablate-store" / "mlflow.log").read_text()[-3000:]
        print(f"\nMLflow server on an empty PostgreSQL database answering after {time.time() - t0:.0f} s")
        assert "no systemd here" in r.stdout
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert db.split("@")[0].split(":")[-1] not in ps, "the database password shows in ps"
        try:
            yield pg, f"http://127.0.0.1:{port}", db
        finally:
            subprocess.run(["bash", str(SERVER), "stop"], env=env, timeout=60)


def _launch(tmp: Path, sweep: dict, uri: str, log: Path) -> subprocess.Popen:
    f = write_yaml(tmp / f"{sweep['name']}.yaml", sweep)
    return subprocess.Popen([*ABLATE, "run", str(f), "--tracking-uri", uri, "--no-table"], cwd=tmp, env=cli_env(tmp),
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)


def _sweep(tmp: Path, sleep: float = 0.0) -> dict:
    s = toy_sweep("pgtoy", tmp, seeds=(0, 1, 2), **{"eval.noise": 0.05, "train.epochs": 3, "train.sleep": sleep})
    s["fixed"].pop("fault.dir")
    return s


def test_two_drivers_at_once_on_one_server_lose_nothing_and_read_the_same_numbers_as_sqlite(tracking, tmp_path):
    """Two drivers launch the same sweep on one PostgreSQL server at once, a third on sqlite beside them;
    then `ablate table` and `report` of a PostgreSQL launch and of the sqlite one give the same numbers."""
    pg, uri, db = tracking
    stores = {"a": uri, "b": uri, "sq": f"sqlite:///{tmp_path / 'sq' / 'mlflow.db'}"}
    drivers = {}
    for name, store in stores.items():
        d = tmp_path / name
        d.mkdir()
        drivers[name] = _launch(d, _sweep(d, sleep=0.3), store, d / "driver.log")
    for name, p in drivers.items():
        log = (tmp_path / name / "driver.log").read_text
        assert p.wait(timeout=280) == 0, log()[-3000:]
        assert "9 final trials, 9 finished, 0 failed" in log()
    from mlflow.tracking import MlflowClient

    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("pgtoy")
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    final = [r for r in runs if r.data.tags.get("ablate.phase") == "final"]
    launches = {r.data.tags["ablate.launch"] for r in final}
    assert len(launches) == 2, "the two drivers' launches are apart"
    for launch in launches:
        mine = [r for r in final if r.data.tags["ablate.launch"] == launch]
        keys = [r.data.tags["ablate.trial_key"] for r in mine]
        assert len(mine) == 9 and len(set(keys)) == 9, f"launch {launch}: lost or duplicated runs"
        assert {r.info.status for r in mine} == {"FINISHED"}
        for r in mine:
            assert [m.step for m in c.get_metric_history(r.info.run_id, "score")] == [1, 2, 3]
    # what the database holds, read past MLflow: 2 x (9 trials + the launch's parent run), each metric step once
    assert int(pg.sql("SELECT count(*) FROM runs", db=_name(db))) == len(runs) == 20
    dup = pg.sql("SELECT count(*) FROM (SELECT run_uuid, key, step FROM metrics GROUP BY run_uuid, key, step, "
                 "timestamp, value HAVING count(*) > 1) d", db=_name(db))
    assert dup == "0"
    numbers = {}
    for name in ("a", "sq"):
        d, store = tmp_path / name, stores[name]
        launch = re.search(r"\(launch (\S+);", (d / "driver.log").read_text()).group(1)
        t = ablate(["table", "pgtoy", "--tracking-uri", store, "--format", "csv", "--launch", launch], d)
        assert t.returncode == 0, out(t)[-3000:]
        h = ablate(["report", "pgtoy", "--tracking-uri", store, "--launch", launch, "-o", d / "r.html"], d)
        assert h.returncode == 0, out(h)[-3000:]
        numbers[name] = (_csv_without_timing(t.stdout), _report_numbers((d / "r.html").read_text()))
    assert numbers["a"][0] == numbers["sq"][0]
    assert numbers["a"][1] == numbers["sq"][1]
    assert len(numbers["a"][0]) == 4 and len(numbers["a"][1]) > 60      # header + 3 cells; every value


def test_direct_sql_writes_on_postgresql_are_what_the_client_writes(tracking):
    """tests/sweeps/test_callback.py's check, on PostgreSQL: the same trial events through the
    tracker's SQL writer and through MLflow's client give identical runs, one commit per event."""
    from mlflow.tracking import MlflowClient

    from sweeps.runner.tracker import MLflowTracker, _ClientWriter, _SqlWriter
    from tests.sweeps.test_callback import assert_sql_path_writes_what_the_client_writes

    pg, _, _ = tracking
    uri = pg.create_database("mlflow_direct")
    c = MlflowClient(uri)
    exp = c.create_experiment("pgtx")
    base = {"ablate.sweep": "pgtx", "mlflow.user": "someone"}
    direct, via_client = MLflowTracker(uri, exp, {**base, "ablate.launch": "L1"}), \
        MLflowTracker(uri, exp, {**base, "ablate.launch": "L2"})
    via_client._w = _ClientWriter(via_client.c)
    assert type(direct.w) is _SqlWriter, "PostgreSQL at MLflow's tested revision takes the direct path"
    assert_sql_path_writes_what_the_client_writes(direct, via_client, c, exp)


def _name(db_uri: str) -> str:
    return db_uri.rsplit("/", 1)[1]


# The table's statistics: what the store must give back identically. The cost columns beside them are
# measured on the machine (seconds, memory, their ratios; some trials are profiled, some not) and
# differ from run to run whatever the store.
STATS = ("n", "failed", "running", "params", "mean", "std", "delta", "ci_low", "ci_high", "p_value", "p_adj",
         "hedges_g", "mde", "seeds_needed", "verdict", "ci_level", "ci_low_unadj", "ci_high_unadj", "p_eq_adj",
         "seeds_basis", "seeds_low", "seeds_high", "best", "baseline")


def _csv_without_timing(text: str) -> list:
    """The table's CSV rows: the cell's axes and its statistics (STATS), in the table's order."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text.strip())))
    keep = [i for i, col in enumerate(rows[0]) if col.startswith("model.") or col in STATS]
    assert {rows[0][i] for i in keep} >= set(STATS), rows[0]
    return [[row[i] for i in keep] for row in rows]


def _report_numbers(html: str) -> list:
    """The values of the report's tables: the cells' axes and statistics (data-value attributes) and
    the runs table's cell, seed, status and metric (its wall seconds and run links aside)."""
    values = [(c, v) for c, v in re.findall(r'<td data-col="([^"]+)" data-value="([^"]*)"', html)
              if c.startswith("model.") or c in STATS]
    runs = re.search(r'<table class="data sortable runs">(.*?)</table>', html, re.S).group(1)
    for row in re.findall(r"<tr><td>(.*?)</tr>", runs, re.S):
        cells = re.findall(r"<td[^>]*?(?: title=\"([^\"]*)\")?>(.*?)</td>", "<td>" + row)
        values.append(tuple(v or text for v, text in cells[:4]))
    return sorted(values)
