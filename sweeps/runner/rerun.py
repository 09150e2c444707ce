"""``ablate trial --from-run RUN_ID``: rerun a recorded trial in-process and
compare it with what the store holds.

A run that stopped before its last epoch (ASHA's early stop in a search phase,
or a launch interrupted while the trial ran) is rerun with its recorded config
only up to the epoch it reached, and compared there: training on to
``train.epochs`` would compare a later model with an earlier one.  Stopping
(not shortening ``train.epochs``) keeps epoch-dependent schedules identical.
A FAILED (diverged) run reproduces when the rerun diverges with the same reason.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, Optional, Tuple

from analysis import contract as C

from ..errors import EXIT_FAILED, UsageError


class _StopAt(Exception):
    """Raised by the reporter after the epoch the recorded run reached."""


def _get_run(c, run_id: str, uri: str):
    from mlflow.exceptions import MlflowException

    try:
        return c.get_run(run_id)
    except MlflowException as e:
        if "RESOURCE_DOES_NOT_EXIST" in str(getattr(e, "error_code", "")) or "not found" in str(e).lower():
            raise UsageError(f"--from-run {run_id}: no such run in {uri}") from None
        raise UsageError(f"--from-run {run_id}: cannot read it from {uri} ({str(e).splitlines()[0][:200]})") from None


def _recorded(c, run) -> Tuple[Optional[str], Optional[int], Optional[float]]:
    """(metric, step, value) of the run's last recorded study metric."""
    metric = run.data.tags.get(C.METRIC)
    if not metric:
        return None, None, None
    hist = c.get_metric_history(run.info.run_id, metric)
    if not hist:
        return metric, None, None
    last = max(hist, key=lambda m: (m.step, m.timestamp))
    return metric, int(last.step), float(last.value)


def _reached_epoch(c, run) -> int:
    hist = c.get_metric_history(run.info.run_id, "epoch")
    return int(max((m.step for m in hist), default=0))


def rerun_recorded(run_id: str, tracking_uri: Optional[str]) -> int:
    from tasks import get_task

    from . import tracking

    uri = tracking.open_store(tracking.resolve_uri(tracking_uri, create=False), create=False)
    c = tracking.client(uri)
    run = _get_run(c, run_id, uri)
    tags = run.data.tags
    phase = tags.get(C.PHASE)
    if phase in ("summary", C.PHASE_LAUNCH):
        raise UsageError(f"--from-run {run_id} is the {phase} run of launch {tags.get(C.LAUNCH)}, not a "
                         f"trial; pass the id of one of its trial runs (`ablate report` lists them)")
    if C.TASK not in tags:
        raise UsageError(f"--from-run {run_id} is not a trial run of ablate (it has no ablate.task tag)")
    report_environment(c, run)
    if tags.get(C.IMPORTS):
        import_recorded_code(c, run)
    try:
        task = get_task(tags[C.TASK])
        config = task.resolve(dict(run.data.params))
    except (KeyError, ValueError) as e:
        raise UsageError(f"--from-run {run_id}: its recorded config does not fit task "
                         f"{tags[C.TASK]!r} of this checkout ({str(e).strip(chr(34))[:300]})") from None
    return _rerun_and_compare(c, run, task, config)


def report_environment(c, run) -> None:
    """One line on stderr per way the current environment differs from the run's launch (its provenance,
    sweeps/runner/provenance.py): git commit, diff and untracked files, package versions, CUDA / cuDNN, host,
    device; one line saying they are the same otherwise.  The rerun goes ahead either way."""
    from . import provenance

    parent = run.data.tags.get(C.PARENT_RUN)
    old = provenance.recorded(c, parent) if parent else None
    if old is None:
        print(f"the run's launch recorded no provenance (a launch from before it was stored); its commit: "
              f"{run.data.tags.get(C.GIT_COMMIT)}", file=sys.stderr)
        return
    now, _ = provenance.collect()
    lines = provenance.differences(old, now, provenance.recorded_packages(c, parent),
                                   provenance.versions(provenance.packages()), names=("recorded", "now"))
    for line in lines:
        print(f"differs from the run's launch: {line}", file=sys.stderr)
    if not lines:
        print("environment: the same commit, tree, packages, host and device as the run's launch", file=sys.stderr)


