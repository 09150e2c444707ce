"""``ablate ui``: the MLflow UI on the run store, bound to 127.0.0.1.

MLflow 3's server takes from a few to ~30 s to start (each worker imports MLflow's whole GenAI stack), so
the URL is printed only when the server answers ``GET /health``, after a "starting…" line: a URL that is
printed is a URL that opens.  A server that exits, or does not answer within ``$ABLATE_UI_TIMEOUT_S``
(default 120 s), is stopped and the command exits 3 with the last lines of its log.  One uvicorn worker
(MLflow's default is 4): one user's browser needs no more, and it starts several times faster on a laptop.

The server runs in its own session with its output in a log file (named in the ready line), so the terminal
shows only ablate's lines; Ctrl-C (SIGINT) stops it and exits 130, SIGTERM / SIGHUP stop it too, and on
Linux it is also stopped if ablate itself is killed (PR_SET_PDEATHSIG).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

from ..errors import EXIT_ENV, EXIT_INTERRUPTED, SettingError, UsageError

HOST = "127.0.0.1"
DEFAULT_TIMEOUT_S = 120.0
LOG_TAIL = 15           # lines of the server's log shown when it never got ready


def add(sub) -> None:
    u = sub.add_parser("ui", help="open the MLflow UI on the run store (127.0.0.1)")
    u.add_argument("--tracking-uri", help="store to show (default: sqlite store in ./ablate_runs)")
    u.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    u.set_defaults(func=cmd_ui)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def _timeout_s() -> float:
    raw = os.environ.get("ABLATE_UI_TIMEOUT_S", "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise SettingError(f"ABLATE_UI_TIMEOUT_S={raw!r} is not allowed: seconds to wait for the MLflow UI to "
                           f"answer, a number > 0 (default {DEFAULT_TIMEOUT_S:g})")
    return value


def cmd_ui(args) -> int:
    from ..runner import tracking

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not allowed: a port in 1..65535")
    timeout = _timeout_s()
    uri = tracking.resolve_uri(args.tracking_uri, create=False)
    if uri.startswith(("http://", "https://")):
        raise UsageError(f"the store {uri} is a tracking server already: open {uri} in a browser")
    tracking.open_store(uri, create=False)
    if not _port_free(args.port):
        raise UsageError(f"port {args.port} on {HOST} is already in use (another MLflow UI?); "
                         f"stop it or pass --port N")
    url = f"http://{HOST}:{args.port}"
    fd, log_name = tempfile.mkstemp(prefix=f"ablate-ui-{args.port}-", suffix=".log")
    log = Path(log_name)
    print(f"starting the MLflow UI on {url} (store {uri})…", file=sys.stderr, flush=True)
    for sig in _STOP_SIGNALS:
        signal.signal(sig, _raise)
    server = None
    try:
        server = _start(uri, args.port, fd)
        why = _wait_ready(server, url, timeout)
        if why:
            _stop(server)
            return _failed(f"the MLflow UI {why}", log)
        print(f"MLflow UI on {url} (store {uri}; server log {log}); Ctrl-C stops it", file=sys.stderr, flush=True)
        code = server.wait()
        return _failed(f"the MLflow UI on {url} stopped by itself (exit {code})", log)
    except _Signalled as e:
        return _stopped_by(e.signum, server, log)


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _Signalled(Exception):
    """Raised by the signal handler in the main thread, out of whatever it waits on."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise(signum, _frame):
    raise _Signalled(signum)


def _stopped_by(signum: int, server: Optional[subprocess.Popen], log: Path) -> int:
    """Ctrl-C: stop the server, exit 130 (a second Ctrl-C kills it at once); SIGTERM / SIGHUP: 128 + signal."""
    def now(*_):
        if server is not None:
            _kill(server, signal.SIGKILL)
        os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, now)
    for sig in _STOP_SIGNALS[1:]:
        signal.signal(sig, signal.SIG_IGN)
    if server is not None:
        _stop(server)
    log.unlink(missing_ok=True)
    if signum == signal.SIGINT:
        print("\nablate: interrupted; the MLflow UI is stopped", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    return 128 + signum


def _start(uri: str, port: int, log_fd: int) -> subprocess.Popen:
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", HOST,
           "--port", str(port), "--workers", "1"]
    try:
        return subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent())
    finally:
        os.close(log_fd)


def _die_with_parent():
    """A preexec_fn that has the child get SIGTERM when ablate's process ends, however it ends (Linux's
    PR_SET_PDEATHSIG; None elsewhere).  Resolved here, in the parent: the child runs only a C call."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)           # 1 = PR_SET_PDEATHSIG


def _wait_ready(server: subprocess.Popen, url: str, timeout: float) -> Optional[str]:
    """None once ``GET url/health`` answers 200; else why not (the server exited, or the timeout passed).
    A readiness probe of the MLflow server this command just started on this machine (``url`` is HOST,
    127.0.0.1): no data is fetched from anywhere."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        code = server.poll()
        if code is not None:
            return f"exited (code {code}) before it answered"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return None
        except OSError:           # refused while it starts, or a timeout: ask again
            pass
        if time.monotonic() >= deadline:
            return f"did not answer on {url} within {timeout:g} s (ABLATE_UI_TIMEOUT_S)"
        time.sleep(0.25)


def _kill(server: subprocess.Popen, sig: int) -> bool:
    try:
        os.killpg(server.pid, sig)          # the server and its uvicorn worker
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if not _kill(server, sig):
            break
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
    server.poll()


def _failed(what: str, log: Path) -> int:
    """One error line, then the server log's last lines (it is kept for reading); exit 3."""
    print(f"ablate: error: {what}; the last lines of its log {log}:", file=sys.stderr)
    tail = _tail(log, LOG_TAIL)
    print("\n".join(f"  | {line}" for line in tail) if tail else "  | (the log is empty)", file=sys.stderr,
          flush=True)
    return EXIT_ENV


def _tail(path: Path, n: int) -> List[str]:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if line.strip()][-n:]
