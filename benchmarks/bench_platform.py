"""Platform benchmarks (platform-core issue, acceptance 5).

* One digits training epoch (1437 rows, batch 64, SGD) of the CD-MLP (B = 4)
  vs the dense MLP, timed alternately in one process. Target ≤ 2× (the paper's
  NumPy CD-MLP epoch took 1–2 s vs 0.02 s dense, 50–100×).

The runner's own cost per trial (vs bare Ray Tune), its concurrency and its
scaling are in benchmarks/bench_runner.py (issue 13).
"""
from __future__ import annotations

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


def run(quick: bool = False) -> list[Result]:
    return [_digits_epoch(quick)]


if __name__ == "__main__":
    for r in run():
        print(r)
