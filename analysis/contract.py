"""The interface between the runner and analysis: what a launch writes into the
MLflow store and analysis reads back, and the analysis settings both sides
must agree on.

The runner (sweeps/runner) writes every run's tags under these names and
analysis (store.py, report.py, the looks replay) reads them; the sweep-file
language validates ``analysis:`` against the same choices and defaults.  One
module, imported by both sides, so the two can never drift apart (before
issue 20 the names were string literals on both sides and the settings were
copied, with a test keeping the copies equal).  It imports nothing: the
sweep-file language must load in well under 2 s.

Stored format: MLflow keeps tags and params as strings.  JSON-valued tags are
marked below.  A run's params are its flat trial config (``params.<key>``).
"""
from __future__ import annotations

# ---------------------------------------------------------------- tags every run of a launch carries
SWEEP = "ablate.sweep"                   # the study name (its MLflow experiment unless tracking.experiment)
LAUNCH = "ablate.launch"                 # the launch id, "YYYYmmdd-HHMMSS-xxxxxx"; scopes every look-up
GIT_COMMIT = "ablate.git_commit"         # the commit the run's code came from ("-dirty": edited tree)
LAUNCH_GIT_COMMIT = "ablate.launch_git_commit"      # a run started by a --resume from another commit
RESUMED_GIT_COMMIT = "ablate.resumed_git_commit"    # a run continued by a --resume from another commit
DRIVER_HOST = "ablate.driver_host"
USER = "ablate.user"
TASK = "ablate.task"
METRIC = "ablate.metric"                 # the study metric
MODE = "ablate.mode"                     # "max" | "min"
BASELINE_CELL = "ablate.baseline_cell"   # cell id of the baseline ("" = none)
SMOKE = "ablate.smoke"                   # "true" | "false"
PLOT = "ablate.plot"                     # JSON: the sweep file's plot section
METRIC_MODES = "ablate.metric_modes"     # JSON: {metric: "max" | "min"} of the task
ANALYSIS = "ablate.analysis"             # JSON: the analysis section with its defaults filled
PAPER = "ablate.paper"
LOOKS = "ablate.looks"                   # JSON: cumulative seeds per look (adaptive seeds only)
LOOKS_CORRECTION = "ablate.looks_correction"   # the correction the looks were decided with (absent: bonferroni)
SEARCH_SEED = "ablate.search_seed"       # the seed the nuisance search ran on (launches with nuisance axes)
PROVENANCE = "ablate.provenance"          # JSON, on the parent run: commit, tree hash, packages, host, device

# ---------------------------------------------------------------- tags of one trial's run
PHASE = "ablate.phase"                   # one of PHASES
CELL = "ablate.cell"                     # "axis=value,axis=value" (CELL_ALL: a grid of one cell)
CELL_INDEX = "ablate.cell_index"         # the cell's position in the grid (table order)
SEED = "ablate.seed"
TRIAL_KEY = "ablate.trial_key"           # "<cell>|seed=<n>": one run per key and launch
TRIAL_ID = "ablate.trial_id"             # Tune's trial id (changes across --resume)
LOOK = "ablate.look"                     # 0-based look of an adaptive design
N_PARAMS = "ablate.n_params"             # annotated by the task (reporter.annotate)
HOSTNAME = "ablate.hostname"             # annotated by the trainable: the node the trial ran on
NODE_ID = "ablate.node_id"               # annotated by the trainable: Ray's node id
NODE_GIT_COMMIT = "ablate.node_git_commit"   # annotated by the trainable: the commit of the trial node's checkout
FAILURE_REASON = "ablate.failure_reason"
FAILURE_KIND = "ablate.failure_kind"     # one of FAILURE_KINDS
IMPORTS = "ablate.imports"               # JSON: the sweep file's imports (module, path, SHA-256 per file)
RETRIES = "ablate.retries"               # retries of a crashed trial so far
STOPPED_EARLY = "ablate.stopped_early"   # "true": ASHA stopped it before its last epoch
RESUMED_FROM_EPOCH = "ablate.resumed_from_epoch"
# growing a launch (ablate run --retry-failed / --extend): the phase ("retry<k>", "extend<k>") that made this
# run of its trial key, and on the run it replaced the id of the new run; analysis/store.py drops superseded runs
ADDED_IN = "ablate.added_in"
SUPERSEDED_BY = "ablate.superseded_by"
# annotated by tasks/cost.py in every trial that trains through tasks.common.fit (issue 24); per sample:
FLOPS_FWD = "ablate.flops_fwd"           # FLOPs of one forward (FlopCounterMode)
FLOPS_STEP = "ablate.flops_step"         # FLOPs of one training step (forward + backward)
FLOPS_NOTE = "ablate.flops_note"         # what FlopCounterMode could not count (FFT ops, custom Functions)
PEAK_MEM_MB = "ablate.peak_mem_mb"       # peak memory of one training step (MiB; CUDA allocator or CPU saved tensors)
LATENCY_MS_B1 = "ablate.latency_ms_b1"   # median inference latency at batch 1 (ms)
LATENCY_MS_BATCH = "ablate.latency_ms_batch"   # ... at the task's batch size (ms)
THREADS = "ablate.threads"               # torch threads the latencies were timed with
COST_NOTE = "ablate.cost_note"           # why a cost measurement is missing
COST_TAGS = (FLOPS_FWD, FLOPS_STEP, PEAK_MEM_MB, LATENCY_MS_B1, LATENCY_MS_BATCH, THREADS)
ANNOTATION_PREFIX = "ablate."            # a task's reporter.annotate(name=value) becomes tag ablate.<name>

