"""Bouncing ball: a neural ODE whose flight dynamics are the fused MLP, with
torchdiffeq's event handling for the bounces (CFU paper Sec. IV-B, Table II
"bouncing ball with Baseline NODE"; torchdiffeq's examples/bouncing_ball.py).

* Ground truth: torchdiffeq's example system, height 10, g 9.8, radius 0.2,
  absorption 0.2 (contact when height = radius, velocity ← −(1 − 0.2)·velocity;
  bounces at √2 = 1.4142, 3.6770, 5.4871, 6.9353 s).  Flights are parabolas,
  so the states are written in closed form instead of integrated.  Observed
  on [0, time of bounce ``ball.bounces``] at 50 points per second (the
  example's plotting density).
* Model: d(pos, vel)/dt = FusionMLP(pos / P, vel / V) · V, with P, V the
  data's largest height and speed (a fixed normalisation so that tanh does
  not saturate on heights of 10).  The contact event and the bounce rule are
  known and shared by data and model, as in the example, where they are
  hand-written parts of the module; the network learns the flight.
* Training (the paper's "1,000 iterations"; torchdiffeq's ode_demo recipe):
  each step integrates ``train.batch_size`` random windows of
  ``ball.batch_time`` grid points from their true first state (odeint, RK4 on
  the grid) and minimises the MSE to the true states.  Windows never contain
  a bounce, so no event handling is needed to train.
  Simplification, documented: the paper does not say how it trained; a
  full event-handled rollout per step costs ~100× more on a CPU.
* Metrics: ``test_traj_mse``, MSE of the height along the full rollout from
  (10, 0) with ``odeint_event`` detecting every contact (the trajectory of
  Table II); ``test_loss``, MSE of the predicted vs true d(pos, vel)/dt on the
  grid.  No energy metric (Table III has no ball row): the energy drops by
  36 % at each contact, so near a contact it only measures which side of
  the bounce a grid point falls on.
"""
from __future__ import annotations

import math
from typing import Any, Dict

import numpy as np
import torch
from torch import nn

from ..common import count_parameters, fit, setup_runtime, stream_seed
from ..datasets import DataOrder, data_generator
from .models import FusionMLP
from .settings import resolved

HEIGHT, GRAVITY, RADIUS, ABSORPTION = 10.0, 9.8, 0.2, 0.2
POINTS_PER_SECOND = 50


def bounce_times(n: int) -> np.ndarray:
    """Times of the first ``n`` contacts (exact)."""
    t = [math.sqrt(2 * (HEIGHT - RADIUS) / GRAVITY)]
    v = GRAVITY * t[0] * (1 - ABSORPTION)             # take-off speed after the first bounce
    for _ in range(n - 1):
        t.append(t[-1] + 2 * v / GRAVITY)
        v *= 1 - ABSORPTION
    return np.array(t)


def ground_truth(n_bounces: int) -> Dict[str, np.ndarray]:
    """Grid ``t`` (T,), states (T, 2) = (height, velocity), flight index (T,)."""
    tb = bounce_times(n_bounces)
    t = np.linspace(0.0, tb[-1], int(round(POINTS_PER_SECOND * tb[-1])) + 1)
    starts = np.concatenate([[0.0], tb[:-1]])
    v0 = np.concatenate([[0.0], GRAVITY * tb[0] * (1 - ABSORPTION) ** np.arange(1, n_bounces)])
    p0 = np.concatenate([[HEIGHT], np.full(n_bounces - 1, RADIUS)])
    k = np.clip(np.searchsorted(tb, t, side="left"), 0, n_bounces - 1)   # a contact point ends its flight
    s = t - starts[k]
    state = np.stack([p0[k] + v0[k] * s - 0.5 * GRAVITY * s ** 2, v0[k] - GRAVITY * s], 1)
    return {"t": t, "state": state, "flight": k}


class BallODE(nn.Module):
    """Neural ODE right-hand side d(pos, vel)/dt on normalised states.

    Args: pos_scale, vel_scale (P, V above); the rest: :class:`FusionMLP`'s.
    """

    def __init__(self, pos_scale: float, vel_scale: float, hidden: int = 200, fusion: str = "none",
                 order: int = 4, form: str = "eq4") -> None:
        super().__init__()
        self.net = FusionMLP(2, 2, hidden, fusion, order, form)
        self.register_buffer("scale", torch.tensor([pos_scale, vel_scale]))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """t: scalar (autonomous, unused); y: (..., 2) → (..., 2)."""
        s = self.scale.to(y.dtype)
        return (self.net(y.reshape(-1, 2) / s) * s[1]).reshape(y.shape)


