"""Training-loop glue shared by all tasks: runtime set-up (threads, seeds,
determinism, device), a checkpointing epoch loop, and small data helpers.

Why not a library loop (Lightning, Ignite, Ray Train's loop): tasks must run
identically in-process (`ablate trial`) and inside Ray Tune, resume exactly
from a checkpoint including every RNG state (every epoch, or on the sweep
reporter's time-based cadence), and report through the
project's reporter protocol.  The loop is ~60 lines; a framework would add a
dependency and hide the RNG handling that exact reproduction depends on.
"""
from __future__ import annotations

import math
import os
import random
import time
from typing import Any, Callable, Dict, Optional

import numpy as np
import torch

from .cost import FitProbe
from .reporting import DivergedError, Reporter


def setup_runtime(config: Dict[str, Any]) -> torch.device:
    """Threads, determinism and seeds from the config; returns the device."""
    torch.set_num_threads(int(config.get("train.threads", 1)))
    if config.get("train.deterministic", True):
        # cuBLAS needs this for deterministic matmuls; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    seed_everything(int(config.get("seed", 0)))
    want = config.get("train.device", "auto")
    if want == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is visible to this trial "
                           "(set resources.gpu > 0 in the sweep file)")
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(want)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(generator: Optional[torch.Generator] = None) -> Dict[str, Any]:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:
        st["generator"] = generator.get_state()
    return st


def set_rng_state(st: Dict[str, Any], generator: Optional[torch.Generator] = None) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
    if generator is not None and "generator" in st:
        generator.set_state(st["generator"])


def dist_info() -> tuple[int, int]:
    """(rank, world size) of a data-parallel trial; (0, 1) otherwise."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _average_gradients_before_step(optimizer: torch.optim.Optimizer, world: int) -> None:
    """Make ``optimizer.step`` all-reduce (average) gradients first.

    Why not DistributedDataParallel: a task's closures call its own model
    object, so wrapping it would need every task to know about DDP.  Averaging
    the gradients at the optimizer is the same synchronous data parallelism
    (identical weights on every rank, one step per global batch) for any task
    that trains through ``fit`` and shards batches with ``batches``; it only
    forgoes DDP's overlap of communication with the backward pass.
    """
    import torch.distributed as dist

    step = optimizer.step

    def synced_step(*args, **kwargs):
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                    p.grad.div_(world)
        return step(*args, **kwargs)

    optimizer.step = synced_step


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fit(*, model: torch.nn.Module, optimizer: torch.optim.Optimizer, epochs: int,
        train_epoch: Callable[[int], Dict[str, float]], evaluate: Callable[[int], Dict[str, float]],
        reporter: Reporter, scheduler: Any = None, generator: Optional[torch.Generator] = None,
        loss_key: str = "train_loss", extra_state: Optional[Dict[str, Any]] = None) -> Dict[str, float]:
    """Run ``epochs`` epochs, resuming from the reporter's checkpoint if any.

    Each epoch: ``train_epoch(epoch)`` → metrics incl. ``loss_key``; a NaN/inf
    loss raises DivergedError; ``evaluate(epoch)`` → metrics; then one report
    with epoch number and seconds per epoch.  The report carries a full
    checkpoint (model, optimizer, scheduler, every RNG) so a killed trial
    resumes bit-exactly: after the last epoch always, and after the others
    when the reporter's optional ``wants_checkpoint(epoch)`` says so (the
    sweep's reporter checkpoints by elapsed time and at ASHA's rungs, see
    sweeps/runner/trainable.py); a reporter without it gets one every epoch.
    """
    start, last = 0, {}
    rank, world = dist_info()
    if world > 1:
        _average_gradients_before_step(optimizer, world)
        reporter.annotate(world_size=world)
    state = reporter.restore()
    if state:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler") is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], generator)
        start, last = int(state["epoch"]), dict(state.get("metrics", {}))
        if extra_state is not None and "extra" in state:
            extra_state.update(state["extra"])
    wants = getattr(reporter, "wants_checkpoint", None)
    cost = FitProbe(model) if start < epochs else None      # FLOPs, memory, latency once per attempt (tasks/cost.py)
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        metrics = dict(train_epoch(epoch))
        loss = metrics.get(loss_key)
        if loss is not None and not math.isfinite(loss):
            raise DivergedError(f"{loss_key} became {loss} at epoch {epoch + 1}")
        if scheduler is not None:
            scheduler.step()
        seconds = time.perf_counter() - t0
        if cost is not None:
            cost.done(optimizer, reporter, epochs - epoch, seconds)
            cost = None
        metrics.update(evaluate(epoch))
        metrics.update({"epoch": epoch + 1, "epoch_seconds": seconds})
        ckpt = None
        if wants is None or epoch + 1 == epochs or wants(epoch + 1):
            ckpt = _checkpoint(model, optimizer, scheduler, generator, epoch + 1, metrics, extra_state)
        reporter.report(metrics, ckpt)
        last = metrics
    return last


def _checkpoint(model, optimizer, scheduler, generator, epoch: int, metrics: Dict[str, float],
                extra_state: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Everything a resumed trial needs to continue bit-exactly after ``epoch``."""
    ckpt = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "rng": rng_state(generator), "epoch": epoch, "metrics": metrics}
    if extra_state is not None:
        ckpt["extra"] = dict(extra_state)
    return ckpt


def batches(n: int, batch_size: int, generator: Optional[torch.Generator], shuffle: bool = True):
    """Index batches over ``n`` rows (a DataLoader is overkill for in-memory tensors).

    In a data-parallel trial every rank draws the same permutation (same seed)
    and takes its slice ``rank::world`` of each global batch, so the global
    batch size and the number of steps stay those of the config.
    """
    rank, world = dist_info()
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        if world > 1:
            if len(idx) < world:
                continue            # every rank skips the same short tail batch
            idx = idx[rank::world]
        yield idx


def stream_seed(seed: int, stream: str) -> int:
    """63-bit seed of the named random stream (``"model"``, ``"batches"``, ...) of trial ``seed``.

    numpy.random.SeedSequence(seed, spawn_key=words of SHA-256(stream)) → one
    uint64 → top 63 bits (fits torch.manual_seed and numpy).  Why not
    ``seed`` itself for every stream: torch.manual_seed(s) and
    torch.Generator().manual_seed(s) start the same Mersenne-Twister state, so
    the batch order and the weight init would read the same bits, and a model
    that draws more numbers would shift a shared stream.  SeedSequence hashes
    (seed, key) so distinct streams are independent; SHA-256 (not ``hash()``,
    which Python salts per process) keeps the key stable across runs and machines.
    """
    import hashlib

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(stream, str) or not stream:
        raise ValueError(f"stream must be a non-empty string naming the random stream, got {stream!r}")
    key = np.frombuffer(hashlib.sha256(stream.encode("utf-8")).digest(), dtype="<u4")
    ss = np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
