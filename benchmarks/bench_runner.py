"""The sweep runner's own cost (issue 13), measured side by side in one process
with Ray started once (as on a running cluster; ``ray.init`` is not counted).

* Overhead: 40 trivial trials (the ``toy`` task, one epoch, no work) through the
  runner (``sweeps.runner.launch.launch``: Tune + MLflow tracking + checkpoints; the
  launch's summary artifacts off, timed separately) vs bare ``Tuner.fit`` over a
  function trainable that runs the same trials (``run_trial`` with a reporter
  that only calls ``tune.report``), same resources (1 CPU per trial, all CPUs),
  ``reuse_actors=True``.  Rounds are interleaved; each side's best round counts.
  Target ≤ 1.5×.  Also: the plain in-process loop, and bare Tune over a no-op
  function (Tune's own floor: its workers import no torch).
* Concurrency: 2 CPU-bound 1-thread trials of about 5 s (digits MLP, 1 thread)
  through one phase with ``max_concurrent: 2`` vs ``1`` (the sequential run
  through the same runner), for the final phase (grid) and the search phase
  (Optuna).  Target ≤ 0.6×.
* Scale: 500 trivial trials through the runner: the per-trial overhead
  (runner − plain loop) / n at 500 vs at 40 (target ≤ 1.2×), the steady cost
  (median interval between trial ends) late vs early in the 500, and the
  driver's resident memory.
"""
from __future__ import annotations

import os
import resource
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Tuple

from .common import Result


def _study(name: str, n: int, **extra):
    from sweeps.language.validate import validate

    raw = {"name": name, "task": "toy", "metric": {"name": "score"}, "seeds": list(range(n)),
           "fixed": {"train.epochs": 1}, "scientific": {"model.kind": ["plain"]}, "max_failures": 0,
           "artifacts": {"summary": False}, **extra}
    return validate(raw, "<bench>")


def _ours(tmp: Path, name: str, n: int, summary: bool = False) -> float:
    """Seconds for one launch of ``n`` trivial trials through the runner."""
    from sweeps.runner.launch import launch

    study = _study(name, n, artifacts={"summary": summary})
    t0 = time.perf_counter()
    out = launch(study, tracking_uri=f"sqlite:///{tmp}/m.db", echo=lambda s: None, verbose=0)
    dt = time.perf_counter() - t0
    assert out["counts"]["finished"] == n, out
    return dt


def _task_trainable(config):
    """What a user would write with bare Tune for the same trials: no tracking, no checkpoints."""
    from ray import tune

    from sweeps.runner.trial import run_trial

    class Bare:
        def report(self, metrics, state=None):
            tune.report(dict(metrics))

        def restore(self):
            return None

        def annotate(self, **info):
            pass

    run_trial("toy", config["cfg"], Bare())


def _noop_trainable(config):
    from ray import tune

    tune.report({"score": 1.0})


def _bare(tmp: Path, fn, configs: List[Dict]) -> float:
    """Seconds for one bare Tuner.fit over ``configs``, with Tune's default settings."""
    from ray import tune

    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("TUNE_")}
    try:
        t0 = time.perf_counter()
        tune.Tuner(tune.with_resources(fn, {"cpu": 1}), param_space={"cfg": tune.grid_search(configs)},
                   tune_config=tune.TuneConfig(reuse_actors=True),
                   run_config=tune.RunConfig(name=f"bare-{uuid.uuid4().hex[:6]}", storage_path=str(tmp / "bare"),
                                             verbose=0)).fit()
        return time.perf_counter() - t0
    finally:
        os.environ.update(saved)


def _loop(n: int) -> float:
    from sweeps.language.expand import final_trials
    from sweeps.runner.trial import LocalReporter, run_trial

    t0 = time.perf_counter()
    for t in final_trials(_study("loop", n)):
        run_trial("toy", t.config, LocalReporter(echo=lambda s: None))
    return time.perf_counter() - t0


