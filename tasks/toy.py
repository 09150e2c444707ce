"""A synthetic task for checking the platform itself (not from a paper).

The "model" is one scalar x moved by gradient steps towards 0.3 on
f(x) = (x − 0.3)² + noise; an epoch takes ``train.sleep`` seconds.  It runs
in milliseconds, so it measures the platform's own per-trial overhead
(benchmarks/bench_platform.py), and its fault knobs let tests and cluster
smoke checks inject the failures a sweep must survive:

* ``fault.kind: nan`` — the loss becomes NaN at ``fault.epoch`` (a divergence);
* ``fault.kind: kill`` — the trial's process SIGKILLs itself at ``fault.epoch``
  the first time (a marker file in ``fault.dir`` makes the retry succeed);
* ``fault.kind: error`` — raise RuntimeError at ``fault.epoch`` every time.

With ``fault.dir`` set, every (re)start of a trial appends a line to
``fault.dir/starts.log``, so tests can prove finished trials were not rerun.

Known answers for the statistics (a sweep whose true effects are set by hand):

* ``model.shift`` is added to the score: the true effect of a cell;
* ``eval.noise`` is the SD of a Gaussian offset added to the score, one draw per
  trial from a generator seeded by the trial seed and the trial's settings
  (SHA-256 via tasks.common.stream_seed), so a rerun or a resumed trial gets the
  same number and two cells get independent draws at one seed;
* ``eval.noise_shared`` is the share of that variance common to every cell at
  one seed (what a paired test exploits: ρ between cells);
* ``model.label`` changes nothing: two cells that differ only in it have the same
  true score (a null comparison).
"""
from __future__ import annotations

from typing import Any, Dict

from .schema import Param, TaskSpec

SPEC = TaskSpec(
    name="toy",
    description="synthetic quadratic objective for platform checks (overhead, faults)",
    paper="none (platform self-test)",
    params={
        "model.x0": Param(float, 1.0, "starting point", low=-100.0, high=100.0),
        "model.kind": Param(str, "plain", "a categorical axis for grid tests", choices=("plain", "fancy")),
        "model.width": Param(int, 4, "a conditional integer axis", low=1, high=1024,
                             when={"model.kind": ("fancy",)}),
        "optim.lr": Param(float, 0.1, "step size", low=0.0, high=10.0),
        "train.epochs": Param(int, 3, "epochs", low=1, high=100000),
        "train.sleep": Param(float, 0.0, "seconds of fake work per epoch", low=0.0, high=3600.0),
        "fault.kind": Param(str, "none", "failure to inject", choices=("none", "nan", "kill", "error")),
        "fault.epoch": Param(int, 2, "epoch at which the fault fires", low=1, high=100000),
        "fault.dir": Param(str, "", "directory for the kill-once marker files"),
        "model.shift": Param(float, 0.0, "true effect added to the score", low=-1e6, high=1e6),
        "model.label": Param(str, "", "a name with no effect on the score (cells that differ only here are nulls)"),
        "eval.noise": Param(float, 0.0, "SD of the seed's Gaussian offset added to the score", low=0.0, high=1e6),
        "eval.noise_shared": Param(float, 0.0, "share of the noise variance common to all cells at one seed",
                                   low=0.0, high=1.0),
    },
    metrics={"score": "max", "train_loss": "min"},
    run="tasks.toy:run",
    smoke={"train.epochs": 2},
)


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    import os
    import signal
    import time
    from pathlib import Path

    import torch

    from .common import fit, setup_runtime

    setup_runtime(cfg)
    if cfg["fault.dir"]:
        Path(cfg["fault.dir"]).mkdir(parents=True, exist_ok=True)
        with open(Path(cfg["fault.dir"]) / "starts.log", "a") as f:
            f.write(f"seed={cfg['seed']} kind={cfg['model.kind']} pid={os.getpid()}\n")
    x = torch.nn.Parameter(torch.tensor([cfg["model.x0"]]))
    model = torch.nn.Module()
    model.x = x
    opt = torch.optim.SGD([x], lr=cfg["optim.lr"])
    width = cfg.get("model.width", 1)
    reporter.annotate(n_params=width, data_source="synthetic")
    offset = cfg.get("model.shift", 0.0) + _noise(cfg)

    def train_epoch(epoch: int) -> Dict[str, float]:
        if cfg["train.sleep"]:
            time.sleep(cfg["train.sleep"])
        if cfg["fault.kind"] != "none" and epoch + 1 == cfg["fault.epoch"]:
            if cfg["fault.kind"] == "nan":
                return {"train_loss": float("nan")}
            if cfg["fault.kind"] == "error":
                raise RuntimeError(f"injected error at epoch {epoch + 1}")
            marker = Path(cfg["fault.dir"] or ".") / "markers" / f"killed-seed{cfg['seed']}-{cfg.get('model.kind')}-{cfg.get('model.width', 0)}"
            if not marker.exists():
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        loss = (x - 0.3).pow(2).sum() + 0.01 * torch.randn(()) ** 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"train_loss": float(loss.detach())}

    def evaluate(epoch: int) -> Dict[str, float]:
        return {"score": float(-(x.detach() - 0.3).abs().sum()) + 0.001 * width + offset}

    return fit(model=model, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter)


# Keys that do not make a trial's setting: the platform's own, the faults, and the noise knobs themselves
# (so changing eval.noise rescales the same draws instead of drawing new ones).
_NOT_SETTING = ("seed", "train.threads", "train.sleep", "train.device", "train.deterministic")
_NOT_SETTING_PREFIX = ("fault.", "eval.")


def _noise(cfg: Dict[str, Any]) -> float:
    """eval.noise × (√s·z_seed + √(1 − s)·z_trial), s = eval.noise_shared: z_seed from the seed alone (shared by
    every cell), z_trial from the seed and the trial's settings. numpy, not torch: one draw, no global state."""
    import json

    import numpy as np

    from .common import stream_seed

    sd, shared = float(cfg.get("eval.noise", 0.0)), float(cfg.get("eval.noise_shared", 0.0))
    if sd == 0.0:
        return 0.0
    setting = {k: v for k, v in cfg.items() if k not in _NOT_SETTING and not k.startswith(_NOT_SETTING_PREFIX)}
    z_seed = np.random.default_rng(stream_seed(cfg["seed"], "toy.noise")).standard_normal()
    z_trial = np.random.default_rng(stream_seed(cfg["seed"], "toy.noise|" + json.dumps(
        setting, sort_keys=True, default=str))).standard_normal()
    return float(sd * (np.sqrt(shared) * z_seed + np.sqrt(1.0 - shared) * z_trial))
