"""Tune's log lines that mislead or bury the one line a user can act on, filtered
at their loggers (``logging.Filter``; Tune has no switch for any of them).

- "Failed to fetch metrics ... result.json": we switch Tune's file loggers off
  (MLflow holds every result), and the warning then lists every trial of a
  healthy sweep as a failure.  Dropped.
- "Trial task failed for trial X" with a traceback of Ray's internals, logged for
  every failed attempt even when the retry succeeds.  Made one line.
- "Saving experiment state to storage ... failed" with a traceback, when Tune's
  background upload of its state lists a file that Tune's next state write then
  renames away (Ray 2.60 writes ``tmp-…`` files beside the state while the
  previous upload may still be copying that folder).  The write that renamed it
  is uploaded by the sync Tune launches right after, so nothing is lost: dropped.
  Any other upload failure is kept, as one line.
- "The `callbacks.on_trial_result` operation took 1.241 s, which may be a performance
  bottleneck" (and "Processing trial results took …, consider reporting results less
  frequently"): Tune times its own steps, the tracker's synchronous store writes
  among them, and on a loaded machine says so every few results, `make demo`
  included.  The user can act on none of it (a trial reports once per epoch; the
  runner's own cost is measured in benchmarks/bench_runner.py): dropped.
"""
from __future__ import annotations

import logging


class _DropMissingResultJson(logging.Filter):
    """Drops Tune's end-of-run "Failed to fetch metrics ... result.json" warning.

    The files are missing because we switched Tune's file loggers off (MLflow
    holds every result); the warning then lists every trial of a healthy sweep
    as a failure.  Other warnings of that logger still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not ("Failed to fetch metrics" in msg and "result.json" in msg)


def _mute_missing_result_json() -> None:
    _once("ray.tune.analysis.experiment_analysis", _DropMissingResultJson)


class _OneLineTrialErrors(logging.Filter):
    """Tune logs every failed trial attempt with a full traceback of Ray's
    internals ("Trial task failed for trial X"), even when the retry then
    succeeds.  One line is what a user can act on; the trial's own error text is
    kept in its MLflow run (``ablate.failure_reason``) when it finally fails."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and "Trial task failed" in str(record.msg):
            err = record.exc_info[1]
            err = getattr(err, "cause", None) or err        # RayTaskError wraps the trial's own exception
            text = " ".join(str(err).split())
            first = (text[:240] + "…") if len(text) > 240 else text
            record.msg = f"{record.getMessage()}: {type(err).__name__}: {first} (retried from its last " \
                         f"checkpoint while max_failures allows)"
            record.args, record.exc_info, record.exc_text = (), None, None
        return True


class _OneLineStateUploadErrors(logging.Filter):
    """Drops the upload that raced with a ``tmp-`` state file (see the module
    docstring); any other failed upload of Tune's state stays, as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not (record.exc_info and "Saving experiment state" in str(record.msg)):
            return True
        err = record.exc_info[1]
        if isinstance(err, FileNotFoundError) and "tmp-" in str(err):
            return False
        text = " ".join(str(err).split())
        record.msg = f"{record.getMessage()} {type(err).__name__}: {text[:300]}"
        record.args, record.exc_info, record.exc_text = (), None, None
        return True


class _DropSlowStepNotes(logging.Filter):
    """Drops Tune's ``warn_if_slow`` notes (ray.tune.utils.util); see the module docstring."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "may be a performance bottleneck" not in record.getMessage()


def _once(logger: str, kind: type) -> None:
    log = logging.getLogger(logger)
    if not any(isinstance(f, kind) for f in log.filters):
        log.addFilter(kind())


def quiet_tune_logs(missing_result_json: bool = True) -> None:
    """Install the filters (idempotent).  ``missing_result_json``: only when Tune's
    file loggers are off, since otherwise a missing result.json is a real problem."""
    if missing_result_json:
        _mute_missing_result_json()
    _once("ray.tune.execution.tune_controller", _OneLineTrialErrors)
    _once("ray.tune.execution.experiment_state", _OneLineStateUploadErrors)
    _once("ray.tune.utils.util", _DropSlowStepNotes)
