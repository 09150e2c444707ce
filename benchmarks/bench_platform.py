"""Platform benchmarks (platform-core issue, acceptance 5).

* One digits training epoch (1437 rows, batch 64, SGD) of the CD-MLP (B = 4)
  vs the dense MLP, timed alternately in one process. Target ≤ 2× (the paper's
  NumPy CD-MLP epoch took 1–2 s vs 0.02 s dense, 50–100×).
* The platform's overhead per trial: 40 trivial trials (the `toy` task, one
  epoch, no work) through the sweep runner (Ray Tune + MLflow tracking +
  per-epoch checkpoint) vs the same 40 `run_trial` calls in a plain Python loop.
  Measured with Ray already started, as on a running cluster; the one-off
  ``ray.init`` is reported separately. Target ≤ 100 ms per trial.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from .common import Result, interleaved_ms, ratio_result


def _digits_epoch(quick: bool) -> Result:
    import torch
    import torch.nn.functional as F

    from tasks.common import batches, setup_runtime
    from tasks.digits import build_model, load_data

    cfg_base = {"model.hidden": 64, "model.dropout": 0.0, "seed": 0, "train.threads": 1}
    setup_runtime(cfg_base)
    x, y, *_ = load_data()
    fns = {}
    for name, extra in (("cd", {"model.linear": "cdlinear", "model.block_size": 4}), ("dense", {"model.linear": "dense"})):
        model = build_model({**cfg_base, **extra})
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        gen = torch.Generator().manual_seed(0)

        def epoch(model=model, opt=opt, gen=gen):
            for idx in batches(len(x), 64, gen):
                loss = F.cross_entropy(model(x[idx])[:, :10], y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()

        fns[name] = epoch
    t = interleaved_ms(fns, repeat=5 if quick else 15, warmup=2)
    return ratio_result("digits training epoch: CD-MLP (B=4) vs dense MLP (1437 rows, batch 64, 1 thread)",
                        t["cd"], t["dense"], "ms", max_ratio=2.0)


def _overhead(quick: bool) -> list[Result]:
    import ray

    from sweeps.run import launch
    from sweeps.spec import validate
    from sweeps.trial import LocalReporter, run_trial

    n = 12 if quick else 40
    tmp = Path(tempfile.mkdtemp(prefix="ablate-bench-"))
    os.environ["ABLATE_HOME"] = str(tmp)
    raw = {"name": "overhead", "task": "toy", "metric": {"name": "score"}, "seeds": list(range(n)),
           "fixed": {"train.epochs": 1}, "scientific": {"model.kind": ["plain"]}, "max_failures": 0}
    study = validate(raw, "<bench>")
    t0 = time.perf_counter()
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    t_init = time.perf_counter() - t0
    # warm-up sweep: first-use costs (sqlite schema creation, imports in workers) are not per-trial overhead
    launch(validate({**raw, "name": "warmup", "seeds": [0, 1]}, "<bench>"), tracking_uri=f"sqlite:///{tmp}/m.db",
           echo=lambda s: None, verbose=0)
    t0 = time.perf_counter()
    summary = launch(study, tracking_uri=f"sqlite:///{tmp}/m.db", echo=lambda s: None, verbose=0)
    t_sweep = time.perf_counter() - t0
    assert summary["counts"]["finished"] == n, summary
    from sweeps.expand import final_trials

    t0 = time.perf_counter()
    for t in final_trials(study):
        run_trial("toy", t.config, LocalReporter(echo=lambda s: None))
    t_loop = time.perf_counter() - t0
    per_trial = (t_sweep - t_loop) / n * 1e3
    return [
        Result(f"platform overhead per trial: {n} trivial trials via the sweep runner (Ray Tune + MLflow) "
               f"vs a plain loop", per_trial, t_loop / n * 1e3, "ms/trial", "overhead <= 100 ms/trial",
               (t_sweep / n * 1e3) / max(t_loop / n * 1e3, 1e-9), per_trial <= 100.0,
               note=f"sweep {t_sweep:.1f}s, loop {t_loop:.2f}s; ray.init once {t_init:.1f}s (not counted)"),
    ]


def run(quick: bool = False) -> list[Result]:
    return [_digits_epoch(quick), *_overhead(quick)]


if __name__ == "__main__":
    for r in run():
        print(r)
