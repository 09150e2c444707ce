"""The fully hyperbolic network as a variational auto-encoder on digits.

Paper: "Fully Hyperbolic Convolutional Neural Networks" (Lensink, Peters,
Haber; shared/seeds/001), Sec. 4 (Eqs. 4.1, 4.2) and Sec. 6.2.1 (MNIST).

* Model: ``hyperbolic_vae/leapfrog`` (components/hyperbolic_vae.py): units
  of leapfrog layers with W = I, each followed by a Haar DWT; encoder
  Ẑ = Pᵀ F(X), decoder F⁻¹(P Ẑ), P initialised to I.  Paper-scale defaults
  (Sec. 6.2.1): 32×32 images, 5 units of 3 layers, h = 1e-2, so F(X) is the
  final 1×1×1024 state: the paper's "original 1024" latent dimensions
  (``model.latent``: final_state; both_states keeps the leapfrog pair, 2048,
  exactly invertible); ‖P‖_c groups P's rows as Eq. (4.2) says
  (``model.groups``; columns as Sec. 6.2.1's removal); the leapfrog has no
  bias and the Haar is orthonormal (``model.bias``, ``model.wavelet_scale``:
  the authors' code vs the paper, components/hyperbolic.py).
* Data: sklearn's digits (8×8, 0..16; the offline stand-in for MNIST), the
  same fixed stratified 1437 / 360 split as ``tasks/digits.py``, scaled to
  [0, 1], bilinearly resized to ``data.size`` (the paper resizes MNIST to
  32×32) and normalised by the training set's channel mean and std (the paper
  uses MNIST's 0.1307 / 0.3081).
* Loss, Eq. (4.2): squared reconstruction error as a per-pixel mean (torch's
  MSELoss; the per-image sum diverged at the paper's learning rates: its
  curvature in P grows with the pixel count) + ``loss.alpha`` ‖P‖_c +
  ``loss.beta`` ε(Ẑ); α and β are not given in the paper.  Optimiser (Sec.
  6.2.1): SGD, lr 1e-2 for θ and 5e-3 for P, 100 epochs; batch 64 instead of
  512, because digits has 1,437 training images (3 steps per epoch at 512,
  against MNIST's 117): the columns of P shrink by at most lr·α per step,
  so the step count decides how far the truncation gets.  The group norm is
  applied as a proximal step after each SGD step (``optim.prox``, default):
  a subgradient step leaves columns oscillating around zero with amplitude
  lr·α, above the 1e-3 cut, so nothing is ever removed.  Measured with the
  defaults (seed 0, 100 epochs, ~2 s/epoch on 1 loaded CPU): 128 → 35 latent
  dimensions, per-pixel test MSE 0.21 of the data's unit variance; the
  columns start at norm 1 and shrink by lr·α = 5e-4 per step, so removal
  starts after ~80 epochs (the paper: 1024 → 8 on MNIST after ~11,700 steps).
  (That measurement predates issue 26: 8×8 images, both leapfrog states,
  column groups, bias.)
* Metrics: ``test_recon_mse`` (per pixel, with P truncated as in Sec. 6.2.1:
  rows and columns whose entries are all below ``model.tol`` removed),
  ``test_recon_mse_full`` (untruncated P), ``latent_dims`` (min(rows kept,
  columns kept) of P; the paper reaches 8 of 1024 on MNIST), ``test_gauss`` (ε
  on the test codes), ``train_loss``.

What the seed controls (``train.data_order`` returns the data side): the
weight initialisation (stream "model" of tasks.common.stream_seed: torch's
global RNG reseeded right before the network is built; P starts at I whatever
the seed) and the order of the training batches (stream "batches", its own
CPU generator, checkpointed).  The data are fixed: tasks/digits.py's
random_state=0 split, the same for every seed and cell; there is no
augmentation and no dropout.  So for one seed every cell with the same
``data.size`` and ``train.batch_size`` (dwt or learnable_dwt, any depth, α, β)
sees the same images and batches in the same order; only the init depends on
the model.

Top level stays import-light (see tasks/schema.py).
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Tuple

from ..schema import Param, Slot, TaskSpec


def _check(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    top = int(math.log2(cfg["data.size"]))
    if cfg["model.units"] > top:
        return [("model.units", f"{cfg['model.units']} units halve a {cfg['data.size']}x{cfg['data.size']} image "
                                f"below 1x1; at most log2(data.size) = {top}")]
    return []


SPEC = TaskSpec(
    name="hyperbolic_vae",
    description="fully hyperbolic reversible auto-encoder with a learnable truncating projection P on digits",
    paper="Fully Hyperbolic CNNs (001), Sec. 4 (Eqs. 4.1-4.2), Sec. 6.2.1",
    params={
        "data.size": Param(int, 32, "image side after bilinear resizing (Sec. 6.2.1: 32; 8 = native digits)",
                           choices=(8, 16, 32)),
        "model.units": Param(int, 5, "units (leapfrog layers + one Haar DWT); log2(data.size) ends at 1x1 "
                             "(Sec. 6.2.1: 5)", low=0, high=5),
        "model.depth": Param(int, 3, "leapfrog layers per unit (Sec. 6.2.1: 3)", low=1, high=256),
        "model.h": Param(float, 1e-2, "leapfrog step size (Sec. 6.2.1: 1e-2)", low=1e-6, high=1.0),
        "model.coarsen": Param(str, "dwt", "wavelet of each unit", choices=("dwt", "learnable_dwt")),
        "model.bias": Param(bool, False, "learn b in f(Y) = -K^T relu(N(K Y + b)) (the authors' code has none)"),
        "model.latent": Param(str, "final_state", "F(X): final_state (C S^2, the paper's 1024) or both_states "
                              "(the leapfrog pair, 2 C S^2, exactly invertible)", choices=("final_state", "both_states")),
        "model.groups": Param(str, "rows", "groups of the 1-2 norm of P: rows (Eq. 4.2) or columns (Sec. 6.2.1)",
                              choices=("rows", "columns")),
        "model.wavelet_scale": Param(str, "orthonormal", "Haar scale: orthonormal (the paper) or reference "
                                     "(the authors' code, 0.5x)", choices=("orthonormal", "reference")),
        "model.reversible": Param(bool, True, "encoder backward by recomputation (Sec. 5)"),
        "model.gauss": Param(str, "moments", "Gaussianity penalty ε (components/hyperbolic_vae.py)",
                             choices=("moments", "kl")),
        "model.tol": Param(float, 1e-3, "a row or column of P is removed when all its entries are below this "
                                        "(Sec. 6.2.1: 1e-3)", low=1e-12, high=1.0),
        "loss.alpha": Param(float, 0.1, "weight of the group norm of P (Eq. 4.2; not given in the paper)",
                            low=0.0, high=1e6),
        "loss.beta": Param(float, 1e-2, "weight of the Gaussianity penalty (Eq. 4.2; not given)", low=0.0, high=1e6),
        "optim.lr": Param(float, 1e-2, "SGD learning rate of the network θ (Sec. 6.2.1: 1e-2)", low=1e-8, high=10.0),
        "optim.lr_p": Param(float, 5e-3, "SGD learning rate of P (Sec. 6.2.1: 5e-3)", low=1e-8, high=10.0),
        "optim.prox": Param(bool, True, "the group norm by a proximal step on P (exact zeros); False: "
                                        "its subgradient in SGD"),
        "train.epochs": Param(int, 100, "epochs (Sec. 6.2.1: 100)", low=1, high=100000),
        "train.batch_size": Param(int, 64, "mini-batch size (Sec. 6.2.1: 512 on MNIST's 60k images)",
                                  low=2, high=65536),
    },
    metrics={"test_recon_mse": "min", "test_recon_mse_full": "min", "latent_dims": "min", "test_gauss": "min",
             "train_loss": "min", "epoch_seconds": "min"},
    run="tasks.hyperbolic_vae.train:run",
    check=_check,
    smoke={"data.size": 8, "model.units": 3, "model.depth": 1, "train.epochs": 2, "train.batch_size": 256},
    slots=(Slot("model.coarsen", "coarsen",
                "(channels, dims=2) -> forward(x: (N, C, S, S)) -> (N, 4C, S/2, S/2), once per unit; must be "
                "invertible (attribute invertible, method inverse): the decoder runs the network backwards",
                passes=("channels", "dims"), task_args=(("scale", "model.wavelet_scale"),),
                probe="tasks.hyperbolic_vae.probes:coarsen_probes"),),
)
