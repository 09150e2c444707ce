"""Real services for the cluster tests, started on this machine and stopped by process id:
an unprivileged account reached over SSH (the "remote machine" of `ray up`), an sshd of the
test's own, a PostgreSQL server, and a lock on Ray's fixed port 6379.

Why another account: `ray down` runs `ray stop` on every node, and `ray stop` stops every Ray
process its user may signal. As the unprivileged ``raytest`` it stops only that account's
processes (measured: root's Ray kept running, `ray stop` logged "Could not terminate ...").
"""
from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, Optional

from tests.helpers import ROOT, free_port

USER = "raytest"
PY = f"python{sys.version_info.major}.{sys.version_info.minor}"   # this checkout's venv


def need_root() -> Optional[str]:
    """None when this process may create accounts and start servers, else why not."""
    if os.geteuid() != 0:
        return "needs root: creates the account 'raytest', starts sshd and PostgreSQL as their users"
    return None


def missing(*tools: str) -> Optional[str]:
    """None when every tool exists, else the skip message naming the Debian package (.ci/run installs it)."""
    packages = {"sshd": "openssh-server", "initdb": "postgresql", "rsync": "rsync", "ssh": "openssh-client"}
    gone = [t for t in tools if _find(t) is None]
    if not gone:
        return None
    return (f"{', '.join(gone)} not installed: apt-get install -y "
            f"{' '.join(sorted({packages.get(t, t) for t in gone}))} (.ci/run does)")


def _find(tool: str) -> Optional[str]:
    hit = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin")
    if hit:
        return hit
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    return found[-1] if found else None


# --- an account on "another machine" -------------------------------------------------------------

def ensure_account(name: str = USER) -> pwd.struct_passwd:
    """The unprivileged account, created when absent ('*' as password: no password login, not locked)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--password", "*", name], check=True)
        return pwd.getpwnam(name)


def as_user(cmd: str, user: str = USER, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    """A login shell of ``user`` running ``cmd``."""
    r = subprocess.run(["su", "-", user, "-c", cmd], capture_output=True, text=True, timeout=timeout,
                       stdin=subprocess.DEVNULL)
    if check and r.returncode != 0:
        raise RuntimeError(f"as {user}: {cmd}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return r


def reset_home(user: str = USER) -> Path:
    """An empty home for ``user`` (Debian's skeleton), as on a freshly installed machine."""
    pw = ensure_account(user)
    home = Path(pw.pw_dir)
    stray = as_user("pgrep -u $(id -u) -x raylet || true", user, check=False).stdout.split()
    if stray:
        raise RuntimeError(f"{user} still runs raylet {stray}: an earlier run did not stop its cluster")
    cache = home / ".cache" / "pip"            # kept: pip's downloads (ray[default]'s extras) between runs
    keep = home.parent / f".{user}-pip-cache"
    if cache.exists():
        shutil.rmtree(keep, ignore_errors=True)
        cache.rename(keep)
    if home.exists():
        shutil.rmtree(home)
    shutil.copytree("/etc/skel", home, symlinks=True)
    if keep.exists():
        (home / ".cache").mkdir()
        keep.rename(cache)
    shutil.chown(home, pw.pw_uid, pw.pw_gid)
    for p in home.rglob("*"):
        os.lchown(p, pw.pw_uid, pw.pw_gid)
    return home


@contextlib.contextmanager
def traversable(path: Path) -> Iterator[None]:
    """Lets other accounts pass through the directories above ``path`` (adds o+x, no read) for the block, and puts
    their modes back after.  A checkout in ``mktemp -d`` (mode 700) is otherwise closed to the SSH "node"'s
    account, which reads this checkout's packages through seed_venv's .pth file."""
    import stat

    changed = []
    for d in reversed(Path(path).resolve().parents):
        mode = d.stat().st_mode
        if not mode & stat.S_IXOTH:
            d.chmod(mode | stat.S_IXOTH)
            changed.append((d, stat.S_IMODE(mode)))
    try:
        yield
    finally:
        for d, mode in reversed(changed):
            d.chmod(mode)


def seed_venv(home: Path, user: str = USER) -> None:
    """~/ablate-venv for ``user`` that already holds this checkout's packages (torch, ray, mlflow...).

    The stand-in for a download: on a real node setup_commands fetch torch's CUDA build (~3 GB) from
    PyPI. Here the venv reads this checkout's site-packages through a .pth file, so the same
    `pip install` lines find every requirement satisfied; `ray` and `mlflow`, whose scripts pip does
    not write for a requirement it finds installed, get this venv's python as their interpreter.
    A Debian python3 (the system's, as on a lab machine) makes the venv: the checkout's own
    interpreter may live where the account cannot read."""
    site = ROOT / ".venv" / "lib" / PY / "site-packages"
    system = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                            text=True).stdout.strip()
    if system != str(sys.version_info[:2]):
        raise RuntimeError(f"Debian's python3 is {system}, this checkout's venv {sys.version_info[:2]}: the seeded "
                           f"venv cannot load its compiled packages")
    as_user(f"/usr/bin/python3 -m venv ~/ablate-venv && echo {site} > ~/ablate-venv/lib/{PY}/site-packages/_seed.pth",
            user)
    r = as_user(f"~/ablate-venv/bin/python -c 'import torch, ray, mlflow'", user, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"{user} cannot import this checkout's packages from {site}: {r.stderr[-1500:]}")
    pw = pwd.getpwnam(user)
    for name in ("ray", "mlflow"):
        src = (ROOT / ".venv" / "bin" / name).read_text().splitlines()[1:]
        dst = home / "ablate-venv" / "bin" / name
        dst.write_text("\n".join([f"#!{home}/ablate-venv/bin/python", *src]) + "\n")
        dst.chmod(0o755)
        os.chown(dst, pw.pw_uid, pw.pw_gid)


