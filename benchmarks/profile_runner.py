"""Where the driver's time goes in one launch of trivial trials (docs/benchmarks_notes.md).

    python -m benchmarks.profile_runner [--trials 40]

Starts a local Ray (2 CPUs), runs one warm-up launch, then profiles one launch
of ``--trials`` one-epoch ``toy`` trials (summary artifacts off) with cProfile
and prints the wall time and a Markdown table of the driver's cumulative time
per part.  Time the driver spends in ``ray.wait`` is time the trials (and the
workers' start-up) take; everything else is the driver's own work.  To profile
another checkout, run it with ``PYTHONPATH`` pointing there.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Callable, List, Tuple

PARTS: List[Tuple[str, Callable[[str, str], bool]]] = [
    ("driver waiting in ray.wait (workers starting, trials running)",
     lambda f, n: n == "wait" and f.endswith("_private/worker.py")),
    ("MLflow tracker, trial start", lambda f, n: f.endswith("sweeps/runner/tracker.py") and n == "on_trial_start"),
    ("MLflow tracker, results", lambda f, n: f.endswith("sweeps/runner/tracker.py") and n == "on_trial_result"),
    ("MLflow tracker, trial end", lambda f, n: f.endswith("sweeps/runner/tracker.py") and n == "on_trial_complete"),
    ("sqlite commits (reads and writes)", lambda f, n: "commit" in n and "sqlite3" in n),
    ("Tune experiment snapshots, calls", lambda f, n: n == "sync_up_experiment_state"),
    ("Tune experiment snapshots, written", lambda f, n: n == "save_to_dir" and f.endswith("tune_controller.py")),
    ("Tune trial generation (variant generator)", lambda f, n: n == "_maybe_update_trial_queue"),
    ("launch set-up and close (store, parent run)",
     lambda f, n: n in ("open_parent", "end_parent", "open_store", "ensure_experiment", "_launch_tags")),
]


def profile(trials: int) -> Tuple[float, List[Tuple[str, float, int]]]:
    """(wall seconds, [(part, cumulative seconds, calls)]) of one launch of ``trials`` trials."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an integer >= 1, got {trials!r}")
    import ray

    from sweeps.runner.launch import launch
    from sweeps.language.validate import validate

    tmp = Path(tempfile.mkdtemp(prefix="ablate-profile-"))
    os.environ["ABLATE_HOME"] = str(tmp)
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)

    def study(name, n):
        return validate({"name": name, "task": "toy", "metric": {"name": "score"}, "seeds": list(range(n)),
                         "fixed": {"train.epochs": 1}, "scientific": {"model.kind": ["plain"]}, "max_failures": 0,
                         "artifacts": {"summary": False}}, "<profile>")

    uri = f"sqlite:///{tmp}/m.db"
    launch(study("warmup", trials), tracking_uri=uri, echo=lambda s: None, verbose=0)
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    launch(study("profiled", trials), tracking_uri=uri, echo=lambda s: None, verbose=0)
    pr.disable()
    wall = time.perf_counter() - t0
    stats = pstats.Stats(pr).stats
    out = []
    for label, match in PARTS:
        hits = [(v[3], v[1]) for (f, _, n), v in stats.items() if match(f, n)]
        out.append((label, sum(h[0] for h in hits), sum(h[1] for h in hits)))
    return wall, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    args = ap.parse_args(argv)
    wall, parts = profile(args.trials)
    print(f"one launch of {args.trials} trivial trials: {wall:.2f} s under cProfile "
          f"({wall / args.trials * 1e3:.0f} ms/trial); load {os.getloadavg()[0]:.1f}")
    print("| part of the driver's time | seconds | calls |\n|---|---|---|")
    for label, secs, calls in parts:
        print(f"| {label} | {secs:.3f} | {calls} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
