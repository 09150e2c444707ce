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


def test_tunes_slow_step_notes_are_dropped_and_its_other_warnings_pass():
    """Tune's own words (warn_if_slow's message and the results one), logged where Tune logs them (issue 27:
    they showed in `make demo` on a loaded machine, and the user can act on none of them)."""
    from ray.tune.utils.util import warn_if_slow

    quiet_tune_logs()
    log = logging.getLogger("ray.tune.utils.util")
    keep = _Keep()
    log.addHandler(keep)
    try:
        log.warning(warn_if_slow.DEFAULT_MESSAGE.format(name="callbacks.on_trial_result", duration=1.241))
        log.warning("Processing trial results took 1.242 s, which may be a performance bottleneck. Please consider "
                    "reporting results less frequently to Ray Tune.")
        log.warning("Something else Tune says")
    finally:
        log.removeHandler(keep)
    assert [r.getMessage() for r in keep.records] == ["Something else Tune says"]
