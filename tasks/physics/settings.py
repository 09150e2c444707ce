"""Data and optimiser settings of the physics task per system, from the HNN paper
(shared/paper-notes.md "000 CFU"), and their resolution against a trial's config.
Standard library only: the task's schema and its pre-launch check read them.
"""
from __future__ import annotations

from typing import Any, Dict

# HNN paper settings per system (shared/paper-notes.md "000 CFU"); ``steps`` is
# the paper's total number of Adam steps, ``batch`` 0 = full batch.
# ``substeps``: RK4 steps per observation interval of the test rollouts, the
# fewest that leave the metrics unchanged.  Measured on trained HNNs (seed 0,
# paper scale) against 40 substeps: 2-body at 4 within 1e-6 relative (at 2
# within 2e-4), pendulum at 2 (true-field integrator MSE 4e-12); 3-body needs
# 10 (close encounters; within 2.5 % of 40, 4 substeps are 12 % off).
# ``rollout_every``: epochs between the test rollouts (always after the last
# epoch).  The 3-body rollout (1,000 test orbits, 10 substeps, float64) costs
# more than an epoch of training (19 s against 16 s for CFU order 4, 1 thread),
# so it runs every 5th epoch; the final metrics are the same computation either
# way (the rollout draws no random numbers and works on a copy of the model).
SYSTEMS: Dict[str, Dict[str, Any]] = {
    "two_body": dict(trajectories=1000, points=50, t_end=20.0, r_min=0.5, r_max=1.5, orbit_noise=0.05,
                     noise=0.0, test_fraction=0.2, batch=200, steps=10000, weight_decay=0.0, substeps=4,
                     rollout_every=1),
    "three_body": dict(trajectories=5000, points=20, t_end=5.0, r_min=0.9, r_max=1.2, orbit_noise=0.2,
                       noise=0.0, test_fraction=0.2, batch=600, steps=10000, weight_decay=1e-4, substeps=10,
                       rollout_every=5),
    "pendulum": dict(trajectories=50, points=45, t_end=3.0, r_min=1.3, r_max=2.3, orbit_noise=0.0,
                     noise=0.1, test_fraction=0.5, batch=0, steps=2000, weight_decay=1e-4, substeps=2,
                     rollout_every=1),
    # torchdiffeq's example: height 10, g 9.8, radius 0.2, absorption 0.2 (ball.py).
    # Batch: 20 windows per step (torchdiffeq's ode_demo); 1,000 iterations (Sec. IV-B).
    "bouncing_ball": dict(trajectories=1, points=0, t_end=0.0, noise=0.0, test_fraction=0.0,
                          batch=20, steps=1000, weight_decay=0.0, substeps=10, rollout_every=1),
}
HNN_SYSTEMS = ("two_body", "three_body", "pendulum")


def resolved(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Data/optimiser settings with the 0 / negative sentinels replaced by the system's paper values."""
    p = dict(SYSTEMS[cfg["data.system"]])
    for key, name in (("data.trajectories", "trajectories"), ("data.points", "points"),
                      ("data.t_end", "t_end"), ("data.test_fraction", "test_fraction"),
                      ("train.batch_size", "batch"), ("eval.substeps", "substeps"),
                      ("eval.rollout_every", "rollout_every")):
        if cfg.get(key, 0) > 0:
            p[name] = cfg[key]
    for key, name in (("data.noise", "noise"), ("optim.weight_decay", "weight_decay")):
        if cfg.get(key, -1.0) >= 0:
            p[name] = cfg[key]
    p["seed"] = cfg.get("data.seed", 0)
    return p
