"""Medical image segmentation: MONAI UNet with concat/CFU skip fusion and
standard/hyper convolutions, Dice loss and metric, noise-robustness metrics.

Papers: CFU (shared/seeds/000), Sec. IV-A, Table I (UNet-CFU vs concatenative
UNet, Chebyshev order 1..9); hyper-convolutions (shared/seeds/003), Sec. 4.2
Tables 1-4 (kernel size x N_L) and Sec. 4.3 / Fig. 6 (test Dice under
Gaussian, salt-and-pepper and speckle noise; models trained on clean images).

* Data (``data.py``): MONAI's synthetic circles/spheres by default (fixed,
  seeded train/test sets), or ACDC, BraTS, LiTS, Medical Segmentation
  Decathlon NIfTI volumes from ``data.root`` (layouts in ``data.py``; a
  missing file fails ``check`` before launch, never a silent fallback).
* Model (``models.py``): paper-scale defaults from the hyper-convolution paper
  (Sec. 4, paper-notes): 32 start channels doubling, three downsamplings
  ("three max-pool layers", i.e. four scales - the notes' "depth 4"), two
  convolutions per scale (MONAI num_res_units=2), batch norm, ReLU, dropout
  0.5; Adam 1e-4, batch 8, soft-Dice loss.
* Loss: monai.losses.DiceLoss (softmax, foreground classes, squared
  denominator, summed over the batch like the paper's soft Dice).  Metric:
  monai.metrics.DiceMetric on argmax predictions, foreground classes, mean
  over images that contain the class.
* Metrics: test_dice, train_loss per epoch; after the last epoch (with
  eval.noise) ``dice_<noise>_<level>`` for each level in NOISE_LEVELS.

What the seed controls (``data.data_order`` returns the data side): the
weight initialisation (stream "model" of tasks.common.stream_seed: torch's
global RNG reseeded right before the UNet is built; dropout continues on it)
and the order of the training batches (stream "batches", its own CPU
generator, checkpointed).  The data are fixed: the synthetic images and the
NIfTI train/test split by patient come from ``data.seed``, not the trial seed,
and the test-time noise from NOISE_SEED; there is no augmentation.  So for one
seed every cell with the same ``data.*``, ``model.dims`` and
``train.batch_size`` (concat or cfu/pu/add fusion, standard or hyper conv, any
kernel size or N_L) sees the same images, split and batches in the same order,
and the same noisy test sets; only the init and the dropout draws depend on the
model.

Top level stays import-light (no torch/MONAI); see tasks/schema.py.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..schema import Param, TaskSpec
from .layouts import REAL as _REAL, SYNTHETIC as _SYN, data_params, data_problems

# Hyper-convolution paper Sec. 4.3 / Fig. 6: the figure's noise levels are not
# in the text, so these are chosen on the [0, 1] intensity scale the paper
# normalises to (mild, moderate, strong).  Gaussian and speckle: standard
# deviation; salt-and-pepper ("saltpepper"): fraction of pixels replaced.
NOISE_LEVELS: Dict[str, Tuple[float, ...]] = {
    "gaussian": (0.05, 0.1, 0.2),
    "saltpepper": (0.02, 0.05, 0.1),
    "speckle": (0.1, 0.2, 0.4),
}
NOISE_SEED = 1234   # one noisy test set shared by every model and seed


def noise_metric_names() -> List[str]:
    return [f"dice_{kind}_{lvl:g}" for kind, lvls in NOISE_LEVELS.items() for lvl in lvls]


def _check(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    errs = []
    k = cfg.get("model.kernel_size", 3)
    if k % 2 == 0:
        errs.append(("model.kernel_size", f"kernel size must be odd (a kernel grid centred on a pixel), got {k}"))
    size, depth = cfg.get("data.size"), cfg.get("model.depth")
    if size % 2 ** depth:
        ok = [s for s in range(2 ** depth, 4 * size + 1, 2 ** depth)][:6]
        errs.append(("data.size", f"image size {size} must be divisible by 2^model.depth = {2 ** depth} "
                                  f"(each level halves it); e.g. {ok}"))
    errs.extend(data_problems(cfg))
    return errs


_CFU = {"model.fusion": ("cfu", "pu")}

SPEC = TaskSpec(
    name="segmentation",
    description="MONAI UNet (2D/3D): concat vs CFU skip fusion, standard vs hyper convs; Dice; noise robustness",
    paper="CFU paper (000) Sec. IV-A Table I; hyper-convolution paper (003) Sec. 4.2-4.3, Tables 1-4, Fig. 6",
    params={
        "model.dims": Param(int, 2, "spatial dimensions (2D images/slices or 3D volumes)", choices=(2, 3)),
        "model.fusion": Param(str, "concat", "skip fusion: concat = MONAI UNet; add/cfu/pu replace the concat",
                              choices=("concat", "add", "cfu", "pu")),
        "model.order": Param(int, 4, "Chebyshev (cfu) / power (pu) order d (Eq. 4)", low=0, high=20, when=_CFU),
        "model.fusion_identity": Param(bool, True, "fusion keeps the shortcut: x + f∘gate (False: Eq. 4 verbatim)",
                                       when=_CFU),
        "model.conv": Param(str, "standard", "convolution kind", choices=("standard", "hyper")),
        "model.kernel_size": Param(int, 3, "kernel size of every non-pointwise conv (odd)", low=1, high=15),
        "model.n_l": Param(int, 4, "N_L, last hidden width of each hyper-network (Sec. 3.1)", low=1, high=256,
                           when={"model.conv": ("hyper",)}),
        "model.base_channels": Param(int, 32, "channels of the first scale (doubling per scale)", low=1, high=1024),
        "model.depth": Param(int, 3, "downsamplings (paper: three max-pool layers)", low=1, high=6),
        "model.res_units": Param(int, 2, "MONAI num_res_units (2 = two convs per scale, as the paper)",
                                 low=0, high=4),
        "model.norm": Param(str, "batch", "normalisation layer", choices=("batch", "instance")),
        "model.dropout": Param(float, 0.5, "dropout probability (paper: 0.5)", low=0.0, high=0.95),
        "optim.lr": Param(float, 1e-4, "Adam learning rate", low=1e-8, high=1.0),
        "optim.weight_decay": Param(float, 0.0, "Adam weight decay", low=0.0, high=1.0),
        "train.epochs": Param(int, 100, "epochs", low=1, high=10000),
        "train.batch_size": Param(int, 8, "mini-batch size", low=1, high=4096),
        "eval.noise": Param(bool, True, "after the last epoch, test Dice under each noise type and level"),
        **data_params(size=128, size_low=4, n_train=256, n_test=64, num_objs=12, rad_max=30, rad_min=5, rad_high=512),
    },
    metrics={"test_dice": "max", "train_loss": "min", "epoch_seconds": "min",
             **{m: "max" for m in noise_metric_names()}},
    run="tasks.segmentation.train:run",
    check=_check,
    smoke={"data.size": 32, "data.n_train": 8, "data.n_test": 4, "data.rad_max": 7, "data.rad_min": 2,
           "data.num_objs": 4, "model.base_channels": 4, "model.depth": 2, "model.res_units": 1,
           "train.epochs": 1, "train.batch_size": 4},
)