# --- sshd --------------------------------------------------------------------------------------

@contextlib.contextmanager
def ssh_server(tmp: Path, user: str = USER) -> Iterator[Path]:
    """An sshd of this test on 127.0.0.1:22 (where `ray up` connects: Ray's SSH has no port option)
    that admits only ``user`` with a key made here; yields the private key. An sshd already
    listening on port 22 (the system's) is used as it is."""
    key = tmp / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ablate-test", "-f", str(key)],
                   check=True)
    pw = pwd.getpwnam(user)
    ssh_dir = Path(pw.pw_dir) / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    auth = ssh_dir / "authorized_keys"
    auth.write_text(Path(f"{key}.pub").read_text())
    auth.chmod(0o600)
    for p in (ssh_dir, auth):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    proc = None
    if not _listening(22):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / "host_key")], check=True)
        conf = tmp / "sshd_config"
        conf.write_text("\n".join([
            "Port 22", "ListenAddress 127.0.0.1", f"HostKey {tmp / 'host_key'}", f"PidFile {tmp / 'sshd.pid'}",
            f"AllowUsers {user}", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "AuthorizedKeysFile .ssh/authorized_keys", "UsePAM no",
            "MaxStartups 100", "MaxSessions 100", "Subsystem sftp internal-sftp", ""]))
        os.makedirs("/run/sshd", exist_ok=True)      # privilege separation directory
        proc = subprocess.Popen([_find("sshd"), "-D", "-e", "-f", str(conf)], stdout=open(tmp / "sshd.log", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        _wait_port(22, proc, tmp / "sshd.log")
    try:
        yield key
    finally:
        if proc is not None:
            end_group(proc)


def ssh(key: Path, cmd: str, user: str = USER, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", f"{user}@127.0.0.1", cmd],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


# --- PostgreSQL ----------------------------------------------------------------------------------

@contextlib.contextmanager
def postgres(tmp: Path) -> Iterator["Postgres"]:
    """A PostgreSQL server of this test: initdb + pg_ctl as the ``postgres`` user (the server refuses
    root) in a directory of its own, on a free 127.0.0.1 port, password (SCRAM) authentication over
    TCP. Stopped with `pg_ctl stop` at the end."""
    ensure = pwd.getpwnam("postgres")
    base = tmp / "pg"
    base.mkdir(mode=0o700)
    os.chown(base, ensure.pw_uid, ensure.pw_gid)
    pw_file = base / "superuser.pw"
    superpw = secrets.token_hex(16)
    pw_file.write_text(superpw + "\n")
    os.chown(pw_file, ensure.pw_uid, ensure.pw_gid)
    port = free_port()
    initdb, pg_ctl = _find("initdb"), _find("pg_ctl")
    data = base / "data"
    _as_postgres(f"{initdb} -D {data} -U postgres --pwfile={pw_file} --auth=scram-sha-256 -E UTF8 --no-sync "
                 f"> {base}/initdb.log 2>&1")
    pw_file.unlink()
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    _as_postgres(f"{pg_ctl} -D {data} -l {base}/server.log -o '{opts}' -w -t 60 start > /dev/null")
    try:
        yield Postgres(port=port, superuser_password=superpw, socket_dir=base)
    finally:
        _as_postgres(f"{pg_ctl} -D {data} -m immediate -w stop > /dev/null 2>&1 || true")


class Postgres:
    """A running server: ``create_database`` makes a role + database and returns its SQLAlchemy URI."""

    def __init__(self, port: int, superuser_password: str, socket_dir: Path):
        self.port, self._super, self.socket_dir = port, superuser_password, socket_dir

    def sql(self, statement: str, db: str = "postgres") -> str:
        env = {**os.environ, "PGPASSWORD": self._super}
        r = subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db, "-tA",
                            "-v", "ON_ERROR_STOP=1", "-c", statement], capture_output=True, text=True, env=env,
                           timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql: {statement}: {r.stderr}")
        return r.stdout.strip()

    def create_database(self, name: str) -> str:
        password = secrets.token_hex(16)          # made here, never written to the repository
        self.sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
        self.sql(f"CREATE DATABASE {name} OWNER {name}")
        return f"postgresql://{name}:{password}@127.0.0.1:{self.port}/{name}"


def _as_postgres(cmd: str) -> None:
    r = subprocess.run(["su", "postgres", "-s", "/bin/sh", "-c", cmd], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"as postgres: {cmd}: {r.stdout}{r.stderr}")


# --- Ray's port 6379 -----------------------------------------------------------------------------

@contextlib.contextmanager
def port_6379(timeout: float = 1200) -> Iterator[None]:
    """Hold Ray's default GCS port for one test: `ray up`'s head and the fake_multinode nodes use 6379
    whatever is configured (the fake provider hard-codes it), so two such tests must not overlap
    (pytest-xdist runs tests side by side)."""
    with open("/tmp/ablate-ray-6379.lock", "w") as f:
        deadline = time.time() + timeout
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise TimeoutError("port 6379 stayed locked by another cluster test")
                time.sleep(1)
        try:
            if _listening(6379):
                raise RuntimeError("port 6379 is taken by a process outside these tests")
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# --- process helpers -----------------------------------------------------------------------------

def _listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _listening(port):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s: {log.read_text()[-2000:]}")


def end_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group of ``proc`` (started with start_new_session), SIGKILL it after ``grace`` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def user_processes(user: str = USER) -> Dict[int, str]:
    """pid -> command line of ``user``'s processes (what a test started as that account)."""
    r = subprocess.run(["ps", "-u", user, "-o", "pid=,args="], capture_output=True, text=True)
    out = {}
    for line in r.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if pid.isdigit():
            out[int(pid)] = args
    return out