def import_recorded_code(c, run) -> None:
    """Import the sweep file's own code (``imports:``) as the run recorded it: the launch's copies (its parent
    run's ``imports/`` artifacts), so the rerun runs the code the trial ran.  Each file that differs from the
    copy now (edited since, or gone) is named on stderr; without copies the current files are used only if they
    are unchanged (else UsageError naming them)."""
    import json
    import tempfile
    from pathlib import Path

    from ..language.imports import Imported, _import_path, sha256
    from .parent import IMPORTS_ARTIFACT

    records = [Imported.from_json(r) for r in json.loads(run.data.tags[C.IMPORTS])]
    changed = []
    for r in records:
        if not r.path:
            continue
        base = Path(r.path).parent
        for rel, digest in r.files.items():
            now = base / rel
            if not now.exists():
                changed.append(f"{now} (gone)")
            elif sha256(now) != digest:
                changed.append(f"{now} (sha256 {digest[:12]}… when run, {sha256(now)[:12]}… now)")
    copies = None
    parent = run.data.tags.get(C.PARENT_RUN)
    if parent:
        try:
            copies = Path(c.download_artifacts(parent, IMPORTS_ARTIFACT, tempfile.mkdtemp(prefix="ablate-code-")))
        except Exception:  # noqa: BLE001 - an older launch, or a store without artifacts
            copies = None
    if changed:
        how = "rerunning with the launch's recorded copies" if copies else "and the launch kept no copy of them"
        print(f"the code this run imported has changed since: {'; '.join(changed)}; {how}", file=sys.stderr)
        if not copies:
            raise UsageError(f"--from-run {run.info.run_id}: cannot rerun the recorded code: {'; '.join(changed)}")
    for r in records:
        if not r.path:
            continue
        local = copies / r.module / Path(r.path).name if copies else Path(r.path)
        _import_path(local if local.exists() else Path(r.path))
    if not changed:
        print(f"the code this run imported is unchanged ({', '.join(r.module for r in records)})", file=sys.stderr)


def _rerun_and_compare(c, run, task, config: Dict[str, Any]) -> int:
    from tasks.reporting import DivergedError

    from .trial import run_trial

    rid, status, tags = run.info.run_id, run.info.status, run.data.tags
    metric, step, recorded = _recorded(c, run)
    epochs = int(config.get("train.epochs", 0) or 0)
    reached = _reached_epoch(c, run)
    stop_at = reached if status != "FAILED" and 0 < reached < epochs else None
    print(f"rerunning run {rid} ({tags.get(C.CELL)}, seed {config['seed']}, {status}) in-process",
          file=sys.stderr)
    if stop_at:
        why = "was stopped early by ASHA" if tags.get(C.STOPPED_EARLY) == "true" else f"is {status}"
        print(f"run {rid} {why} at epoch {stop_at} of {epochs}: rerunning to epoch {stop_at} and comparing there",
              file=sys.stderr)
    reporter = _StoppingReporter(stop_at)
    try:
        run_trial(task.name, config, reporter)
    except _StopAt:
        pass
    except DivergedError as e:
        return _compare_failure(tags.get(C.FAILURE_REASON), str(e), status)
    if status == "FAILED":
        print(f"recorded FAILED ({(tags.get(C.FAILURE_REASON) or '').splitlines()[:1]}), "
              f"the rerun finished -> DIFFERENT")
        return EXIT_FAILED
    final = reporter.at(step) if step is not None else (reporter.history[-1] if reporter.history else {})
    print(json.dumps(final, indent=1))
    if metric is None or recorded is None:
        print("the run recorded no study metric to compare with")
        return 0
    got = final.get(metric)
    same = got == recorded
    where = f" at epoch {step}" if step is not None else ""
    print(f"{metric}{where}: recorded {recorded!r}, rerun {got!r} -> {'reproduced exactly' if same else 'DIFFERENT'}")
    return 0 if same else EXIT_FAILED


def _compare_failure(recorded: Optional[str], got: str, status: str) -> int:
    if status == "FAILED" and recorded is not None and recorded.strip() == got.strip():
        print(f"recorded FAILED ({recorded}); the rerun failed the same way -> reproduced exactly")
        return 0
    print(f"recorded {status}{f' ({recorded})' if recorded else ''}; the rerun diverged ({got}) -> DIFFERENT")
    return EXIT_FAILED


class _StoppingReporter:
    """LocalReporter that stops the trial after epoch ``stop_at`` (None: never)."""

    def __init__(self, stop_at: Optional[int]):
        from .trial import LocalReporter

        self._inner = LocalReporter()
        self.stop_at = stop_at

    @property
    def history(self):
        return self._inner.history

    def report(self, metrics, state=None) -> None:
        self._inner.report(metrics, state)
        if self.stop_at is not None and int(metrics.get("epoch", 0)) >= self.stop_at:
            raise _StopAt()

    def restore(self):
        return self._inner.restore()

    def annotate(self, **info) -> None:
        self._inner.annotate(**info)

    def at(self, step: int) -> Dict[str, float]:
        for h in self.history:
            if int(h.get("epoch", -1)) == step:
                return h
        return self.history[-1] if self.history else {}
