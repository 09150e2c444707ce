"""MLflow tracking for sweeps: store resolution, a reachability check before
launch, and the Tune callback that keeps exactly one MLflow run per trial.

Why not ray.air.integrations.mlflow.MLflowLoggerCallback: it keys runs by the
in-memory Trial object, so a trial retried after a worker crash or resumed by
``Tuner.restore`` after a driver crash gets a second run (a duplicate row in
every table), and it cannot mark a diverged trial FAILED with a reason.  This
callback finds a trial's run by its ``ablate.trial_key`` tag, continues it,
logs each epoch once (steps already logged are skipped after a restore), and
ends every run FINISHED or FAILED.  It runs on the driver, so workers never
write tracking data to their own disks.  The callback class itself lives in
sweeps/runner/tracker.py (it subclasses a Ray class; this module stays Ray-free so
the CLI starts fast).
"""
from __future__ import annotations

import getpass
import os
import socket
import subprocess
from pathlib import Path
from typing import Dict, Optional

from analysis import contract as C

from ..errors import SettingError, StoreError

def default_home() -> Path:
    """``$ABLATE_HOME`` or ``./ablate_runs`` (not created here)."""
    raw = os.environ.get("ABLATE_HOME")
    if raw is not None and not raw.strip():
        raise SettingError("ABLATE_HOME is set but empty; unset it or give a directory")
    home = Path(raw).expanduser() if raw else Path.cwd() / "ablate_runs"
    if home.exists() and not home.is_dir():
        what = "ABLATE_HOME" if raw else "the default run directory"
        raise SettingError(f"{what} {home} exists and is not a directory; "
                           f"point ABLATE_HOME at a directory (it is created if absent)")
    return home.resolve()


def ensure_home() -> Path:
    """The run directory, created if absent; SettingError if it cannot be written."""
    home = default_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SettingError(f"cannot create the run directory {home} ({e.strerror}); "
                           f"set ABLATE_HOME to a writable directory") from None
    if not os.access(home, os.W_OK | os.X_OK):
        raise SettingError(f"the run directory {home} is not writable; set ABLATE_HOME to a writable directory")
    return home


def resolve_uri(cli_uri: Optional[str] = None, file_uri: Optional[str] = None, create: bool = True) -> str:
    """--tracking-uri > sweep file's tracking.uri > $MLFLOW_TRACKING_URI > local sqlite.

    ``create=False`` (commands that only read) never creates the run directory."""
    uri = cli_uri or file_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    home = ensure_home() if create else default_home()
    return f"sqlite:///{home / 'mlflow.db'}"


def sqlite_path(uri: str) -> Optional[Path]:
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):])
    return None


