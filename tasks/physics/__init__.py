"""Physics: Hamiltonian neural networks (2-body, 3-body, ideal pendulum) and a
neural ODE on the bouncing ball, with the MLP's cross-layer fusion add / CFU.

Paper: "Parameter-Efficient Cross-Layer Feature Fusion via Chebyshev
Polynomial Unit" (shared/seeds/000), Sec. IV-B, Table II (trajectory MSE) and
Table III (energy MSE); baselines from Hamiltonian Neural Networks
(Greydanus et al. 2019, the paper's [23]) and torchdiffeq's bouncing ball.

* Data (``systems.py``, ``ball.py``): simulated with scipy's solve_ivp from the
  HNN paper's settings (``settings.SYSTEMS``; shared/paper-notes.md "000 CFU"), cached
  on disk keyed by every setting and a data seed separate from the model seed.
  The CFU paper's "real pendulum" is the HNN paper's lab recording (Schmidt &
  Lipson), which is not available offline; like the notes, we use the HNN
  paper's ideal pendulum H = 3(1 − cos q) + p².
* Model (``models.py``): the HNN reference MLP in→h→h→out (tanh, orthogonal
  init, last layer without bias) with a fusion between the two hidden layers:
  shortcut = first hidden layer's output h1, current = f(h1) = tanh(W2 h1 + b2);
  the output layer reads fusion(h1, f(h1)).  ``none`` is the reference MLP
  (the paper's "Baseline HNN"), ``add`` the residual h1 + f(h1), ``cfu``/``pu``
  the paper's unit (``model.fusion_form``: Eq. 4 verbatim by default, or the
  bounded additive variant h1 + f(h1) ∘ gate(tanh h1)).  HNN: 2 outputs, field = ∂F2/∂x · Mᵀ; ``mlp``: the HNN
  paper's baseline that outputs dx/dt directly.
* Training in steps (the papers count iterations, not epochs): one reported
  "epoch" is ``train.steps_per_epoch`` Adam steps on random batches, so
  ``train.epochs × train.steps_per_epoch`` = total steps (2-body/3-body:
  20 × 500 = 10,000; pendulum 20 × 100 = 2,000), and checkpoints and ASHA
  work per epoch.
* Metrics: ``test_loss`` (MSE of dx/dt on every test row, the HNN paper's test
  loss), ``train_loss`` (mean step loss of the epoch), ``test_traj_mse`` and
  ``test_energy_mse``: the learned field integrated (RK4, float64) from each
  test trajectory's true initial state over its time span, compared to the
  true states and to the true energy (the system's Hamiltonian of the
  predicted states vs of the true ones), averaged over trajectories, time
  points after t0 and coordinates (Tables II, III); these two every
  ``eval.rollout_every`` epochs and after the last (per system, see settings.SYSTEMS).

What the seed controls (``train.data_order`` returns the data side): the
weight initialisation (stream "model" of tasks.common.stream_seed: torch's
global RNG reseeded right before the network is built) and which training rows
(ball: which windows) each step draws (stream "batches", its own CPU
generator, checkpointed).  The data are fixed: the trajectories, their
observation noise and the train/test split are simulated once from
``data.seed`` (cached), not from the trial seed; the ball's trajectory is
deterministic.  So for one seed every cell with the same ``data.*``,
``ball.*`` and batch/step settings (none, add, concat, cfu, pu; hnn or mlp;
any order or width) sees the same data and the same batches in the same
order; only the init depends on the model.

A setting 0 (or negative for noise / weight decay) means "the paper's value
for ``data.system``" (``settings.SYSTEMS``); the trial logs the resolved values.
Top level stays import-light (see tasks/schema.py).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..schema import Param, Slot, TaskSpec
from .settings import HNN_SYSTEMS, SYSTEMS, resolved

_HNN = {"data.system": HNN_SYSTEMS}
_POLY = {"model.fusion": ("cfu", "pu")}
FUSION_FORMS = ("eq4", "bounded_additive")     # components.fusion.FORMS (checked by a test)


def _check(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    errs = []
    system = cfg.get("data.system")
    if system == "bouncing_ball":
        # The first flight (from height 10 to radius 0.2, 50 points/s) is the longest window.
        longest = int((2 * (10.0 - 0.2) / 9.8) ** 0.5 * 50)
        if cfg.get("ball.batch_time", 10) > longest:
            errs.append(("ball.batch_time", f"a training window must fit in one flight: at most {longest} "
                                            f"grid points, got {cfg['ball.batch_time']}"))
    if system not in HNN_SYSTEMS:
        return errs
    p = resolved(cfg)
    if p["points"] < 2:
        errs.append(("data.points", f"a trajectory needs at least 2 time points, got {p['points']}"))
    n_test = int(round(p["trajectories"] * p["test_fraction"]))
    if not 1 <= n_test < p["trajectories"]:
        errs.append(("data.test_fraction",
                     f"{p['test_fraction']} of {p['trajectories']} trajectories gives {n_test} test "
                     f"trajectories; need at least 1 test and 1 training trajectory"))
    return errs


def _sparse(cfg: Dict[str, Any]) -> Dict[str, Tuple[int, str]]:
    if cfg.get("data.system") not in HNN_SYSTEMS:
        return {}
    every = resolved(cfg)["rollout_every"]
    return {m: (every, "eval.rollout_every") for m in ("test_traj_mse", "test_energy_mse")} if every > 1 else {}


SPEC = TaskSpec(
    name="physics",
    description="HNN on 2-body / 3-body / pendulum, NODE on the bouncing ball; MLP fusion none/add/CFU",
    paper="CFU paper (000) Sec. IV-B, Tables II and III; HNN (Greydanus et al. 2019) data and baselines",
    params={
        "data.system": Param(str, "pendulum", "simulated system", choices=tuple(SYSTEMS)),
        "data.trajectories": Param(int, 0, "trajectories simulated (0 = paper: 1000 / 5000 / 50)",
                                   low=0, high=1_000_000, when=_HNN),
        "data.points": Param(int, 0, "time points per trajectory (0 = paper: 50 / 20 / 45)",
                             low=0, high=100_000, when=_HNN),
        "data.t_end": Param(float, 0.0, "trajectories span [0, t_end] (0 = paper: 20 / 5 / 3)",
                            low=0.0, high=1e4, when=_HNN),
        "data.noise": Param(float, -1.0, "σ of Gaussian noise on observed states (< 0 = paper: 0 / 0 / 0.1)",
                            low=-1.0, high=10.0, when=_HNN),
        "data.test_fraction": Param(float, 0.0, "fraction of trajectories held out (0 = paper: 0.2 / 0.2 / 0.5)",
                                    low=0.0, high=0.99, when=_HNN),
        "data.seed": Param(int, 0, "seed of the simulated data (separate from the model seed)",
                           low=0, high=2**31 - 1),
        "model.kind": Param(str, "hnn", "hnn (field = ∂F2/∂x Mᵀ) or mlp (the HNN paper's baseline: "
                            "the MLP outputs dx/dt)", choices=("hnn", "mlp"), when=_HNN),
        "model.hidden": Param(int, 200, "width of both hidden layers", low=1, high=8192),
        "model.fusion": Param(str, "none", "fusion of h1 (shortcut) and f(h1) before the output layer; "
                              "none = reference MLP", choices=("none", "add", "concat", "cfu", "pu")),
        "model.order": Param(int, 4, "Chebyshev (cfu) / power (pu) order d (Eq. 4)", low=0, high=20, when=_POLY),
        "model.fusion_form": Param(str, "eq4", "eq4 = Eq. 4 verbatim, f∘gate(h1); bounded_additive = "
                                   "h1 + f∘gate(tanh h1) (components/fusion.py FORMS)", choices=FUSION_FORMS,
                                   when=_POLY),
        "optim.lr": Param(float, 1e-3, "Adam learning rate", low=1e-8, high=1.0),
        "optim.weight_decay": Param(float, -1.0, "Adam weight decay (< 0 = paper: 0 / 1e-4 / 1e-4)",
                                    low=-1.0, high=1.0),
        "train.batch_size": Param(int, 0, "rows (ball: windows) per step (0 = paper: 200 / 600 / full / 20)",
                                  low=0, high=10_000_000),
        "train.steps_per_epoch": Param(int, 500, "Adam steps per reported epoch", low=1, high=1_000_000),
        "train.epochs": Param(int, 20, "reported epochs (total steps = epochs × steps_per_epoch)",
                              low=1, high=100_000),
        "ball.bounces": Param(int, 4, "bounces observed (the trajectory ends at the last contact)",
                              low=1, high=50, when={"data.system": ("bouncing_ball",)}),
        "ball.batch_time": Param(int, 10, "grid points per training window (ode_demo's batch_time)",
                                 low=2, high=1000, when={"data.system": ("bouncing_ball",)}),
        "eval.substeps": Param(int, 0, "RK4 steps per observation interval in the test rollouts "
                                       "(0 = per system: 4 / 10 / 2, ball 10; see SYSTEMS)", low=0, high=10_000),
        "eval.trajectories": Param(int, 0, "test trajectories rolled out (0 = all)", low=0, high=1_000_000),
        "eval.rollout_every": Param(int, 0, "roll out the test trajectories (test_traj_mse, test_energy_mse) "
                                    "every N epochs and after the last; test_loss is every epoch "
                                    "(0 = per system: 1 / 5 / 1; see SYSTEMS)", low=0, high=100_000, when=_HNN),
    },
    metrics={"test_traj_mse": "min", "test_energy_mse": "min", "test_loss": "min", "train_loss": "min",
             "epoch_seconds": "min"},
    run="tasks.physics.train:run",
    check=_check,
    sparse=_sparse,
    smoke={"data.trajectories": 8, "data.points": 10, "data.test_fraction": 0.25, "model.hidden": 32,
           "train.epochs": 2, "train.steps_per_epoch": 10, "eval.substeps": 2},
    slots=(Slot("model.fusion", "fusion",
                "(channels) -> forward(shortcut h1, current f(h1): (N, hidden) each) -> (N, hidden), twice "
                "differentiable (the HNN differentiates the field); none: the reference MLP",
                passes=("channels",), extra=("none",), task_args=(("order", "model.order"),),
                probe="tasks.physics.probes:fusion_probes"),),
)