def overhead(tmp: Path, quick: bool) -> Tuple[List[Result], Dict[str, float]]:
    from sweeps.language.expand import final_trials

    n, rounds = (12, 1) if quick else (40, 3)
    configs = [t.config for t in final_trials(_study("cfg", n))]
    _ours(tmp, "warmup", 2)                                   # first use: sqlite schema, imports
    _loop(2)
    times: Dict[str, List[float]] = {"ours": [], "bare": [], "noop": [], "loop": []}
    loads = []
    for i in range(rounds):
        loads.append(os.getloadavg()[0])
        times["bare"].append(_bare(tmp, _task_trainable, configs))
        times["ours"].append(_ours(tmp, f"overhead{i}", n))
        times["noop"].append(_bare(tmp, _noop_trainable, configs))
        times["loop"].append(_loop(n))
    best = {k: min(v) / n * 1e3 for k, v in times.items()}
    t_sum = _ours(tmp, "summary", n, summary=True) - min(times["ours"])
    rounds_txt = "; ".join(f"{o / n * 1e3:.0f}/{b / n * 1e3:.0f}" for o, b in zip(times["ours"], times["bare"]))
    note = (f"best of {rounds} interleaved rounds (ours/bare ms per trial: {rounds_txt}); load during rounds "
            f"{min(loads):.1f}-{max(loads):.1f}; plain loop {best['loop']:.1f} ms/trial; bare Tune over a no-op "
            f"function {best['noop']:.0f} ms/trial")
    r = best["ours"] / best["bare"]
    r0 = best["ours"] / best["noop"]
    rows = [Result(f"per-trial cost: {n} trivial toy trials via the sweep runner vs bare Tuner.fit of the same "
                   f"trials (1 CPU each, reuse_actors)", best["ours"], best["bare"], "ms/trial", "ratio <= 1.5", r,
                   r <= 1.5, note=note),
            Result(f"per-trial cost: the same {n} trials via the sweep runner vs bare Tuner.fit of a no-op function "
                   f"(Tune's floor: its workers import no torch)", best["ours"], best["noop"], "ms/trial",
                   "ratio <= 1.5", r0, r0 <= 1.5,
                   note="the toy trial's fresh workers import torch and torch._dynamo (see the notes)"),
            Result(f"launch summary artifacts (table, plot, HTML report on the parent run), {n}-trial launch",
                   t_sum * 1e3, min(times["ours"]) * 1e3, "ms", "-", t_sum / min(times["ours"]), True,
                   note="per launch, not per trial; excluded from the row above (artifacts: {summary: false})")]
    return rows, {"ours": best["ours"], "loop": best["loop"], "n": n}


def _digits_cfg() -> Dict:
    """Digits MLP settings whose trial takes about 5 s on one thread here (in-process,
    warm): t(E) = a + b·E fitted on 2 and 4 epochs (a: data, the final κ; b: an epoch).
    ``$ABLATE_BENCH_EPOCHS`` fixes E instead (to compare two checkouts at equal work)."""
    from sweeps.runner.trial import LocalReporter, run_trial
    from tasks import get_task

    base = {"model.hidden": 2048, "train.threads": 1, "seed": 0}
    if os.environ.get("ABLATE_BENCH_EPOCHS"):
        return {**base, "train.epochs": int(os.environ["ABLATE_BENCH_EPOCHS"])}
    t = {}
    for e in (2, 2, 4):
        t0 = time.perf_counter()
        run_trial("digits", get_task("digits").resolve({**base, "train.epochs": e}), LocalReporter(echo=lambda s: None))
        t[e] = time.perf_counter() - t0
    b = (t[4] - t[2]) / 2
    return {**base, "train.epochs": max(2, round((5.0 - (t[2] - 2 * b)) / b))}


def _phase_s(tmp: Path, study, phase: str) -> Tuple[float, float]:
    """(seconds for one phase through sweeps.runner.phase.run_phase, as launch runs it;
    union / sum of its two trials' run intervals: 0.5 = fully overlapped, 1 = one after the other)."""
    from mlflow.tracking import MlflowClient

    from sweeps import tracking
    from sweeps.runner.tracker import MLflowTracker
    from sweeps.language.expand import final_trials
    from sweeps.runner.phase import run_phase, tune_environment

    tune_environment()
    uri = f"sqlite:///{tmp}/m.db"
    exp = tracking.ensure_experiment(uri, study.experiment)
    state = {"launch": uuid.uuid4().hex[:8]}
    tracker = MLflowTracker(uri, exp, tracking.base_tags(study.name, state["launch"]))
    trials = final_trials(study) if phase == "final" else None
    t0 = time.perf_counter()
    res = run_phase(study, phase, state, tmp / "ray", tracker, False, lambda s: None, 0, trials=trials)
    dt = time.perf_counter() - t0
    assert len(res) == 2 and not any(r["failed"] for r in res), res
    runs = MlflowClient(uri).search_runs([exp], filter_string=f"tags.`ablate.launch` = '{state['launch']}'")
    (a0, a1), (b0, b1) = sorted((r.info.start_time, r.info.end_time) for r in runs)
    union = (a1 - a0) + (b1 - b0) - max(0, min(a1, b1) - max(a0, b0))
    return dt, union / ((a1 - a0) + (b1 - b0))


