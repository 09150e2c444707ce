"""The Tune callback that mirrors trials into MLflow (see sweeps/runner/tracking.py
for why it is not MLflowLoggerCallback).  Module-level so that Tune can pickle
it into its experiment state and ``Tuner.restore`` brings it back.

Cost per trial (issue 13): one store transaction when the trial starts (run,
tags, params) and one per result (metrics and annotation tags together; the
last epoch's also ends the run); a trial that ends otherwise (stopped early,
failed) gets one more for its status, end time and closing tags.  Through
MLflow's client most of these take two commits on its SQL stores
(``log_batch`` opens one session per kind of entity; a run's params need a
second call after ``create_run``): a 1-epoch trial takes 5 write commits, each
an fsync on sqlite, instead of 2.  So on a sqlite/SQL store the tracker writes
MLflow's own tables in one session per event (``_SqlWriter``; measured in
docs/benchmarks_notes.md).  Every write is synchronous: when Tune has seen a
result, the store has it, so no driver crash can lose what Tune will not
replay.  Any other store (an HTTP tracking server) gets the same events
through the public client (``_ClientWriter``), and so does a SQL store whose
schema revision or database the direct writes were not tested on
(``TESTED_SCHEMA``, ``TESTED_DIALECTS``; issue 23).
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

from mlflow.entities import Metric, Param, RunTag
from ray.tune import Callback

from analysis import contract as C

from .trainable import FAILURE_KEY, FAILURE_KIND_KEY, INFO_KEY, REPLAY_KEY, RESUMED_KEY, TIME_KEY, same_params
from .tracking import client, git_commit

ENDED = ("FINISHED", "FAILED", "KILLED")
# Keys Tune adds to every result; everything else numeric is a task metric.
TUNE_AUTO_KEYS = {
    "time_this_iter_s", "done", "training_iteration", "timestamp", "time_total_s", "pid", "hostname",
    "node_ip", "time_since_restore", "iterations_since_restore", "checkpoint_dir_name", "trial_id",
    "date", "config", "experiment_tag", "should_checkpoint", "episodes_total", "timesteps_total",
    "timesteps_since_restore", "episode_reward_mean", "experiment_id",
}


def metrics_of(result: Dict[str, Any]) -> Dict[str, float]:
    """The task's metrics in a Tune result: every number that is not Tune's or ablate's own."""
    out = {}
    for k, v in result.items():
        if k in TUNE_AUTO_KEYS or k.startswith("ablate_") or isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[k] = float(v)
    return out


