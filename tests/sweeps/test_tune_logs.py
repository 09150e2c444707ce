"""The filters on Tune's loggers (sweeps.runner.tune_logs): what they drop, what they
shorten to one line, and what they leave alone."""
from __future__ import annotations

import logging

import pytest

from sweeps.runner.tune_logs import quiet_tune_logs

STATE = "ray.tune.execution.experiment_state"


class _Keep(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def state_log():
    quiet_tune_logs()
    quiet_tune_logs()                                   # idempotent
    log = logging.getLogger(STATE)
    keep = _Keep()
    log.addHandler(keep)
    yield log, keep
    log.removeHandler(keep)


def _log_failed_upload(log, err):
    try:
        raise err
    except OSError:
        log.error("Saving experiment state to storage at '/h/ray/x-final' failed with exception: ", exc_info=True)


def test_upload_that_raced_with_a_tmp_state_file_is_dropped(state_log):
    log, keep = state_log
    _log_failed_upload(log, FileNotFoundError(
        2, "Failed to open local file '/tmp/ray/session/artifacts/x/driver_artifacts/.27a-tmp-basic-variant-"
           "state-2026-12-01_12-50-45.json'. Detail: [errno 2] No such file or directory"))
    assert keep.records == []


def test_any_other_failed_upload_stays_as_one_line(state_log):
    log, keep = state_log
    _log_failed_upload(log, PermissionError(13, "Permission denied: '/h/ray/x-final/experiment_state.json'"))
    _log_failed_upload(log, FileNotFoundError(2, "No such file: '/h/ray/x-final/searcher-state.pkl'"))
    assert len(keep.records) == 2
    for r in keep.records:
        assert r.exc_info is None and "\n" not in r.getMessage()
    assert "PermissionError" in keep.records[0].getMessage() and "experiment_state.json" in keep.records[0].getMessage()
    assert "searcher-state.pkl" in keep.records[1].getMessage()
    assert sum(type(f).__name__ == "_OneLineStateUploadErrors" for f in log.filters) == 1


def test_other_records_of_that_logger_pass_untouched(state_log):
    log, keep = state_log
    log.warning("Saving the experiment state took ~3.00 seconds")
    assert [r.getMessage() for r in keep.records] == ["Saving the experiment state took ~3.00 seconds"]