def concurrency(tmp: Path, quick: bool) -> List[Result]:
    from sweeps.language.validate import validate

    fixed = _digits_cfg()
    fixed.pop("seed")
    if quick:
        fixed["train.epochs"] = max(2, fixed["train.epochs"] // 4)
    rows = []
    for phase in ("final", "search"):
        raw = {"name": f"conc-{phase}", "task": "digits", "metric": {"name": "test_acc"}, "fixed": fixed,
               "scientific": {"model.linear": ["dense"]}, "resources": {"cpu": 1}, "max_failures": 0,
               "seeds": [0, 1] if phase == "final" else [0], "artifacts": {"summary": False}}
        if phase == "search":
            raw.update(nuisance={"optim.lr": {"loguniform": [0.01, 0.2]}},
                       search={"trials_per_cell": 2, "scheduler": "none"})
        t: Dict[int, List[Tuple[float, float, float]]] = {1: [], 2: []}
        for conc in (1, 2) * (1 if quick else 2):
            load = os.getloadavg()[0]
            t[conc].append((*_phase_s(tmp, validate({**raw, "max_concurrent": conc}, "<b>"), phase), load))
        (par, overlap, _), seq = min(t[2]), min(t[1])[0]
        r = par / seq
        runs = ", ".join(f"max_concurrent {c}: " + "/".join(f"{s:.1f}s (load {ld:.1f})" for s, _, ld in v)
                         for c, v in t.items())
        rows.append(Result(f"2 CPU-bound 1-thread digits trials ({fixed['train.epochs']} epochs of a 2048-wide MLP, "
                           f"~5 s each) in the {phase} phase: max_concurrent 2 vs 1 (sequential)", par, seq, "s",
                           "ratio <= 0.6", r, r <= 0.6,
                           note=f"best of {len(t[2])} interleaved each ({runs}); the two trials' runs overlap: "
                                f"union/sum of their intervals {overlap:.2f} (0.5 = fully)"))
    return rows


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _end_intervals(tmp: Path, name: str) -> List[float]:
    """Seconds between consecutive trial ends of the latest launch of ``name`` (MLflow end times)."""
    from analysis.store import load_runs

    runs = load_runs(name, f"sqlite:///{tmp}/m.db", phase="final")
    ends = sorted(runs["end_time"].map(lambda t: t.timestamp()))
    return [b - a for a, b in zip(ends, ends[1:])]


def scale(tmp: Path, quick: bool, at40: Dict[str, float]) -> List[Result]:
    from sweeps.language.expand import final_trials

    n = 120 if quick else 500
    rss0 = _rss_mb()
    load = os.getloadavg()[0]
    t = _ours(tmp, "scale", n)
    rss1, peak = _rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    loop = _loop(n)
    configs = [x.config for x in final_trials(_study("cfg", n))]
    bare, noop = _bare(tmp, _task_trainable, configs), _bare(tmp, _noop_trainable, configs)
    ov_n, ov_40 = (t - loop) / n * 1e3, at40["ours"] - at40["loop"]
    gaps = _end_intervals(tmp, "scale")
    k = len(gaps) // 5
    early, late = statistics.median(gaps[at40["n"]:at40["n"] + k]) * 1e3, statistics.median(gaps[-k:]) * 1e3
    return [
        Result(f"per-trial overhead (runner - plain loop) at {n} trivial trials vs at {at40['n']}", ov_n, ov_40,
               "ms/trial", "ratio <= 1.2", ov_n / ov_40, ov_n / ov_40 <= 1.2,
               note=f"{n} trials in {t:.1f}s ({t / n * 1e3:.0f} ms/trial), loop {loop / n * 1e3:.1f} ms/trial; "
                    f"load {load:.1f}; driver RSS {rss0:.0f} -> {rss1:.0f} MB (+{rss1 - rss0:.0f}), "
                    f"peak {peak:.0f} MB"),
        Result(f"{n} trivial toy trials via the sweep runner vs bare Tuner.fit of the same trials", t / n * 1e3,
               bare / n * 1e3, "ms/trial", "ratio <= 1.5", t / bare, t / bare <= 1.5,
               note=f"one round each, runner first; bare Tune over a no-op function {noop / n * 1e3:.0f} ms/trial "
                    f"({t / noop:.2f}x)"),
        Result(f"steady cost per trial late vs early in the {n}: median interval between trial ends, last {k} vs "
               f"trials {at40['n'] + 1}-{at40['n'] + k}", late, early, "ms", "ratio <= 1.2", late / early,
               late / early <= 1.2, note="no growth with the number of trials already in the phase"),
    ]


def run(quick: bool = False) -> List[Result]:
    import sys

    import ray
    from ray import cloudpickle

    # benchmarks/ is not an installed package: ship this module's trainables by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR",
                 log_to_driver=False)
    tmp = Path(tempfile.mkdtemp(prefix="ablate-bench-runner-"))
    os.environ["ABLATE_HOME"] = str(tmp)
    rows, at40 = overhead(tmp, quick)
    rows += concurrency(tmp, quick)
    rows += scale(tmp, quick, at40)
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
