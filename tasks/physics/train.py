"""Training and evaluation of the physics task's HNN systems (see the package docstring)."""
from __future__ import annotations

import copy
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch

from ..common import count_parameters, fit, setup_runtime, stream_seed
from ..datasets import DataOrder, data_generator
from .models import VectorField, rk4_rollout
from .settings import HNN_SYSTEMS, resolved
from .systems import energy_fn, held_out_mask, load_or_generate

DATA_KEYS = ("trajectories", "points", "t_end", "r_min", "r_max", "orbit_noise", "noise", "test_fraction", "seed")


def build_field(cfg: Dict[str, Any], dim: int) -> VectorField:
    poly = cfg["model.fusion"] in ("cfu", "pu")
    return VectorField(dim, kind=cfg.get("model.kind", "hnn"), hidden=cfg["model.hidden"],
                       fusion=cfg["model.fusion"], order=cfg["model.order"] if poly else 4,
                       form=cfg["model.fusion_form"] if poly else "eq4", fusion_kwargs=own_fusion_kwargs(cfg))


def own_fusion_kwargs(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """A researcher's own fusion component's model.fusion.<argument> keys (none for the shipped fusions)."""
    from tasks import get_task

    return get_task("physics").slot_kwargs(cfg, "model.fusion")


def batch_rows(batch: int, n_rows: int) -> int:
    """Rows per step: the resolved ``batch``, or every row for 0 (full batch) or ``batch`` >= ``n_rows``."""
    return batch if 0 < batch < n_rows else n_rows


def step_batches(n_rows: int, bs: int, steps: int, generator: torch.Generator) -> Iterator[Optional[torch.Tensor]]:
    """Each step's training rows: randperm(n_rows)[:bs] (the HNN reference draws a
    fresh random batch every step), or None (all rows, drawing nothing) when bs >= n_rows."""
    for _ in range(steps):
        yield torch.randperm(n_rows, generator=generator)[:bs] if bs < n_rows else None


def data_order(cfg: Dict[str, Any], epochs: int = 1) -> DataOrder:
    """Split (trajectories; ball: window starts) and each step's batch of a trial of ``cfg``
    (tasks.datasets.DataOrder); depends on ``seed``, ``data.*``, ``ball.*`` and the
    batch/step settings, never on ``model.*``.  Simulates nothing: the split and the
    row count follow from the settings."""
    if cfg["data.system"] not in HNN_SYSTEMS:
        from .ball import data_order as ball_order

        return ball_order(cfg, epochs)
    s = resolved(cfg)
    test = held_out_mask(s["trajectories"], s["test_fraction"])
    n_rows = int((~test).sum()) * s["points"]      # the run's x_tr: every point of every training trajectory
    bs, gen = batch_rows(s["batch"], n_rows), data_generator(int(cfg["seed"]), "batches")
    order = [[np.arange(n_rows) if idx is None else idx.numpy()
              for idx in step_batches(n_rows, bs, cfg["train.steps_per_epoch"], gen)] for _ in range(epochs)]
    return DataOrder({"train": np.flatnonzero(~test), "test": np.flatnonzero(test)}, order,
                     {"batches": gen.get_state()},
                     {"data": f"simulated once from data.seed={s['seed']} (cached), not the trial seed"})


@torch.no_grad()
def rollout_metrics(field: VectorField, data: Dict[str, np.ndarray], system: str, substeps: int,
                    limit: int = 0) -> Dict[str, float]:
    """Trajectory and energy MSE of the learned field on the test trajectories.

    A float64 copy of the model integrates from each true initial state (so
    integrator round-off stays far below the ~1e-6 errors of Table II).
    """
    dev = next(field.parameters()).device
    f64 = copy.deepcopy(field).double().eval()
    true = data["traj"][data["test"]]
    if limit:
        true = true[:limit]
    t = torch.as_tensor(data["t"], dtype=torch.float64, device=dev)
    y0 = torch.as_tensor(true[:, 0], dtype=torch.float64, device=dev)
    pred = rk4_rollout(f64, y0, t, substeps).cpu().numpy()
    energy = energy_fn(system)
    # t0 is the given initial state: only the predicted points count.
    traj_mse = float(((pred[:, 1:] - true[:, 1:]) ** 2).mean())
    energy_mse = float(((energy(pred[:, 1:]) - energy(true[:, 1:])) ** 2).mean())
    return {"test_traj_mse": traj_mse if np.isfinite(traj_mse) else float("inf"),
            "test_energy_mse": energy_mse if np.isfinite(energy_mse) else float("inf")}


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    system = cfg["data.system"]
    if system not in HNN_SYSTEMS:
        from .ball import run as run_ball

        return run_ball(cfg, reporter)
    device = setup_runtime(cfg)
    s = resolved(cfg)
    data = load_or_generate(system, {k: s[k] for k in DATA_KEYS})
    dim = data["traj"].shape[-1]
    rows = lambda a, m: torch.as_tensor(a[m].reshape(-1, dim), dtype=torch.float32, device=device)
    x_tr, dx_tr = rows(data["obs"], ~data["test"]), rows(data["dx"], ~data["test"])
    x_te, dx_te = rows(data["obs"], data["test"]), rows(data["dx"], data["test"])
    seed = int(cfg["seed"])
    torch.manual_seed(stream_seed(seed, "model"))   # the init, from the model stream only
    field = build_field(cfg, dim).to(device)
    bs = batch_rows(s["batch"], len(x_tr))
    reporter.annotate(n_params=count_parameters(field), n_train=len(x_tr), n_test=len(x_te),
                      n_test_trajectories=int(data["test"].sum()), batch_size=bs,
                      weight_decay=s["weight_decay"], eval_substeps=s["substeps"],
                      eval_rollout_every=s["rollout_every"], total_steps=cfg["train.epochs"] * cfg["train.steps_per_epoch"],
                      data_source=f"simulated {system}: {s['trajectories']} trajectories x {s['points']} points, "
                                  f"t in [0, {s['t_end']:g}], noise {s['noise']:g}, data seed {s['seed']}")
    opt = torch.optim.Adam(field.parameters(), lr=cfg["optim.lr"], weight_decay=s["weight_decay"])
    gen = data_generator(seed, "batches")   # the batches: the same for every model of this seed
    mse = torch.nn.functional.mse_loss

    def train_epoch(epoch: int) -> Dict[str, float]:
        field.train()
        total = 0.0
        for idx in step_batches(len(x_tr), bs, cfg["train.steps_per_epoch"], gen):
            idx = slice(None) if idx is None else idx.to(device)
            loss = mse(field(x_tr[idx]), dx_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        return {"train_loss": total / cfg["train.steps_per_epoch"]}

    def evaluate(epoch: int) -> Dict[str, float]:
        field.eval()
        with torch.no_grad():
            test_loss = sum(mse(field(x_te[i:i + 4096]), dx_te[i:i + 4096], reduction="sum").item()
                            for i in range(0, len(x_te), 4096)) / dx_te.numel()
        out = {"test_loss": test_loss}
        if (epoch + 1) % s["rollout_every"] == 0 or epoch + 1 == cfg["train.epochs"]:
            out.update(rollout_metrics(field, data, system, s["substeps"], cfg["eval.trajectories"]))
        return out

    return fit(model=field, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, generator=gen)
