"""``ablate ui``: the MLflow UI on the run store, bound to 127.0.0.1."""
from __future__ import annotations

import os
import socket
import sys

from ..errors import UsageError


def add(sub) -> None:
    u = sub.add_parser("ui", help="open the MLflow UI on the run store (127.0.0.1)")
    u.add_argument("--tracking-uri", help="store to show (default: sqlite store in ./ablate_runs)")
    u.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    u.set_defaults(func=cmd_ui)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def cmd_ui(args) -> int:
    from ..runner import tracking

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not allowed: a port in 1..65535")
    uri = tracking.resolve_uri(args.tracking_uri, create=False)
    if uri.startswith(("http://", "https://")):
        raise UsageError(f"the store {uri} is a tracking server already: open {uri} in a browser")
    tracking.open_store(uri, create=False)
    if not _port_free(args.port):
        raise UsageError(f"port {args.port} on 127.0.0.1 is already in use (another MLflow UI?); "
                         f"stop it or pass --port N")
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(args.port)]
    print(f"MLflow UI on http://127.0.0.1:{args.port} (store {uri}); Ctrl-C stops it", file=sys.stderr, flush=True)
    os.execve(sys.executable, cmd, env)
    return 0