class MLflowTracker(Callback):
    """One MLflow run per trial key, continued across retries, node loss and driver restarts.

    Args:
        uri: tracking URI of the store.
        experiment_id: experiment the runs go to.
        base_tags: tags of every run (``ablate.launch`` scopes the look-up of existing runs).
        log_checkpoints: upload a finished trial's last checkpoint as run artifacts (default False).
    """

    def __init__(self, uri: str, experiment_id: str, base_tags: Dict[str, str], log_checkpoints: bool = False):
        self.uri, self.experiment_id, self.base_tags = uri, experiment_id, base_tags
        self.log_checkpoints = log_checkpoints
        self._c = self._w = None
        self._runs: Dict[str, str] = {}      # trial key -> run id
        self._step: Dict[str, int] = {}      # trial key -> last logged epoch
        self._reopen: set = set()            # keys of ended runs this tracker continues (set RUNNING on next write)
        self._known: Optional[Dict[str, Any]] = None   # trial key -> existing run of this launch (loaded once)
        self._replay: Dict[str, Dict[str, Any]] = {}   # handed to the trainable by run_phase on --resume
        self._later: Dict[str, Dict[str, str]] = {}    # tags that go with a key's next write
        self._ended: set = set()             # keys whose run this tracker ended with their last epoch
        self._resumed_commit = ""

    def __getstate__(self):
        # Only the configuration travels into Tune's experiment state; run ids are
        # re-discovered from MLflow tags after a restore (the source of truth).
        return {"uri": self.uri, "experiment_id": self.experiment_id, "base_tags": self.base_tags,
                "log_checkpoints": self.log_checkpoints}

    def __setstate__(self, st):
        self.__init__(st["uri"], st["experiment_id"], st["base_tags"], st.get("log_checkpoints", False))
        # A resume may run newer code than the launch: runs created from here on
        # carry the commit they run, and runs continued here say so, so no trial
        # claims a commit it did not (entirely) run.
        launched, now = self.base_tags.get(C.GIT_COMMIT), git_commit()
        if launched and now != launched:
            self.base_tags = {**self.base_tags, C.GIT_COMMIT: now, C.LAUNCH_GIT_COMMIT: launched}
        self._resumed_commit = now

    @property
    def c(self):
        if self._c is None:
            self._c = client(self.uri)
        return self._c

    @property
    def w(self):
        if self._w is None:
            self._w = writer(self.c)
        return self._w

    @staticmethod
    def key(trial) -> str:
        return trial.config["trial"]["key"]

    def existing(self) -> Dict[str, Any]:
        """trial key → this launch's run of it, read once per tracker (one search, not one per trial).

        Loaded on every launch, not only after a restore: a driver killed before
        Tune's first snapshot is resumed with a fresh Tuner and a fresh tracker."""
        if self._known is None:
            launch = self.base_tags.get(C.LAUNCH)
            flt = C.equals(C.LAUNCH, launch) if launch else ""
            self._known, token = {}, None
            while True:
                page = self.c.search_runs([self.experiment_id], filter_string=flt, max_results=50000,
                                          page_token=token)
                for r in page:                        # newest first: the newest run of a key wins
                    if C.SUPERSEDED_BY not in r.data.tags:   # an attempt a later one replaced (--retry-failed)
                        self._known.setdefault(r.data.tags.get(C.TRIAL_KEY), r)
                token = page.token
                if not token:
                    break
            self._known.pop(None, None)
        return self._known

    def replays(self) -> Dict[str, Dict[str, Any]]:
        """Trial key → recorded outcome of every trial of this launch whose run has ended
        for good: FINISHED, or FAILED by its own divergence (a trial that errored is
        retried by ``--resume``, as Tune's ``resume_errored`` always did).

        ``--resume`` hands this to the trainable (sweeps/runner/trainable.py): a trial
        that Tune's last snapshot still lists as running, but whose run ended
        after it, replays its recorded result instead of training again."""
        out = {}
        for k, r in self.existing().items():
            if self._superseded(r):
                continue                              # an added phase reruns it: nothing to replay
            kind = r.data.tags.get(C.FAILURE_KIND)
            diverged = r.info.status == "FAILED" and kind in C.FAILURES_FOR_GOOD
            if r.info.status != "FINISHED" and not diverged:
                continue
            out[k] = {"params": dict(r.data.params), "metrics": dict(r.data.metrics),
                      "failure": r.data.tags.get(C.FAILURE_REASON, "trial failed") if diverged else None,
                      "kind": kind if diverged else None}
        self._replay = out
        return out

    def _superseded(self, run) -> bool:
        """Whether ``run`` is an earlier attempt that this tracker's phase replaces: in a phase added by
        --retry-failed / --extend (``ablate.added_in`` in the base tags), every run of a key that phase did
        not create (sweeps/runner/grow.py)."""
        added = self.base_tags.get(C.ADDED_IN)
        return bool(added) and run.data.tags.get(C.ADDED_IN) != added

    def _is_replay(self, trial) -> bool:
        spec = trial.config["trial"]
        rec = self._replay.get(spec["key"])
        return rec is not None and same_params(spec["params"], rec["params"])

    def run_id(self, trial) -> str:
        """The trial's run: found among this launch's runs, else created (one transaction)."""
        k = self.key(trial)
        if k in self._runs:
            return self._runs[k]
        spec = trial.config["trial"]
        run = self.existing().get(k)
        old = None
        if run is not None and self._superseded(run):
            old, run = run.info.run_id, None
        if run is not None:
            rid = run.info.run_id
            # "epoch" comes with every result (the study metric may not), and a
            # result's metrics are written in one transaction: its latest value is
            # the last epoch logged.
            self._step[k] = int(run.data.metrics.get("epoch", 0) or 0)
            if run.info.status != "RUNNING":
                self._reopen.add(k)
            commit = self._resumed_commit or git_commit()
            self._resumed_commit = commit
            if run.data.tags.get(C.GIT_COMMIT) != commit:
                self._later.setdefault(k, {})[C.RESUMED_GIT_COMMIT] = commit
        else:
            seed = spec["params"].get("seed")
            tags = {**self.base_tags, C.TRIAL_KEY: k, C.CELL: spec["cell"], C.PHASE: spec["phase"],
                    C.SEED: str(seed), C.TASK: spec["task"], C.TRIAL_ID: trial.trial_id,
                    C.CELL_INDEX: str(spec.get("cell_index", -1))}
            rid = self.w.create(self.experiment_id, run_name(spec['phase'], spec['cell'], seed), tags,
                                {p: str(v) for p, v in sorted(spec["params"].items())})
            self._step[k] = 0
            if old is not None:
                # a second transaction: a crash between the two leaves both current, and the new run (newer)
                # is the one existing() and the table's reader pick
                self.w.write(old, [], {C.SUPERSEDED_BY: rid})
        self._runs[k] = rid
        return rid

    def _write(self, trial, metrics: List[Metric] = (), tags: Optional[Dict[str, str]] = None,
               status: Optional[str] = None, end_ms: Optional[int] = None) -> str:
        """One transaction: metrics, tags, status; reopens an ended run first if this tracker continues it."""
        k, rid = self.key(trial), self.run_id(trial)
        tags = {**self._later.pop(k, {}), **(tags or {})}
        if status is None and k in self._reopen:
            status = "RUNNING"
        if status is not None:
            self._reopen.discard(k)
        if metrics or tags or status:
            self.w.write(rid, list(metrics), tags, status, end_ms)
        return rid

    def on_trial_start(self, iteration, trials, trial, **info):
        if not self._is_replay(trial):
            self.run_id(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if REPLAY_KEY in result:
            return                                   # an ended run's recorded outcome, nothing new
        k = self.key(trial)
        self.run_id(trial)
        tags = {}
        if isinstance(result.get(INFO_KEY), dict):      # the first result, and any with a new annotation
            tags = {f"{C.ANNOTATION_PREFIX}{n}": str(v) for n, v in result[INFO_KEY].items()}
        if RESUMED_KEY in result:                    # every retried or resumed attempt says where it began
            tags[C.RESUMED_FROM_EPOCH] = str(result[RESUMED_KEY])
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        if FAILURE_KEY in result or step <= self._step.get(k, 0):
            # a failure marker, or an epoch logged before a restore (a resumed trial
            # replays the epochs after its last checkpoint, bit-identically)
            self._write(trial, tags=tags)
            return
        ts = int(float(result.get(TIME_KEY, result.get("timestamp", 0))) * 1000)
        metrics = [Metric(n, v, ts, step) for n, v in metrics_of(result).items()]
        epochs = int(trial.config["trial"]["params"].get("train.epochs", 0) or 0)
        if epochs and step >= epochs:
            # the last epoch: its metrics and the run's end in one transaction (the trial
            # only returns after this report; on_trial_complete then has nothing to write)
            self._write(trial, metrics, tags, status="FINISHED", end_ms=_now_ms())
            self._ended.add(k)
        else:
            self._write(trial, metrics, tags)
        self._step[k] = step

    def on_trial_recover(self, iteration, trials, trial, **info):
        rid = self.run_id(trial)
        n = int(self.c.get_run(rid).data.tags.get(C.RETRIES, "0")) + 1
        self._write(trial, tags={C.RETRIES: str(n)})

    def on_trial_complete(self, iteration, trials, trial, **info):
        last = trial.last_result or {}
        if REPLAY_KEY in last or self._is_replay(trial):
            return                                   # its run ended before; it stays as it was
        now = _now_ms()
        if FAILURE_KEY in last:
            self._write(trial, tags={C.FAILURE_REASON: C.plain_text(str(last[FAILURE_KEY]))[:4000],
                                     C.FAILURE_KIND: last.get(FAILURE_KIND_KEY, C.FAILURE_DIVERGED)},
                        status="FAILED", end_ms=now)
            return
        tags = {}
        epochs = int(trial.config["trial"]["params"].get("train.epochs", 0) or 0)
        if epochs and int(last.get("epoch", 0)) < epochs:
            tags[C.STOPPED_EARLY] = "true"
        rid = self.run_id(trial)
        if self.log_checkpoints and trial.checkpoint is not None:
            # The final checkpoint goes to the run's artifact store (a tracking
            # server's, when there is one), wherever Ray's storage is.
            with trial.checkpoint.as_directory() as d:
                self.c.log_artifacts(rid, d, artifact_path="checkpoint")
        if self.key(trial) in self._ended and not tags:
            return                                   # ended with its last epoch's metrics
        self._write(trial, tags=tags, status="FINISHED", end_ms=now)

    def on_trial_error(self, iteration, trials, trial, **info):
        if self._is_replay(trial):
            return
        reason = "trial errored"
        try:
            if trial.error_file and Path(trial.error_file).exists():
                # Ray colours its error files: the tag holds plain text (the tail: a traceback ends with what)
                reason = C.plain_text(Path(trial.error_file).read_text())[-4000:]
        except Exception:  # noqa: BLE001 - remote storage paths may not be readable here
            pass
        self._write(trial, tags={C.FAILURE_REASON: reason, C.FAILURE_KIND: C.FAILURE_ERROR}, status="FAILED",
                    end_ms=_now_ms())


def _now_ms() -> int:
    return int(time.time() * 1000)


# MLflow schema revisions (alembic heads) and databases on which _SqlWriter's rows were checked
# against what MLflow's client writes: dc11669786a5 is MLflow 3.17's head, on sqlite
# (tests/sweeps/test_callback.py) and PostgreSQL (tests/cluster/test_postgres_tracking.py). A store on
# any other revision (a newer MLflow's tables may differ) or database gets the public client.
TESTED_SCHEMA = frozenset({"dc11669786a5"})
TESTED_DIALECTS = frozenset({"sqlite", "postgresql"})


def writer(c):
    """The cheapest correct writer for the client's store: one SQL transaction per event on a
    SQLAlchemy store whose schema revision and database are tested, the public client API otherwise
    (or if MLflow's internals moved)."""
    try:
        return _SqlWriter(c)
    except (ImportError, AttributeError, TypeError):
        return _ClientWriter(c)


def schema_revision(store) -> str:
    """The alembic revision MLflow's migrations left in ``store``'s database ("" if none)."""
    from alembic.migration import MigrationContext

    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() or ""


class _ClientWriter:
    """Tracker events through MLflow's public client (HTTP servers, file stores).

    Args:
        c: an MlflowClient.
    """

    def __init__(self, c):
        self.c = c

    def create(self, experiment_id: str, name: str, tags: Dict[str, str], params: Dict[str, str]) -> str:
        rid = self.c.create_run(experiment_id, tags=tags, run_name=name).info.run_id
        ps = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(ps), 100):
            self.c.log_batch(rid, params=ps[i:i + 100])
        return rid

    def write(self, rid: str, metrics: List[Metric], tags: Dict[str, str], status: Optional[str] = None,
              end_ms: Optional[int] = None) -> None:
        ts = [RunTag(k, v) for k, v in tags.items()]
        if status == "RUNNING":
            self.c.update_run(rid, status="RUNNING")
        for i in range(0, max(len(metrics), len(ts)), 100):
            self.c.log_batch(rid, metrics=metrics[i:i + 100], tags=ts[i:i + 100])
        if status is not None and status != "RUNNING":
            self.c.set_terminated(rid, status=status, end_time=end_ms)