# ---------------------------------------------------------------- MLflow's own tags that ablate sets or reads
PARENT_RUN = "mlflow.parentRunId"        # nests a launch's trials under its parent run in the UI
RUN_NAME = "mlflow.runName"
SOURCE_NAME = "mlflow.source.name"
MLFLOW_USER = "mlflow.user"
SOURCE_VALUE = "ablate"                  # the value of SOURCE_NAME on ablate's runs
EXPERIMENT_KIND = "mlflow.experimentKind"  # MLflow 3 opens "custom_model_development" in the classic runs view
EXPERIMENT_KIND_VALUE = "custom_model_development"

# ---------------------------------------------------------------- tag values
PHASE_SEARCH, PHASE_FINAL, PHASE_LAUNCH = "search", "final", "launch"
PHASES = (PHASE_SEARCH, PHASE_FINAL, PHASE_LAUNCH)
FAILURE_DIVERGED, FAILURE_ERROR, FAILURE_SETUP = "diverged", "error", "setup"
# diverged: the loss became NaN/inf; setup: an exception while the trial built its data or model (a bug, not
# retried); error: anything else (retried under max_failures, e.g. a crashed worker)
FAILURE_KINDS = (FAILURE_DIVERGED, FAILURE_ERROR, FAILURE_SETUP)
FAILURES_FOR_GOOD = (FAILURE_DIVERGED, FAILURE_SETUP)   # a rerun of the same code fails the same way
CELL_ALL = "all"

# ---------------------------------------------------------------- the analysis section of a sweep file
CORRECTIONS = ("holm", "bonferroni", "bh", "none", "dunnett")   # dunnett: max-t step-down over the shared
                                                                  # baseline, Welch-calibrated (fixed seeds only)
LOOKS_CORRECTIONS = ("holm", "bonferroni")      # the group-sequential designs (analysis/stats/_sequential.py)
TESTS = ("welch", "paired")
SPENDINGS = ("obrien_fleming", "pocock", "hsd")
HSD_GAMMA = -4.0                                # gsDesign's default sfHSD parameter
HSD_RANGE = (-20.0, 20.0)                       # beyond it the HSD family is numerically all-or-nothing
ANALYSIS_KEYS = ("alpha", "correction", "test", "min_effect", "spending", "futility", "hsd_gamma")
DEFAULT_ANALYSIS = {"alpha": 0.05, "correction": "holm", "test": "welch", "min_effect": None,
                    "spending": "obrien_fleming", "futility": None, "hsd_gamma": None}


def column(tag: str) -> str:
    """The column of ``tag`` in ``mlflow.search_runs``' frame: ``tags.<tag>``."""
    return f"tags.{tag}"


def equals(tag: str, value: str) -> str:
    """An MLflow search filter ``tags.`<tag>` = '<value>'``."""
    return f"tags.`{tag}` = '{value}'"


def plain_text(text: str) -> str:
    """``text`` without terminal escape sequences (ANSI colours, cursor moves, OSC titles): Ray colours the
    error files it writes (``\\x1b[36mray::ImplicitFunc.train()\\x1b[39m``), and a FAILURE_REASON is stored
    and shown as plain text (the tracker strips them before writing; readers again, for older stores)."""
    import re       # imported here: this module imports nothing at load time

    return re.sub(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]*[0-~])", "", text)