@torch.no_grad()
def rollout(func: BallODE, t: torch.Tensor, y0: torch.Tensor, substeps: int, max_bounces: int) -> torch.Tensor:
    """Height/velocity on the grid ``t`` from ``y0`` with event-handled bounces → (T, 2)."""
    from torchdiffeq import odeint, odeint_event

    t_end = t[-1]
    step = float(t[1] - t[0]) / substeps
    # Cubic Hermite dense output locates contacts exactly on parabolas (linear
    # interpolation would shift each bounce by ~g h²/(8|v|)).
    opts = dict(method="rk4", options={"step_size": step, "interp": "cubic"})
    # Contact, or the end of the grid: a learned field that never lands must still stop.
    event = lambda tt, y: torch.minimum(y[0] - RADIUS, t_end - tt)
    out, t0, y, i = [y0], t[0], y0, 1
    for _ in range(max_bounces + 1):
        t_ev, _ = odeint_event(func, y, t0, event_fn=event, odeint_interface=odeint, **opts)
        j = i + int((t[i:] < t_ev).sum())
        grid = torch.cat([t0.reshape(1), t[i:j], t_ev.reshape(1)])
        sol = odeint(func, y, grid, **opts)
        out.extend(sol[1:-1])
        if j < len(t) and torch.isclose(t[j], t_ev, rtol=0.0, atol=1e-12):
            out.append(sol[-1])              # the event falls on a grid point (t_end, or exact)
            j += 1
        i, t0, y = j, t_ev, sol[-1]
        if i >= len(t) or t_ev >= t_end:
            break
        # Bounce rule of the example; the 1e-7 lift keeps the event from refiring at once.
        y = torch.stack([y[0] + 1e-7, -(1 - ABSORPTION) * y[1]])
    out.extend([y] * (len(t) - len(out)))       # a Zeno pile-up: hold the last state
    return torch.stack(out[:len(t)])


def window_starts(flight: np.ndarray, batch_time: int) -> np.ndarray:
    """Grid points where a window of ``batch_time`` points lies inside one flight
    (the contact point closes its flight), from ``ground_truth``'s flight index."""
    ok = flight[:len(flight) - batch_time + 1] == flight[batch_time - 1:]
    return np.flatnonzero(ok)


def pick_windows(n_starts: int, batch: int, generator: torch.Generator) -> torch.Tensor:
    """One step's ``batch`` window numbers in [0, n_starts), with replacement (torchdiffeq's ode_demo)."""
    return torch.randint(n_starts, (batch,), generator=generator)


def data_order(cfg: Dict[str, Any], epochs: int = 1) -> DataOrder:
    """Training windows (start points on the grid) and each step's picks, as
    tasks.datasets.DataOrder; depends on ``seed``, ``ball.*`` and the batch/step
    settings, never on ``model.*``."""
    starts = window_starts(ground_truth(cfg["ball.bounces"])["flight"], cfg["ball.batch_time"])
    bs, gen = resolved(cfg)["batch"] or 20, data_generator(int(cfg["seed"]), "batches")
    order = [[starts[pick_windows(len(starts), bs, gen).numpy()] for _ in range(cfg["train.steps_per_epoch"])]
             for _ in range(epochs)]
    return DataOrder({"train": starts}, order, {"batches": gen.get_state()},
                     {"data": "the deterministic torchdiffeq example trajectory"})


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    from torchdiffeq import odeint

    device = setup_runtime(cfg)
    s = resolved(cfg)
    n_b, bt = cfg["ball.bounces"], cfg["ball.batch_time"]
    gt = ground_truth(n_b)
    dt = torch.float64
    t = torch.as_tensor(gt["t"], dtype=dt, device=device)
    y = torch.as_tensor(gt["state"], dtype=dt, device=device)
    dy = torch.stack([y[:, 1], torch.full_like(y[:, 1], -GRAVITY)], 1)
    starts = torch.as_tensor(window_starts(gt["flight"], bt), device=device)
    poly = cfg["model.fusion"] in ("cfu", "pu")
    seed = int(cfg["seed"])
    torch.manual_seed(stream_seed(seed, "model"))   # the init, from the model stream only
    func = BallODE(float(np.abs(gt["state"][:, 0]).max()), float(np.abs(gt["state"][:, 1]).max()),
                   cfg["model.hidden"], cfg["model.fusion"], cfg["model.order"] if poly else 4,
                   cfg["model.fusion_form"] if poly else "eq4").to(device=device, dtype=dt)
    bs = s["batch"] if s["batch"] > 0 else 20           # ode_demo's batch of 20 windows
    reporter.annotate(n_params=count_parameters(func), n_train=len(starts), n_test=len(t), batch_size=bs,
                      total_steps=cfg["train.epochs"] * cfg["train.steps_per_epoch"],
                      data_source=f"bouncing ball (torchdiffeq example), {n_b} bounces, {len(t)} points")
    opt = torch.optim.Adam(func.parameters(), lr=cfg["optim.lr"], weight_decay=s["weight_decay"])
    gen = data_generator(seed, "batches")   # the windows: the same for every model of this seed
    offsets = torch.arange(bt, device=device)

    def train_epoch(epoch: int) -> Dict[str, float]:
        func.train()
        total = 0.0
        for _ in range(cfg["train.steps_per_epoch"]):
            pick = starts[pick_windows(len(starts), bs, gen).to(device)]
            idx = pick[:, None] + offsets                               # (B, bt)
            pred = odeint(func, y[pick], t[:bt] - t[0], method="rk4")   # autonomous: relative times
            loss = torch.mean((pred.transpose(0, 1) - y[idx]) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        return {"train_loss": total / cfg["train.steps_per_epoch"]}

    def evaluate(epoch: int) -> Dict[str, float]:
        func.eval()
        with torch.no_grad():
            test_loss = torch.mean((func(t[0], y) - dy) ** 2).item()
            pred = rollout(func, t, y[0], s["substeps"], max_bounces=4 * n_b + 10).cpu().numpy()
        traj = float(((pred[1:, 0] - gt["state"][1:, 0]) ** 2).mean())
        return {"test_loss": test_loss, "test_traj_mse": traj if np.isfinite(traj) else float("inf")}

    return fit(model=func, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, generator=gen)