def file_store_path(uri: str) -> Optional[Path]:
    """The directory of a plain file store (a path or file: URI), else None."""
    if uri.startswith("file:"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        return Path(url2pathname(urlsplit(uri).path))
    if "://" not in uri and ":" not in uri.split("/")[0]:
        return Path(uri)
    return None


def _quiet_mlflow() -> None:
    import logging

    # Alembic prints every migration step when a sqlite store is first created.
    for name in ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils"):
        logging.getLogger(name).setLevel(logging.WARNING)


def client(uri: str):
    _quiet_mlflow()
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def open_store(uri: str, create: bool, timeout_s: float = 5.0) -> str:
    """Check, before anything else runs, that the store can be used; returns ``uri``.

    ``create``: a launch may create a new store; commands that only read must not
    (they raise StoreError naming the missing store instead of leaving an empty one).
    A new sqlite store is created under a file lock: two drivers that open the same
    new store at once otherwise race in MLflow's schema migration ("duplicate column
    name"), and one of them fails.
    """
    if uri.startswith(("http://", "https://")):
        check_reachable(uri, timeout_s)
        return uri
    db, fs = sqlite_path(uri), file_store_path(uri)
    if db is not None:
        return _open_sqlite(uri, db, create)
    if fs is not None:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")   # MLflow 3 refuses file stores otherwise
        if not fs.exists() and not create:
            raise StoreError(f"no tracking store at {fs} (nothing has been tracked there yet); "
                             f"run a sweep first or pass --tracking-uri of an existing store")
    check_reachable(uri, timeout_s)
    return uri


def _open_sqlite(uri: str, db: Path, create: bool) -> str:
    if not db.exists() or db.stat().st_size == 0:
        if not create:
            raise StoreError(f"no tracking store at {db} (nothing has been tracked there yet); "
                             f"run a sweep first or pass --tracking-uri of an existing store")
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the tracking store {db}: {e.strerror}") from None
    elif db.is_dir():
        raise StoreError(f"tracking store {db} is a directory, not a sqlite file")
    else:
        _check_sqlite_file(db)
        if not create and _readable_without_mlflow(uri):
            return uri            # complete (its schema at a known revision): nothing to create or wait for
    from filelock import FileLock, Timeout

    lock = FileLock(str(db) + ".lock")
    try:
        lock.acquire(timeout=300)
    except Timeout:
        raise StoreError(f"tracking store {db} stayed locked by another process for 300 s") from None
    except OSError as e:
        raise StoreError(f"cannot lock the tracking store {db} ({e.strerror or e}); "
                         f"is its directory writable?") from None
    try:
        check_reachable(uri)     # creates the schema of a new store, under the lock
    finally:
        lock.release()
    return uri


def _readable_without_mlflow(uri: str) -> bool:
    """A store the commands that only read can use without importing MLflow (analysis/store_sqlite.py): its
    schema is at a revision that reader was checked on, so no migration is pending or under way."""
    from analysis.store_sqlite import READER_CHOICES, READER_ENV, open_reader

    raw = os.environ.get(READER_ENV, "auto")
    if raw.strip().lower() not in READER_CHOICES:
        raise SettingError(f"{READER_ENV}={raw!r} is not allowed: one of {', '.join(READER_CHOICES)} (auto: a local "
                           f"sqlite store is read without MLflow's client; mlflow: always through it)")
    reader = open_reader(uri)
    if reader is None:
        return False
    reader.close()
    return True


def _check_sqlite_file(db: Path) -> None:
    """A file that is not sqlite, or a sqlite database that is not an MLflow store,
    is refused before MLflow gets to "migrate" (i.e. write into) it."""
    import sqlite3

    try:
        with open(db, "rb") as f:
            head = f.read(16)
    except OSError as e:
        raise StoreError(f"cannot read the tracking store {db}: {e.strerror}") from None
    if head != b"SQLite format 3\x00":
        raise StoreError(f"tracking store {db} is not a sqlite database (corrupt, or another kind of file)")
    try:
        # mode=rw, not ro: a writer killed mid-transaction (a SIGKILLed driver) leaves a hot
        # journal, and a read-only connection cannot roll it back ("attempt to write a readonly
        # database"). rw never creates the file and opens a write-protected one read-only.
        con = sqlite3.connect(f"file:{db}?mode=rw", uri=True)
        try:
            tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
        finally:
            con.close()
    except sqlite3.Error as e:
        raise StoreError(f"tracking store {db} cannot be read as sqlite: {e}") from None
    if tables and not {"experiments", "runs"} <= tables:
        raise StoreError(f"{db} is a sqlite database but not an MLflow tracking store "
                         f"(tables: {', '.join(sorted(tables)[:5])})")


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before any trial starts, if the tracking store cannot be used."""
    if uri.startswith(("http://", "https://")):
        # A health probe of the user's own tracking server (MLflow answers GET /health), not a download.
        import http.client
        from urllib.parse import urlsplit

        u = urlsplit(uri)
        conn_cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        try:
            conn = conn_cls(u.hostname, u.port, timeout=timeout_s)
            conn.request("GET", (u.path.rstrip("/") or "") + "/health")
            status = conn.getresponse().status
            conn.close()
            if status >= 500:
                raise OSError(f"HTTP {status}")
        except (OSError, ValueError, http.client.HTTPException) as e:
            raise StoreError(f"MLflow tracking server {uri} cannot be reached ({e}); start it or pass "
                             f"--tracking-uri / tracking.uri pointing at a running server") from None
        return
    try:
        client(uri).search_experiments(max_results=1)
    except Exception as e:  # noqa: BLE001 - any store error means "cannot track"
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StoreError(f"MLflow tracking store {uri} cannot be used: {msg[:300]}") from None


def ensure_experiment(uri: str, name: str) -> str:
    """The experiment's id, created if absent.  Tagged ``mlflow.experimentKind`` = custom_model_development
    (also an existing one of ablate): MLflow 3 otherwise opens it in the GenAI view, without the runs table."""
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        if exp.tags.get(C.EXPERIMENT_KIND) != C.EXPERIMENT_KIND_VALUE:
            c.set_experiment_tag(exp.experiment_id, C.EXPERIMENT_KIND, C.EXPERIMENT_KIND_VALUE)
        return exp.experiment_id
    artifact = None
    if uri.startswith("sqlite:///"):
        artifact = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    try:
        return c.create_experiment(name, artifact_location=artifact,
                                   tags={C.EXPERIMENT_KIND: C.EXPERIMENT_KIND_VALUE})
    except Exception:  # created concurrently by another driver
        return c.get_experiment_by_name(name).experiment_id


# MLflow 3.17's UI keeps the runs table's columns in browser storage only; the one way a store can set
# them is a "shared view": the experiment tag mlflow.sharedViewState.<key> holding the page's state as
# JSON, opened by #/experiments/<id>/runs?viewStateShareKey=<key> (search facets from the same JSON).
SHARED_VIEW_TAG = "mlflow.sharedViewState."


def launch_view_url(ui_url: str, experiment_id: str, launch: str) -> str:
    """The MLflow UI link of a launch's trials with the study's columns (``share_launch_view``)."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs?viewStateShareKey={launch}"


def share_launch_view(uri: str, experiment_id: str, launch: str, metric: str, axes) -> None:
    """Tag the experiment with a view of one launch's trials (issue 22): its runs without the parent (so
    the trials are rows, not hidden under a collapsed parent), by run name, with the study metric, each
    scientific axis and the seed as columns.  A store that refuses the tag only loses the link's columns."""
    import json

    col = lambda kind, key: f"{kind}.`{key}`"
    state = {"searchFilter": f"{C.equals(C.LAUNCH, launch)} and tags.`{C.PHASE}` != '{C.PHASE_LAUNCH}'",
             "orderByKey": "tags.`mlflow.runName`", "orderByAsc": True,
             "selectedColumns": [col("metrics", metric), *(col("params", a) for a in axes), col("params", "seed")]}
    try:
        client(uri).set_experiment_tag(experiment_id, SHARED_VIEW_TAG + launch, json.dumps(state))
    except Exception:  # noqa: BLE001 - a read-only or size-limited store: the report's run list still links every run
        pass


def git_commit(path: Path | None = None) -> str:
    try:
        cwd = str(path or Path(__file__).resolve().parent)
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        # untracked files count: a new module the run imported is an edit a clean commit cannot reproduce
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("-dirty" if dirty else "")) if sha else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def base_tags(study_name: str, launch: str) -> Dict[str, str]:
    return {C.SWEEP: study_name, C.LAUNCH: launch, C.GIT_COMMIT: git_commit(),
            C.DRIVER_HOST: socket.gethostname(), C.USER: getpass.getuser(), C.SOURCE_NAME: C.SOURCE_VALUE}
