"""`ray up` for real: docs/cluster/onprem.yaml run against this machine over SSH, exactly as the
README's "Running on a GPU cluster" says (on-premises column):

    ray up -y my-cluster.yaml
    ray exec my-cluster.yaml 'cd ~/ablate && ablate run sweeps/quick.yaml --smoke --address auto'
    ray exec my-cluster.yaml 'cd ~/ablate && ablate table quick'
    ray exec my-cluster.yaml 'bash ~/ablate/docs/cluster/tracking-server.sh dump'
    ray rsync-down my-cluster.yaml '~/ablate-store/' ./cluster-store
    ray down -y my-cluster.yaml

my-cluster.yaml is the committed file with its four EDIT lines filled in (head_ip 127.0.0.1, no
workers, ssh_user raytest, the key this test makes). Everything else runs as committed: the file
sync (this checkout with its .git), setup_commands (venv, pip, the GPU check, ~/.bashrc), the head's
tracking server (docs/cluster/tracking-server.sh) on a PostgreSQL database, `ray start` with the
autoscaler config, the sweep driven on the head, the table read from the head's server, `ray stop`.

What differs from a lab machine, and why:
- The "machine" is the unprivileged account raytest on 127.0.0.1, reached through an sshd of this
  test. `ray down` runs `ray stop`, which stops every Ray process its user may signal: as raytest
  it cannot touch other users' Ray (checked here with a root Ray head that must survive).
- raytest's ~/ablate-venv is made before `ray up` and reads this checkout's installed packages
  (tests/cluster/hosts.py seed_venv): the setup_commands' pip lines then find torch and ray
  installed instead of downloading torch's 3 GB CUDA build. They still install ray[default]'s
  extras and the project itself (from PyPI; pip's cache is kept between runs).
- raytest's ~/.bashrc sets RAY_TMPDIR to a directory of its own (/tmp/ray may belong to root here).
- The database is a PostgreSQL server of this test with a password, given to the head as a managed
  database is: ~/.ablate/mlflow.env (mode 600, outside the repository). There is no systemd here,
  so the server runs in the background (the script says so); the systemd unit it installs on AWS
  and lab machines is checked in tests/test_cluster_yaml.py.
- No worker machines: the head runs the trials (a lab's head does too).
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster import hosts
from tests.helpers import ROOT, free_port, kill_matching, out

RAY = str(ROOT / ".venv" / "bin" / "ray")
why_not = hosts.need_root() or hosts.missing("sshd", "ssh", "rsync", "initdb")
pytestmark = pytest.mark.skipif(why_not is not None, reason=str(why_not))


def _configure(tmp: Path, key: Path) -> Path:
    """The README's step "copy docs/cluster/onprem.yaml and fill in its EDIT lines"."""
    cfg = yaml.safe_load((ROOT / "docs/cluster/onprem.yaml").read_text())
    cfg["cluster_name"] = f"ablate-test-{os.getpid()}"
    cfg["provider"].update(head_ip="127.0.0.1", worker_ips=[])
    cfg["auth"].update(ssh_user=hosts.USER, ssh_private_key=str(key))
    path = tmp / "my-cluster.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def _start_root_ray(tmp: Path) -> subprocess.Popen:
    """A Ray head of root on this machine (another user's Ray), which `ray down` must leave alone;
    started alongside `ray up` (``_root_ray_pids`` waits for it)."""
    env = {**os.environ, "RAY_TMPDIR": str(tmp / "canary"), "RAY_AUTH_MODE": "disabled"}
    (tmp / "canary").mkdir()
    return subprocess.Popen([RAY, "start", "--head", f"--port={free_port()}", "--num-cpus=0",
                             "--include-dashboard=false", "--disable-usage-stats"], env=env,
                            stdout=open(tmp / "canary.log", "w"), stderr=subprocess.STDOUT)


def _root_ray_pids(tmp: Path, starter: subprocess.Popen) -> dict:
    assert starter.wait(timeout=180) == 0, (tmp / "canary.log").read_text()[-2000:]
    pids = subprocess.run(["pgrep", "-f", str(tmp / "canary")], capture_output=True, text=True).stdout.split()
    found = {int(p): Path(f"/proc/{p}/cmdline").read_bytes() for p in pids if Path(f"/proc/{p}").exists()}
    assert any(b"gcs_server" in cmd for cmd in found.values()), found
    return found


@pytest.fixture
def port_6379():
    """Ray's port 6379 for this test alone (fake_multinode tests use it too); waiting for it is set-up
    time, not the test's.  The checkout is open to the node's account for the test (hosts.traversable)."""
    with hosts.port_6379(), hosts.traversable(ROOT / ".venv"):
        yield