class _SqlWriter(_ClientWriter):
    """Tracker events as one transaction each on MLflow's SQLAlchemy store.

    Why by hand: MLflow's client has no call that writes a run with its tags
    and params, or metrics with tags and a status, at once; on sqlite each of
    its sessions is a commit (an fsync), and its ORM objects cost about as
    much again in Python.  This runs SQLAlchemy Core statements on MLflow's own
    tables (``mlflow.store.tracking.dbmodels``) inside the store's own managed
    session, after MLflow's own validation, and keeps ``latest_metrics`` by
    MLflow's rule (a value replaces the latest one if its (step, timestamp,
    value) is larger), so readers see exactly what the client would have
    written (tests/sweeps/test_callback.py compares the two).  A write that the
    database refuses (e.g. a metric row that already exists) is rolled back and
    done again through the client, which handles it.

    Args:
        c: an MlflowClient whose store is a SqlAlchemyStore on a tested database and schema revision
            (TypeError otherwise).
    """

    def __init__(self, c):
        # ImportError / AttributeError here (MLflow moved its internals) → writer() falls back to the client
        from mlflow.store.tracking.dbmodels.models import SqlLatestMetric, SqlMetric, SqlParam, SqlRun, SqlTag
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
        from mlflow.utils.validation import _validate_batch_log_data, _validate_batch_log_limits

        super().__init__(c)
        self.store = c._tracking_client.store
        if not isinstance(self.store, SqlAlchemyStore):
            raise TypeError("not a SQL store")
        if self.store.engine.dialect.name not in TESTED_DIALECTS or schema_revision(self.store) not in TESTED_SCHEMA:
            raise TypeError("direct writes untested on this database or schema revision")
        self._sanitize = self.store.sanitize_metric_value
        self.runs, self.tags, self.params = SqlRun.__table__, SqlTag.__table__, SqlParam.__table__
        self.metrics, self.latest = SqlMetric.__table__, SqlLatestMetric.__table__
        self._validate_data, self._validate_limits = _validate_batch_log_data, _validate_batch_log_limits
        self._artifact_root: Dict[str, str] = {}

    def _check(self, metrics, params, tags):
        """MLflow's own log_batch validation (names, values, lengths, batch limits)."""
        out = self._validate_data(metrics, params, tags)
        self._validate_limits(*out)
        return out

    def create(self, experiment_id: str, name: str, tags: Dict[str, str], params: Dict[str, str]) -> str:
        from mlflow.utils.uri import append_to_uri_path

        tags = {**tags, C.RUN_NAME: name}
        _, ps, ts = self._check([], [Param(k, v) for k, v in params.items()], [RunTag(k, v) for k, v in tags.items()])
        if experiment_id not in self._artifact_root:
            self._artifact_root[experiment_id] = self.c.get_experiment(experiment_id).artifact_location
        rid = uuid.uuid4().hex
        run = dict(run_uuid=rid, name=name, artifact_uri=append_to_uri_path(self._artifact_root[experiment_id], rid,
                                                                            "artifacts"),
                   experiment_id=int(experiment_id), source_type="UNKNOWN", source_name="", entry_point_name="",
                   user_id=tags.get(C.MLFLOW_USER, "unknown"), status="RUNNING", start_time=_now_ms(),
                   end_time=None, deleted_time=None, source_version="", lifecycle_stage="active")
        with self.store.ManagedSessionMaker(read_only=False) as s:
            s.execute(self.runs.insert(), [run])
            s.execute(self.tags.insert(), [{"run_uuid": rid, "key": t.key, "value": t.value} for t in ts])
            if ps:
                s.execute(self.params.insert(), [{"run_uuid": rid, "key": p.key, "value": p.value} for p in ps])
        return rid

    def write(self, rid: str, metrics: List[Metric], tags: Dict[str, str], status: Optional[str] = None,
              end_ms: Optional[int] = None) -> None:
        import sqlalchemy

        from mlflow.exceptions import MlflowException

        ms, _, ts = self._check(metrics, [], [RunTag(k, v) for k, v in tags.items()])
        try:
            with self.store.ManagedSessionMaker(read_only=False) as s:
                if ms:
                    self._metrics(s, rid, ms)
                if ts:
                    keys = [t.key for t in ts]
                    s.execute(self.tags.delete().where(self.tags.c.run_uuid == rid, self.tags.c.key.in_(keys)))
                    s.execute(self.tags.insert(), [{"run_uuid": rid, "key": t.key, "value": t.value} for t in ts])
                if status is not None:
                    values = {"status": status, **({"end_time": end_ms} if end_ms is not None and status in ENDED
                                                   else {})}
                    s.execute(self.runs.update().where(self.runs.c.run_uuid == rid).values(**values))
        except MlflowException as e:             # the store wraps the database's refusal
            if not isinstance(e.__cause__, sqlalchemy.exc.IntegrityError):
                raise
            super().write(rid, metrics, tags, status, end_ms)

    def _metrics(self, s, rid: str, ms: List[Metric]) -> None:
        import sqlalchemy

        rows = []
        for m in {(m.key, m.step, m.timestamp, m.value): m for m in ms}.values():
            is_nan, value = self._sanitize(m.value)
            rows.append({"run_uuid": rid, "key": m.key, "value": value, "timestamp": m.timestamp, "step": m.step,
                         "is_nan": is_nan})
        s.execute(self.metrics.insert(), rows)
        newest: Dict[str, Dict[str, Any]] = {}
        for r in rows:
            if r["key"] not in newest or _order(r) > _order(newest[r["key"]]):
                newest[r["key"]] = r
        L = self.latest.c
        have = {k: (st, ts, v) for k, st, ts, v in s.execute(
            sqlalchemy.select(L.key, L.step, L.timestamp, L.value).where(L.run_uuid == rid, L.key.in_(list(newest))))}
        fresh = [r for k, r in newest.items() if k not in have]
        if fresh:
            s.execute(self.latest.insert(), fresh)
        for k, r in newest.items():
            if k in have and _order(r) > have[k]:
                s.execute(self.latest.update().where(L.run_uuid == rid, L.key == k).values(
                    value=r["value"], timestamp=r["timestamp"], step=r["step"], is_nan=r["is_nan"]))


