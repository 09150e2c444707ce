"""Tests of the physics task: simulated data (dynamics vs Hamiltonian, tight
ground truth, cache), the fused MLP / HNN field, RK4 rollouts, metrics,
config checks, and deterministic short runs through run_trial."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from sweeps.runner.trial import LocalReporter, run_trial
from tasks import get_task
from tasks.physics.settings import SYSTEMS, resolved
from tasks.physics import systems as S
from tasks.physics.models import FusionMLP, VectorField, rk4_rollout
from tasks.physics.train import rollout_metrics

from ._resume import whole_and_resumed, without_timing

SPEC = get_task("physics")
KEYS = ("trajectories", "points", "t_end", "r_min", "r_max", "orbit_noise", "noise", "test_fraction", "seed")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ABLATE_CACHE", str(tmp_path / "cache"))


def settings(system, **over):
    s = {k: v for k, v in resolved({"data.system": system}).items() if k in KEYS}
    s.update(over)
    return s


def num_grad(f, y, eps=1e-6):
    g = np.zeros_like(y)
    for k in range(y.shape[-1]):
        e = np.zeros(y.shape[-1])
        e[k] = eps
        g[..., k] = (f(y + e) - f(y - e)) / (2 * eps)
    return g


@pytest.mark.parametrize("system", ["two_body", "three_body", "pendulum"])
def test_field_is_symplectic_gradient_of_energy(system):
    """dx/dt = (∂H/∂p, −∂H/∂q): the hand-written forces agree with the energy."""
    y = S.initial_states(system, 5, settings(system), np.random.default_rng(1))
    g = num_grad(S.energy_fn(system), y)
    half = y.shape[1] // 2
    expect = np.concatenate([g[:, half:], -g[:, :half]], 1)
    np.testing.assert_allclose(S.field_fn(system)(y), expect, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("system", ["two_body", "three_body"])
def test_unperturbed_orbits_are_circular_and_conserve_energy(system):
    s = settings(system, orbit_noise=0.0)
    y0 = S.initial_states(system, 6, s, np.random.default_rng(2))
    traj = S.integrate(system, y0, np.linspace(0, 5, 11))
    n = S.N_BODIES[system]
    q = traj[..., :2 * n].reshape(6, 11, 2, n)
    radius = np.sqrt((q ** 2).sum(2))                       # distance from the centre, per body
    np.testing.assert_allclose(radius, radius[:, :1, :].repeat(11, 1), rtol=1e-7)
    first = radius[:, 0] if system == "three_body" else traj[:, 0, [0, 2]]   # 2-body: body 1's x, y
    assert (first >= s["r_min"]).all() and (first <= s["r_max"]).all()
    e = S.energy_fn(system)(traj)
    np.testing.assert_allclose(e, e[:, :1].repeat(11, 1), rtol=1e-8)


def test_chunked_ground_truth_matches_single_tight_solves():
    s = settings("two_body")
    y0 = S.initial_states("two_body", 30, s, np.random.default_rng(3))
    t = np.linspace(0, 20, 50)
    batch = S.integrate("two_body", y0, t, chunk=30)
    for i in (0, 17, 29):
        ref = solve_ivp(lambda _t, y: S.nbody_field(y[None], 2)[0], (0, 20), y0[i], t_eval=t,
                        method="DOP853", rtol=1e-12, atol=1e-12).y.T
        assert np.abs(batch[i] - ref).max() < 1e-6


def test_dataset_splits_noise_and_cache(tmp_path):
    s = settings("pendulum", trajectories=10, points=7)
    a = S.load_or_generate("pendulum", s)
    files = list((tmp_path / "cache" / "physics").glob("pendulum-*.npz"))
    assert len(files) == 1
    b = S.load_or_generate("pendulum", s)                  # from the cache
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert a["traj"].shape == (10, 7, 2) and a["test"].sum() == 5 and a["test"][5:].all()
    np.testing.assert_allclose(a["t"], np.linspace(0, 3, 7))
    resid = a["obs"] - a["traj"]                            # σ = 0.1 noise on the inputs only
    assert 0.05 < resid.std() < 0.15
    np.testing.assert_allclose(a["dx"], S.pendulum_field(a["traj"].reshape(-1, 2)).reshape(10, 7, 2))
    r = np.linalg.norm(a["traj"][:, 0], axis=1)
    assert ((r >= 1.3) & (r <= 2.3)).all()
    c = S.load_or_generate("pendulum", dict(s, seed=1))     # another data seed, another file
    assert not np.allclose(a["traj"], c["traj"])
    assert len(list((tmp_path / "cache" / "physics").glob("*.npz"))) == 2


def test_paper_settings_resolve_from_sentinels():
    p = resolved({"data.system": "three_body", "data.trajectories": 0, "optim.weight_decay": -1.0,
                  "train.batch_size": 0, "data.noise": -1.0})
    assert (p["trajectories"], p["points"], p["t_end"], p["batch"], p["weight_decay"]) == (5000, 20, 5.0, 600, 1e-4)
    p = resolved({"data.system": "pendulum", "data.noise": 0.0, "train.batch_size": 7})
    assert p["noise"] == 0.0 and p["batch"] == 7 and SYSTEMS["pendulum"]["noise"] == 0.1
    subs = {n: resolved(SPEC.resolve({"data.system": n}))["substeps"] for n in SYSTEMS}
    assert subs == {"two_body": 4, "three_body": 10, "pendulum": 2, "bouncing_ball": 10}
    assert resolved(SPEC.resolve({"data.system": "two_body", "eval.substeps": 7}))["substeps"] == 7


def test_rollout_substeps_per_system_match_a_fine_integrator():
    """The per-system substeps are accurate: the true field rolled out with
    them reproduces the simulated (DOP853, rtol 1e-10) test trajectories."""
    from tasks.physics.models import rk4_rollout
    from tasks.physics.systems import field_fn, generate

    for system, n in (("two_body", 20), ("pendulum", 10)):
        s = resolved(SPEC.resolve({"data.system": system, "data.trajectories": n}))
        data = generate(system, {k: s[k] for k in ("trajectories", "points", "t_end", "r_min", "r_max",
                                                   "orbit_noise", "noise", "test_fraction", "seed")})
        f = field_fn(system)
        true = data["traj"][data["test"]]
        pred = rk4_rollout(lambda y: torch.as_tensor(f(y.numpy())), torch.as_tensor(true[:, 0]),
                           torch.as_tensor(data["t"]), s["substeps"]).numpy()
        assert ((pred - true) ** 2).mean() < 1e-9, system
        coarse = rk4_rollout(lambda y: torch.as_tensor(f(y.numpy())), torch.as_tensor(true[:, 0]),
                             torch.as_tensor(data["t"]), 1).numpy()
        assert ((coarse - true) ** 2).mean() > ((pred - true) ** 2).mean()


def test_check_rejects_empty_split():
    cfg = SPEC.resolve({"data.system": "pendulum", "data.trajectories": 3, "data.test_fraction": 0.1})
    errs = SPEC.check_config(cfg)
    assert errs and errs[0][0] == "data.test_fraction" and "3 trajectories" in errs[0][1]
    assert SPEC.check_config(SPEC.resolve({"data.system": "two_body"})) == []


@pytest.mark.parametrize("fusion,extra", [("none", 0), ("add", 0), ("cfu", 4), ("pu", 4), ("concat", 2 * 16 * 16 + 16)])
def test_mlp_parameter_count(fusion, extra):
    m = FusionMLP(4, 2, hidden=16, fusion=fusion, order=3)
    base = (4 * 16 + 16) + (16 * 16 + 16) + 16 * 2          # no bias in the last layer
    assert sum(p.numel() for p in m.parameters()) == base + extra
    assert m.linear3.bias is None
    w = m.linear1.weight                                     # orthogonal init (rows orthonormal here: 16 × 4)
    torch.testing.assert_close(w.t() @ w, torch.eye(4), atol=1e-5, rtol=0)


def test_fusion_sits_between_hidden_layers():
    torch.manual_seed(0)
    nets = {f: FusionMLP(3, 2, hidden=8, fusion=f) for f in ("none", "add", "cfu")}
    nets["cfu_bounded"] = FusionMLP(3, 2, hidden=8, fusion="cfu", form="bounded_additive")
    for f in ("add", "cfu", "cfu_bounded"):
        nets[f].load_state_dict(nets["none"].state_dict(), strict=False)
    x = torch.randn(5, 3)
    h1 = torch.tanh(nets["none"].linear1(x))
    h2 = torch.tanh(nets["none"].linear2(h1))
    torch.testing.assert_close(nets["none"](x), nets["none"].linear3(h2))
    torch.testing.assert_close(nets["add"](x), nets["none"].linear3(h1 + h2))
    # The α init makes the gate 1: Eq. 4 (the default form) starts exactly as the reference MLP,
    # the bounded additive form exactly as add.
    torch.testing.assert_close(nets["cfu"](x), nets["none"](x))
    torch.testing.assert_close(nets["cfu_bounded"](x), nets["add"](x))
    from components.fusion import FORMS
    from tasks.physics import FUSION_FORMS

    assert FUSION_FORMS == tuple(FORMS) and SPEC.resolve({"model.fusion": "cfu"})["model.fusion_form"] == "eq4"


@pytest.mark.parametrize("fusion", ["none", "cfu"])
def test_hnn_field_matches_matrix_form_and_conserves_learned_energy(fusion):
    torch.manual_seed(0)
    f = VectorField(4, kind="hnn", hidden=16, fusion=fusion, order=3).double()
    if fusion == "cfu":
        with torch.no_grad():
            f.net.fusion.alpha.normal_()
    x = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(f.hamiltonian(x).sum(), x)
    eye = torch.eye(2, dtype=torch.float64)
    z = torch.zeros(2, 2, dtype=torch.float64)
    M = torch.cat([torch.cat([z, eye], 1), torch.cat([-eye, z], 1)], 0)
    field = f(x.detach(), create_graph=True)
    torch.testing.assert_close(field, g @ M.t())
    torch.testing.assert_close(f(x.detach(), create_graph=False), field)   # same values without the graph
    assert (g * field).sum(1).abs().max() < 1e-12           # dH/dt = ∇H · J∇H = 0


def test_hnn_training_gradient_is_exact():
    """The loss goes through ∂F2/∂x, so training needs exact second derivatives (CFU included)."""
    torch.manual_seed(0)
    f = VectorField(2, kind="hnn", hidden=6, fusion="cfu", order=2).double()
    with torch.no_grad():
        f.net.fusion.alpha.normal_()
    x, y = torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    flat = [p.detach().clone().requires_grad_(True) for p in f.parameters()]
    assert torch.autograd.gradcheck(lambda *ps: _functional_loss(f, x, y, ps), flat)


def _functional_loss(f, x, y, ps):
    names = [n for n, _ in f.named_parameters()]
    out = torch.func.functional_call(f, dict(zip(names, ps)), (x,), {"create_graph": True})
    return ((out - y) ** 2).mean()


def test_rk4_reproduces_ground_truth_and_perfect_field_scores_zero():
    data = S.generate("pendulum", settings("pendulum", trajectories=4, points=9, noise=0.0, test_fraction=0.5))

    class TrueField(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(()))

        def forward(self, y):
            return torch.stack([2 * y[:, 1], -3 * torch.sin(y[:, 0])], 1) + 0 * self.dummy

    t = torch.as_tensor(data["t"], dtype=torch.float64)
    err = []
    for sub in (10, 20):
        with torch.no_grad():
            pred = rk4_rollout(TrueField().double(), torch.as_tensor(data["traj"][:, 0]), t, sub).numpy()
        err.append(np.abs(pred - data["traj"]).max())
    assert err[1] < 1e-6 and 12 < err[0] / err[1] < 20        # fourth order: halving h divides by ~16
    m = rollout_metrics(TrueField(), data, "pendulum", substeps=20)
    assert m["test_traj_mse"] < 1e-14 and m["test_energy_mse"] < 1e-14
    # a field that stops the motion: the error is the spread of the trajectory about its start
    stop = TrueField()
    stop.forward = lambda y: torch.zeros_like(y)
    m = rollout_metrics(stop, data, "pendulum", substeps=1)
    true = data["traj"][data["test"]]
    assert m["test_traj_mse"] == pytest.approx(((true[:, 1:] - true[:, :1]) ** 2).mean())


@pytest.mark.parametrize("system,fusion", [("pendulum", "cfu"), ("two_body", "none"), ("three_body", "add")])
def test_run_is_deterministic(system, fusion):
    over = dict(SPEC.smoke, **{"data.system": system, "model.fusion": fusion})
    cfg = SPEC.resolve(over)
    runs = []
    for _ in range(2):
        rep = LocalReporter(echo=lambda s: None)
        runs.append((run_trial("physics", cfg, rep), rep))
    (a, ra), (b, rb) = runs
    for k in ("train_loss", "test_loss", "test_traj_mse", "test_energy_mse"):
        assert np.isfinite(a[k]) and a[k] == b[k]
    assert len(ra.history) == cfg["train.epochs"]
    assert ra.info["total_steps"] == cfg["train.epochs"] * cfg["train.steps_per_epoch"]
    assert ra.info["n_test_trajectories"] == 2


def test_rollout_every_reports_rollouts_on_its_epochs_and_keeps_the_final_metrics():
    """eval.rollout_every only thins the per-epoch rollouts: training and the final
    metrics are bit-identical to rolling out every epoch."""
    base = dict(SPEC.smoke, **{"data.system": "three_body", "model.fusion": "cfu", "train.epochs": 4})
    hist, outs = {}, {}
    for every in (1, 2, 0):                              # 0 = per system: 3-body 5
        rep = LocalReporter(echo=lambda s: None)
        outs[every] = run_trial("physics", SPEC.resolve(dict(base, **{"eval.rollout_every": every})), rep)
        hist[every] = [h["epoch"] for h in rep.history if "test_traj_mse" in h]
        assert all("test_loss" in h for h in rep.history) and len(rep.history) == 4
        assert rep.info["eval_rollout_every"] == (every or 5)
    assert hist == {1: [1, 2, 3, 4], 2: [2, 4], 0: [4]}
    for k in ("train_loss", "test_loss", "test_traj_mse", "test_energy_mse"):
        assert outs[1][k] == outs[2][k] == outs[0][k], k
    per_system = {n: resolved(SPEC.resolve({"data.system": n}))["rollout_every"] for n in SYSTEMS}
    assert per_system == {"two_body": 1, "three_body": 5, "pendulum": 1, "bouncing_ball": 1}


def test_resume_from_checkpoint_is_exact():
    cfg = SPEC.resolve(dict(SPEC.smoke, **{"data.system": "pendulum", "model.fusion": "cfu", "train.epochs": 3}))
    full, resumed = whole_and_resumed("physics", cfg, stop_after=2)
    assert resumed.history[-1]["test_traj_mse"] == full.history[-1]["test_traj_mse"]
    assert without_timing(resumed.history) == without_timing(full.history[2:])


# ------------------------------------------------------------ bouncing ball
def test_ball_ground_truth_matches_torchdiffeq_example():
    from tasks.physics.ball import ABSORPTION, GRAVITY, RADIUS, bounce_times, ground_truth

    np.testing.assert_allclose(bounce_times(4), [1.4142, 3.6770, 5.4871, 6.9353], atol=1e-4)
    gt = ground_truth(4)
    assert gt["t"][-1] == pytest.approx(6.93530331) and (gt["state"][:, 0] >= RADIUS - 1e-12).all()
    e = GRAVITY * gt["state"][:, 0] + 0.5 * gt["state"][:, 1] ** 2
    per_flight = [e[gt["flight"] == k] for k in range(4)]
    assert all(np.ptp(f) < 1e-10 for f in per_flight)          # energy conserved in flight
    # the kinetic energy at contact drops by (1 − absorption)² at each bounce
    kin = [f[0] - GRAVITY * RADIUS for f in per_flight[1:]]
    np.testing.assert_allclose(np.diff(kin) / kin[:-1], (1 - ABSORPTION) ** 2 - 1, rtol=1e-9)


def test_ball_event_rollout_with_true_dynamics_is_exact():
    from tasks.physics.ball import GRAVITY, BallODE, ground_truth, rollout

    class Truth(BallODE):
        def forward(self, t, y):
            return torch.stack([y[..., 1], torch.full_like(y[..., 1], -GRAVITY)], -1)

    gt = ground_truth(3)
    t = torch.as_tensor(gt["t"])
    pred = rollout(Truth(10.0, 14.0, hidden=4).double(), t, torch.as_tensor(gt["state"][0]), 1, 20).numpy()
    # RK4 is exact on parabolas; contacts are located by the event solver's interpolation
    assert pred.shape == gt["state"].shape and np.abs(pred[:, 0] - gt["state"][:, 0]).max() < 1e-4


def test_ball_run_is_deterministic_and_checks_window():
    cfg = SPEC.resolve(dict(SPEC.smoke, **{"data.system": "bouncing_ball", "model.fusion": "cfu",
                                           "ball.bounces": 2, "train.batch_size": 4, "eval.substeps": 1,
                                           "train.epochs": 1}))
    outs = [run_trial("physics", cfg, LocalReporter(echo=lambda s: None)) for _ in range(2)]
    assert np.isfinite(outs[0]["test_traj_mse"]) and outs[0] == {**outs[1], "epoch_seconds": outs[0]["epoch_seconds"]}
    bad = SPEC.resolve({"data.system": "bouncing_ball", "ball.batch_time": 500})
    assert [k for k, _ in SPEC.check_config(bad)] == ["ball.batch_time"]


# ------------------------------------------------------------ what the seed controls
@pytest.mark.parametrize("system", ["pendulum", "bouncing_ball"])
def test_fusion_cells_of_one_seed_share_data_and_batches(system):
    from tasks.physics.train import data_order

    from ._pairing import assert_paired

    over = dict(SPEC.smoke, **{"data.system": system, "train.batch_size": 16, "seed": 3})
    if system == "bouncing_ball":
        over.update({"ball.bounces": 2, "train.batch_size": 4, "eval.substeps": 1, "train.epochs": 1})
    a = SPEC.resolve(dict(over, **{"model.fusion": "none"}))
    b = SPEC.resolve(dict(over, **{"model.fusion": "cfu", "model.order": 2}))
    reps = assert_paired("physics", a, b, data_order)
    order = data_order(a)
    if system == "pendulum":
        assert reps["a"].info["n_train"] == len(order.split["train"]) * 10 == 60   # 6 trajectories x 10 points
        assert order.split["test"].tolist() == [6, 7] and reps["a"].info["n_test_trajectories"] == 2
    else:                                   # the ball's training set: its window start points
        assert reps["a"].info["n_train"] == len(order.split["train"])
    assert all(len(step) == reps["a"].info["batch_size"] for e in order.batches for step in e)


def test_full_batch_draws_nothing_and_uses_every_row():
    from tasks.common import stream_seed
    from tasks.physics.train import data_order

    cfg = SPEC.resolve(dict(SPEC.smoke, **{"data.system": "pendulum", "seed": 1}))   # paper: full batch
    order = data_order(cfg)
    start = torch.Generator().manual_seed(stream_seed(1, "batches"))
    assert torch.equal(order.states["batches"], start.get_state())
    assert all(np.array_equal(step, np.arange(60)) for step in order.batches[0])