def test_ray_up_exec_table_down_on_localhost(port_6379):
    tmp = Path(tempfile.mkdtemp(prefix="up", dir="/tmp"))      # short: Ray's socket paths stay < 107 chars
    tmp.chmod(0o755)
    took = {}
    env = {**os.environ, "RAY_TMPDIR": str(tmp / "laptop"), "TMPDIR": str(tmp / "laptop"),
           "RAY_USAGE_STATS_ENABLED": "0"}
    (tmp / "laptop").mkdir()

    def step(name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        t0 = time.time()
        r = subprocess.run([RAY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                           stdin=subprocess.DEVNULL)
        took[name] = round(time.time() - t0, 1)
        (tmp / f"{name}.log").write_text(out(r))
        return r

    home = hosts.reset_home()
    hosts.seed_venv(home)
    hosts.as_user(f"mkdir -p /tmp/{hosts.USER}-ray && echo 'export RAY_TMPDIR=/tmp/{hosts.USER}-ray' >> ~/.bashrc")
    with hosts.ssh_server(tmp) as key, hosts.postgres(tmp) as pg:
        uri = pg.create_database("mlflow_up")
        hosts.as_user(f"mkdir -p ~/.ablate && (umask 077 && echo 'MLFLOW_BACKEND_STORE_URI={uri}' "
                      f"> ~/.ablate/mlflow.env)")
        conf = _configure(tmp, key)
        starter = _start_root_ray(tmp)
        down = None
        try:
            r = step("up", "up", "-y", str(conf), timeout=420)
            assert r.returncode == 0, out(r)[-5000:]
            assert "tracking-server: answering on http://127.0.0.1:5000" in r.stdout + r.stderr
            r = step("run", "exec", str(conf), "cd ~/ablate && ablate run sweeps/quick.yaml --smoke --address auto")
            assert r.returncode == 0, out(r)[-5000:]
            assert "quick: 3 final trials, 3 finished, 0 failed" in r.stdout, out(r)[-3000:]
            assert "MLflow http://127.0.0.1:5000" in r.stdout
            r = step("table", "exec", str(conf), "cd ~/ablate && ablate table quick")
            assert r.returncode == 0, out(r)[-3000:]
            rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| ") and "model.linear" not in ln]
            assert sum(("dense" in ln) or ("cdlinear" in ln) for ln in rows) == 3, r.stdout
            _check_store(uri, pg)
            r = step("dump", "exec", str(conf), "bash ~/ablate/docs/cluster/tracking-server.sh dump")
            assert r.returncode == 0 and "tracking-server: wrote" in r.stdout, out(r)[-3000:]
            r = step("rsync_down", "rsync-down", str(conf), "~/ablate-store/", str(tmp / "cluster-store"))
            assert r.returncode == 0, out(r)[-3000:]
            _check_kept(tmp / "cluster-store")
            canary = _root_ray_pids(tmp, starter)
            down = step("down", "down", "-y", str(conf))
            assert down.returncode == 0, out(down)[-3000:]
            assert not [p for p, a in hosts.user_processes().items() if "raylet" in a or "gcs_server" in a], \
                "ray down left the head's Ray running"
            alive = {p for p, cmd in canary.items() if Path(f"/proc/{p}").exists()
                     and Path(f"/proc/{p}/cmdline").read_bytes() == cmd}
            assert alive == set(canary), "ray down stopped another user's Ray"
        finally:
            if down is None:
                step("down", "down", "-y", str(conf))
            hosts.as_user("bash ~/ablate/docs/cluster/tracking-server.sh stop", check=False)
            kill_matching(str(tmp / "canary"))
            _end_account_processes()
    print(f"\nray up on localhost, seconds per step: {took}")


def _check_store(uri: str, pg: hosts.Postgres) -> None:
    """The head's server wrote into PostgreSQL, and every node recorded the commit of its checkout
    (the synced .git): the driver's tag and each trial's node tag name the commit `ray up` copied,
    a commit of this repository."""
    from mlflow.tracking import MlflowClient

    head = hosts.as_user("git -C ~/ablate rev-parse HEAD").stdout.strip()
    assert subprocess.run(["git", "cat-file", "-e", f"{head}^{{commit}}"], cwd=ROOT).returncode == 0
    c = MlflowClient("http://127.0.0.1:5000")
    exp = c.get_experiment_by_name("quick")
    runs = c.search_runs([exp.experiment_id])
    final = [r for r in runs if r.data.tags.get("ablate.phase") == "final"]
    assert len(final) == 3 and all(r.info.status == "FINISHED" for r in final)
    for r in final:
        assert r.data.tags["ablate.git_commit"].startswith(head), r.data.tags["ablate.git_commit"]
        assert r.data.tags["ablate.node_git_commit"].startswith(head), r.data.tags["ablate.node_git_commit"]
    db = uri.rsplit("/", 1)[1]
    assert int(pg.sql("SELECT count(*) FROM runs", db=db)) == len(runs) == 4      # 3 trials + the launch


def _check_kept(store: Path) -> None:
    """What `ray rsync-down` brought back: the database as SQL and the launch's artifacts."""
    import gzip

    (dump,) = store.glob("mlflow-*.sql.gz")
    sql = gzip.decompress(dump.read_bytes()).decode()
    assert "CREATE TABLE public.runs" in sql and "ablate.node_git_commit" in sql
    assert list(store.glob("artifacts/**/report.html")), sorted(str(p) for p in store.rglob("*"))[:20]


def _end_account_processes(timeout: float = 3) -> None:
    """raytest's processes that outlive the test (the session of the SSH master, which Ray keeps
    10 s) are ended by process id: all of them were started by this test."""
    deadline = time.time() + timeout
    while hosts.user_processes() and time.time() < deadline:
        time.sleep(1)
    for pid in hosts.user_processes():
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