def _order(r: Dict[str, Any]):
    """MLflow's order of a metric's values: the latest is the largest (step, timestamp, value)."""
    return (r["step"], r["timestamp"], r["value"])


def run_name(phase: str, cell: str, seed: Any) -> str:
    """A trial's short run name, whole at the MLflow runs table's default width (issue 22):
    ``plain s0``, ``fancy width=4 s1``, ``search: lowrank lr=0.01 s3``.

    A cell id ``model.kind=fancy,model.width=4`` gives its values in axis order: a
    word alone (``fancy``), a number, a bool or a value another axis of the cell
    shares with its key's last part (``width=4``).  The full cell, seed and phase
    stay in the run's tags (``ablate.cell``, ``ablate.seed``, ``ablate.phase``)."""
    pairs = [p.partition("=") for p in cell.split(",")] if cell != "all" else []
    if any(not eq for _, eq, _ in pairs):          # a value with a comma in it: no safe split, the id as is
        pairs = [("", "=", cell)]
    values = [v for _, _, v in pairs]
    words = []
    for k, _, v in pairs:
        bare = v.replace("_", "").replace("-", "").isalpha() and v.lower() not in ("true", "false", "none")
        words.append(v if not k or (bare and values.count(v) == 1) else f"{k.rsplit('.', 1)[-1]}={v}")
    name = " ".join([*words, f"s{seed}"])
    return name if phase == "final" else f"{phase}: {name}"
