"""Connect the sweep driver to Ray: an embedded local instance, or an existing
cluster with the authentication mode its nodes use.

Ray 2.60 turns token authentication on by default (``RAY_AUTH_MODE``), and a
driver whose mode differs from the cluster's fails in two confusing ways
(measured with real ``ray start`` processes, tests/sweeps/test_cluster_cli.py):

* head and workers started with ``RAY_AUTH_MODE=disabled`` (as cluster.yaml
  does), driver with the mode unset: Ray turns tokens on in the driver as soon
  as ``~/.ray/auth_token`` exists (any earlier local run writes it); the driver
  connects, but every actor is "cancelled before it started running", so every
  trial ends ERROR;
* head with tokens (a plain ``ray start --head``), driver ``disabled``: the
  connection is refused with ``InvalidAuthToken`` after ~20 s of retries.

So before ``ray.init`` the driver asks the cluster's GCS which mode it accepts
(a client without a token is refused by a token cluster and accepted by a
disabled one), adopts that mode when ``RAY_AUTH_MODE`` is unset, and stops with
one line naming ``RAY_AUTH_MODE`` when the user set a different one.  After
connecting, a zero-CPU actor proves that workers can reach the driver.  Ray
offers no call that reports a running cluster's mode; hence this probe.

``ray://`` (Ray Client) is refused: Tune under Ray Client runs the driver-side
MLflow tracker and the launch state away from this process (see README,
"Running on a GPU cluster": run the driver on the head with ``--address auto``).
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from typing import Optional

from ..errors import LaunchError, UsageError

ADDRESS_FORMS = "'auto' (the cluster started on this machine), HOST:PORT of the head's GCS, or 'local'"


def check_address(address: Optional[str]) -> None:
    """Validate ``--address`` before anything starts (UsageError, exit 2)."""
    if address is None or address in ("auto", "local"):
        return
    if address.startswith("ray://"):
        raise UsageError(f"--address {address}: Ray Client (ray://) is not supported; run the driver on the "
                         f"cluster's head (`ray exec cluster.yaml 'ablate run … --address auto'`) or submit it "
                         f"as a Ray job; allowed: {ADDRESS_FORMS}")
    m = re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})", address)
    if not m or not 0 < int(m.group(2)) < 65536:
        raise UsageError(f"--address {address!r} is not allowed: {ADDRESS_FORMS}")


def connect(address: Optional[str], verbose: int = 1, runtime_env: Optional[dict] = None) -> None:
    """``ray.init`` for a launch: local unless ``address`` names a cluster.  ``runtime_env`` (the sweep file's
    own code as ``py_modules``) reaches every worker of the launch, on any node."""
    import ray

    if ray.is_initialized():
        return
    opts = dict(logging_level="WARNING", configure_logging=True, log_to_driver=verbose > 1)
    if runtime_env:
        opts["runtime_env"] = runtime_env
    if address in (None, "local"):
        # "local": always our own instance; a bare ray.init() would attach to
        # whatever Ray cluster happens to run on this machine.
        with _quiet_local_token_notice():
            ray.init(address="local", include_dashboard=False, **opts)
        return
    gcs = _gcs_address(address)
    _adopt_auth_mode(gcs)
    try:
        ray.init(address=gcs, **opts)
    except (ConnectionError, RuntimeError) as e:
        raise LaunchError(f"cannot connect to the Ray cluster at {gcs} ({e}); "
                          f"check RAY_AUTH_MODE and the token (~/.ray/auth_token) match the cluster's") from None
    _probe_actor(gcs)


# Ray 2.60 says so on every new local instance when RAY_AUTH_MODE is unset; the embedded instance lives
# and dies with this launch, so the notice is not the user's to act on (ray._private.authentication.
# authentication_token_setup._warn_token_auth_enabled).  Only this record, only around the local ray.init:
# an authentication problem, and anything about a real cluster, still shows.
TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster."


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(TOKEN_NOTICE)


@contextlib.contextmanager
def _quiet_local_token_notice():
    log, f = logging.getLogger(TOKEN_NOTICE_LOGGER), _DropTokenNotice()
    log.addFilter(f)
    try:
        yield
    finally:
        log.removeFilter(f)


def _gcs_address(address: str) -> str:
    from ray._private.services import canonicalize_bootstrap_address

    try:
        gcs = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as e:
        raise LaunchError(f"--address {address}: {e}") from None
    if gcs is None:
        raise LaunchError(f"--address {address}: no running Ray cluster found on this machine "
                          f"(start one with `ray start --head`, or drop --address for a local instance)")
    host, _, port = gcs.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as e:
        where = address if address == gcs else f"{address} ({gcs})"
        raise LaunchError(f"no Ray cluster answers at {where}: {e.strerror or e}; is the head running?") from None
    return gcs


@contextlib.contextmanager
def _quiet_fd2():
    """Ray's C++ client logs every refused attempt straight to fd 2; the probe's
    expected refusal must not look like an error to the user."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _cluster_accepts_without_token(gcs: str) -> bool:
    from ray._raylet import Config, GcsClient
    from ray.exceptions import AuthenticationError

    before = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    Config.initialize("")
    try:
        with _quiet_fd2():
            GcsClient(address=gcs).internal_kv_keys(b"", None, timeout=10)
        return True
    except AuthenticationError:
        return False
    except Exception as e:  # noqa: BLE001 - a GCS that does not answer at all
        raise LaunchError(f"the Ray cluster at {gcs} does not answer ({type(e).__name__}: {e})") from None
    finally:
        if before is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = before


def _adopt_auth_mode(gcs: str) -> None:
    from ray._raylet import Config

    cluster = "disabled" if _cluster_accepts_without_token(gcs) else "token"
    mine = os.environ.get("RAY_AUTH_MODE")
    if mine is not None and mine.lower() != cluster:
        raise LaunchError(f"the Ray cluster at {gcs} runs with RAY_AUTH_MODE={cluster} but this driver has "
                          f"RAY_AUTH_MODE={mine}; use one RAY_AUTH_MODE for the head, every worker and the driver "
                          f"(cluster.yaml: disabled), or unset it here to follow the cluster")
    if cluster == "token" and not _token_available():
        raise LaunchError(f"the Ray cluster at {gcs} uses token authentication (RAY_AUTH_MODE=token) but this "
                          f"driver has no token: copy the head's ~/.ray/auth_token here or set RAY_AUTH_TOKEN")
    os.environ["RAY_AUTH_MODE"] = cluster
    Config.initialize("")


def _token_available() -> bool:
    from ray._raylet import AuthenticationTokenLoader

    return bool(AuthenticationTokenLoader.instance().has_token(ignore_auth_mode=True))


def _probe_actor(gcs: str) -> None:
    import ray

    @ray.remote(num_cpus=0)
    class _Probe:
        def ping(self) -> int:
            return os.getpid()

    try:
        ray.get(_Probe.remote().ping.remote(), timeout=120)
    except Exception as e:  # noqa: BLE001 - any failure here means trials could not run either
        mode = os.environ.get("RAY_AUTH_MODE", "unset")
        raise LaunchError(f"connected to the Ray cluster at {gcs}, but an actor could not start there "
                          f"({type(e).__name__}); with RAY_AUTH_MODE={mode} here this usually means the nodes "
                          f"were started with another RAY_AUTH_MODE: use one for head, workers and driver") from None
