"""Ground-truth data of the HNN systems: dynamics, energies, initial
conditions, vectorised integration and an on-disk cache.

Hamiltonian Neural Networks (Greydanus et al. 2019, the CFU paper's [23]),
data settings as in shared/paper-notes.md "000 CFU" (see ``SYSTEMS`` in
``tasks/physics/settings.py``).  Units: masses 1, G = 1.

State layout of one row (the HNN reference's canonical order):
n bodies → ``[qx_1..qx_n, qy_1..qy_n, px_1..px_n, py_1..py_n]`` (p = v with
unit masses); pendulum → ``[q, p]``.  q is always the first half, p the second,
which is what the HNN's symplectic matrix M = [[0, I], [−I, 0]] assumes.

Why not one ``solve_ivp`` call per trajectory like the reference: 1000
two-body orbits would take minutes.  All trajectories of a chunk are one
vectorised system instead; solve_ivp's step control then uses the RMS error of
the chunk, so the tolerances are tighter than the reference's (DOP853,
rtol = atol = 1e-10 instead of RK45, rtol = 1e-9 with the default atol = 1e-6:
that default alone leaves errors ~1e-2 on 2-body orbits, larger than the
trajectory errors the CFU paper reports).  tests/tasks/test_physics.py checks
the chunked solution against single-trajectory solves.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np
from scipy.integrate import solve_ivp

CACHE_VERSION = 2
RTOL = ATOL = 1e-10
N_BODIES = {"two_body": 2, "three_body": 3}


# ----------------------------------------------------------------- dynamics
def nbody_field(y: np.ndarray, n: int) -> np.ndarray:
    """d/dt of (B, 4n) n-body states (unit masses, G = 1, no softening) → (B, 4n)."""
    b = y.shape[0]
    q = y[:, :2 * n].reshape(b, 2, n).transpose(0, 2, 1)          # (B, n, 2)
    disp = q[:, None, :, :] - q[:, :, None, :]                     # [b, i, j] = r_j − r_i
    d2 = (disp ** 2).sum(-1)
    d2[:, np.arange(n), np.arange(n)] = np.inf                     # no self-force
    acc = (disp / d2[..., None] ** 1.5).sum(2)                     # (B, n, 2)
    return np.concatenate([y[:, 2 * n:], acc.transpose(0, 2, 1).reshape(b, 2 * n)], 1)


def nbody_energy(y: np.ndarray, n: int) -> np.ndarray:
    """Total energy Σ ½|p_i|² − Σ_{i<j} 1/r_ij of (..., 4n) states → (...)."""
    q = y[..., :2 * n].reshape(*y.shape[:-1], 2, n)
    kinetic = 0.5 * (y[..., 2 * n:] ** 2).sum(-1)
    i, j = np.triu_indices(n, 1)
    r = np.sqrt(((q[..., :, i] - q[..., :, j]) ** 2).sum(-2))
    return kinetic - (1.0 / r).sum(-1)


def pendulum_field(y: np.ndarray) -> np.ndarray:
    """H = 3(1 − cos q) + p²: dq/dt = 2p, dp/dt = −3 sin q, (B, 2) → (B, 2)."""
    return np.stack([2.0 * y[:, 1], -3.0 * np.sin(y[:, 0])], 1)


def pendulum_energy(y: np.ndarray) -> np.ndarray:
    return 3.0 * (1.0 - np.cos(y[..., 0])) + y[..., 1] ** 2


def field_fn(system: str) -> Callable[[np.ndarray], np.ndarray]:
    if system == "pendulum":
        return pendulum_field
    n = N_BODIES[system]
    return lambda y: nbody_field(y, n)


def energy_fn(system: str) -> Callable[[np.ndarray], np.ndarray]:
    if system == "pendulum":
        return pendulum_energy
    n = N_BODIES[system]
    return lambda y: nbody_energy(y, n)


# --------------------------------------------------------- initial states
def _rows(pos: np.ndarray, vel: np.ndarray) -> np.ndarray:
    """(B, n, 2) positions and velocities → (B, 4n) canonical rows."""
    b, n, _ = pos.shape
    return np.concatenate([pos.transpose(0, 2, 1).reshape(b, 2 * n),
                           vel.transpose(0, 2, 1).reshape(b, 2 * n)], 1)


def initial_states(system: str, n: int, s: Dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """``n`` initial states of ``system`` with settings ``s`` → (n, D)."""
    if system == "pendulum":
        r = rng.uniform(s["r_min"], s["r_max"], n)
        # Direction uniform in the (q, p) plane, then scaled to radius r (HNN task 2).
        d = rng.uniform(-1.0, 1.0, (n, 2))
        return d / np.linalg.norm(d, axis=1, keepdims=True) * r[:, None]
    k = N_BODIES[system]
    # Bodies evenly spaced on a circle of radius r about the centre of mass
    # (opposite for 2 bodies, 120° apart for 3).
    if system == "two_body":
        # The notes' "radius U[0.5, 1.5]" is, in the HNN code that produced the
        # published numbers, a draw of each coordinate of body 1 from U[0.5, 1.5]
        # (so |r| ∈ [0.71, 2.12], first quadrant).  We follow the code: the
        # distance sets the speeds and hence the scale of the test loss.
        xy = rng.uniform(s["r_min"], s["r_max"], (n, 2))
        r, theta = np.linalg.norm(xy, axis=1), np.arctan2(xy[:, 1], xy[:, 0])
    else:
        r, theta = rng.uniform(s["r_min"], s["r_max"], n), rng.uniform(0.0, 2 * np.pi, n)
    ang = theta[:, None] + 2 * np.pi / k * np.arange(k)
    radial = np.stack([np.cos(ang), np.sin(ang)], -1)              # (n, k, 2)
    tangential = np.stack([-np.sin(ang), np.cos(ang)], -1)
    # Circular-orbit speed: centripetal v²/r equals the net inward pull
    # Σ_j cos(angle)/d_j² of the other bodies (2 bodies: 1/(4r²); 3: 1/(√3 r²)).
    pull = {2: 0.25, 3: 1.0 / np.sqrt(3.0)}[k]
    speed = np.sqrt(pull / r)[:, None, None]
    vel = speed * tangential
    if system == "two_body":
        vel = vel * (1.0 + s["orbit_noise"] * rng.standard_normal(n))[:, None, None]
    else:   # each velocity component perturbed independently (HNN 3-body)
        vel = vel * (1.0 + s["orbit_noise"] * rng.uniform(-1.0, 1.0, (n, k, 2)))
    return _rows(r[:, None, None] * radial, vel)


def integrate(system: str, y0: np.ndarray, t: np.ndarray, chunk: int = 25) -> np.ndarray:
    """Ground-truth trajectories from (B, D) initial states at times ``t`` → (B, T, D).

    Chunks of ``chunk`` trajectories form one vectorised ODE (small chunks: a
    close 3-body encounter shrinks the steps of its whole chunk only).
    """
    f = field_fn(system)
    out = []
    for s in range(0, len(y0), chunk):
        c = y0[s:s + chunk]
        b, d = c.shape
        sol = solve_ivp(lambda _t, y: f(y.reshape(b, d)).reshape(-1), (t[0], t[-1]), c.reshape(-1),
                        t_eval=t, method="DOP853", rtol=RTOL, atol=ATOL)
        if not sol.success:
            raise RuntimeError(f"ground-truth integration of {system} failed: {sol.message}")
        out.append(sol.y.reshape(b, d, -1).transpose(0, 2, 1))
    return np.concatenate(out)


# ---------------------------------------------------------------- dataset
def generate(system: str, s: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """Trajectories, derivatives and splits for resolved settings ``s``.

    Returns float64 arrays: ``t`` (T,), ``traj`` (N, T, D) clean states,
    ``obs`` (N, T, D) observed states (clean + Gaussian noise σ = s["noise"]
    on every coordinate, as the HNN pendulum data), ``dx`` (N, T, D) true
    time derivatives at the clean states, ``test`` (N,) bool mask.
    The split is by trajectory: the HNN reference splits rows of
    trajectory-ordered data, the first fraction test for the orbits and the
    second half test for the pendulum; here the last ``test_fraction`` of
    trajectories is test (the draws are i.i.d., so which block is immaterial).
    """
    rng = np.random.default_rng(s["seed"])
    n, points = s["trajectories"], s["points"]
    t = np.linspace(0.0, s["t_end"], points)
    traj = integrate(system, initial_states(system, n, s, rng), t)
    dx = field_fn(system)(traj.reshape(-1, traj.shape[-1])).reshape(traj.shape)
    obs = traj + s["noise"] * rng.standard_normal(traj.shape) if s["noise"] > 0 else traj.copy()
    return {"t": t, "traj": traj, "obs": obs, "dx": dx, "test": held_out_mask(n, s["test_fraction"])}


def n_test_trajectories(n: int, fraction: float) -> int:
    return int(round(n * fraction))


def held_out_mask(n: int, fraction: float) -> np.ndarray:
    """(n,) bool, True for the last round(n · fraction) trajectories (the test set)."""
    test = np.zeros(n, dtype=bool)
    test[n - n_test_trajectories(n, fraction):] = True
    return test


def cache_dir() -> Path:
    """$ABLATE_CACHE, else $ABLATE_HOME/cache, else ~/.cache/ablate; + /physics."""
    root = os.environ.get("ABLATE_CACHE")
    if not root:
        home = os.environ.get("ABLATE_HOME")
        root = os.path.join(home, "cache") if home else os.path.join(Path.home(), ".cache", "ablate")
    return Path(root) / "physics"


def load_or_generate(system: str, s: Dict[str, Any]) -> Dict[str, np.ndarray]:
    """:func:`generate` cached on disk under a hash of every setting (the
    data seed included, the model seed not: replicates share their data)."""
    key = json.dumps({"system": system, "v": CACHE_VERSION, "rtol": RTOL, "atol": ATOL, **s}, sort_keys=True)
    path = cache_dir() / f"{system}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    if path.exists():
        try:
            with np.load(path) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError):
            pass    # a torn file from a killed writer: regenerate it
    data = generate(system, s)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write-then-rename: trials of one sweep may generate the same set at once.
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **data)
    os.replace(tmp, path)
    return data
