"""Medical image segmentation: the hyper-convolution authors' max-pool UNet (or
MONAI's UNet) with concat/CFU skip fusion and standard/hyper convolutions, Dice
loss and metric, noise-robustness metrics.

Papers: CFU (shared/seeds/000), Sec. IV-A, Table I (UNet-CFU vs concatenative
UNet, Chebyshev order 1..9); hyper-convolutions (shared/seeds/003), Sec. 4.2
Tables 1-4 (kernel size x N_L) and Sec. 4.3 / Fig. 6 (test Dice under
Gaussian, salt-and-pepper and speckle noise; models trained on clean images).

* Data (``data.py``): MONAI's synthetic circles/spheres by default (fixed,
  seeded train/test sets), or ACDC, BraTS, LiTS, Medical Segmentation
  Decathlon NIfTI volumes from ``data.root`` (layouts in ``data.py``; a
  missing file fails ``check`` before launch, never a silent fallback).
* Model (``models.py``): ``model.backbone`` "unet" (default) is the
  hyper-convolution paper's own (Hyper-)UNet as its authors' code lays it out
  (``maxpool_unet.py``: three max-pools, two convs per scale, nearest
  upsampling + conv, batch norm, ReLU, dropout 0.5; its parameter counts are
  the paper's Tables 1-2); "monai" is MONAI's UNet (strided residual units,
  transposed-conv upsampling; ablate's backbone before issue 26) with its convs
  converted to hyper-convs.  32 start channels doubling, Adam 1e-4, batch 8,
  soft-Dice loss.
* Loss: monai.losses.DiceLoss (softmax, foreground classes, squared
  denominator, summed over the batch like the paper's soft Dice).  Metric:
  monai.metrics.DiceMetric on argmax predictions, foreground classes, mean
  over images that contain the class.
* Metrics: test_dice, train_loss per epoch; after the last epoch (with
  eval.noise) ``dice_<noise>_<level>`` for each level of ``noise.NOISE_LEVELS``.

What the seed controls (``data.data_order`` returns the data side): the
weight initialisation (stream "model" of tasks.common.stream_seed: torch's
global RNG reseeded right before the UNet is built; dropout continues on it)
and the order of the training batches (stream "batches", its own CPU
generator, checkpointed).  The data are fixed: the synthetic images and the
NIfTI train/test split by patient come from ``data.seed``, not the trial seed,
and the test-time noise from ``noise.NOISE_SEED``; there is no augmentation.  So for one
seed every cell with the same ``data.*``, ``model.dims`` and
``train.batch_size`` (concat or cfu/pu/add fusion, standard or hyper conv, any
kernel size or N_L) sees the same images, split and batches in the same order,
and the same noisy test sets; only the init and the dropout draws depend on the
model.

Top level stays import-light (no torch/MONAI); see tasks/schema.py.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..schema import Param, Slot, TaskSpec
from .layouts import data_params, data_problems
from .noise import noise_metric_names

BACKBONES = ("unet", "monai")
FUSION_FORMS = ("eq4", "bounded_additive")     # components.fusion.FORMS (checked by a test)
HYPER_INITS = ("he_normal", "conv_default")     # components.hyperconv._INITS (checked by a test)
DROPOUT_AT = ("reference", "bottom", "every_block")


def _check(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    errs = []
    for key in ("model.kernel_size", "model.up_kernel_size"):
        k = cfg.get(key, 3)
        if k % 2 == 0 and not (key == "model.up_kernel_size" and k == 0):
            errs.append((key, f"kernel size must be odd (a kernel grid centred on a pixel), got {k}"))
    size, depth = cfg.get("data.size"), cfg.get("model.depth")
    if size % 2 ** depth:
        ok = [s for s in range(2 ** depth, 4 * size + 1, 2 ** depth)][:6]
        errs.append(("data.size", f"image size {size} must be divisible by 2^model.depth = {2 ** depth} "
                                  f"(each level halves it); e.g. {ok}"))
    if cfg.get("model.backbone") == "unet" and cfg.get("model.conv") == "hyper" and cfg["model.base_channels"] < 2:
        errs.append(("model.base_channels", f"the Hyper-UNet's input block has base_channels // 2 channels: "
                                            f"need >= 2, got {cfg['model.base_channels']}"))
    errs.extend(data_problems(cfg))
    return errs


_CFU = {"model.fusion": ("cfu", "pu")}
_UNET = {"model.backbone": ("unet",)}

SPEC = TaskSpec(
    name="segmentation",
    description="the hyper-conv authors' UNet or MONAI's (2D/3D): concat vs CFU skip fusion, standard vs hyper "
                "convs; Dice; noise robustness",
    paper="CFU paper (000) Sec. IV-A Table I; hyper-convolution paper (003) Sec. 4.2-4.3, Tables 1-4, Fig. 6",
    params={
        "model.dims": Param(int, 2, "spatial dimensions (2D images/slices or 3D volumes)", choices=(2, 3)),
        "model.backbone": Param(str, "unet", "unet = the hyper-conv authors' max-pool (Hyper-)UNet "
                                "(maxpool_unet.py); monai = MONAI's UNet, convs converted", choices=BACKBONES),
        "model.fusion": Param(str, "concat", "skip fusion: concat = the UNet's; add/cfu/pu replace the concat",
                              choices=("concat", "add", "cfu", "pu")),
        "model.order": Param(int, 4, "Chebyshev (cfu) / power (pu) order d (Eq. 4)", low=0, high=20, when=_CFU),
        "model.fusion_form": Param(str, "eq4", "eq4 = Eq. 4 verbatim, f∘gate(x); bounded_additive = "
                                   "x + f∘gate(tanh x) (components/fusion.py FORMS)", choices=FUSION_FORMS,
                                   when=_CFU),
        "model.conv": Param(str, "standard", "convolution kind", choices=("standard", "hyper")),
        "model.kernel_size": Param(int, 3, "kernel size of every non-pointwise conv (odd)", low=1, high=15),
        "model.n_l": Param(int, 4, "N_L, last hidden width of each hyper-network (Sec. 3.1)", low=1, high=256,
                           when={"model.conv": ("hyper",)}),
        "model.hyper_init": Param(str, "he_normal", "hyper-conv init: he_normal = the authors' code; "
                                  "conv_default = kernel at nn.Conv's scale", choices=HYPER_INITS,
                                  when={"model.conv": ("hyper",)}),
        "model.base_channels": Param(int, 32, "channels of the first scale (doubling per scale)", low=1, high=1024),
        "model.depth": Param(int, 3, "downsamplings (paper: three max-pool layers)", low=1, high=6),
        "model.dropout_at": Param(str, "reference", "unet: where dropout goes; reference = the authors' code "
                                  "(standard: bottom block; hyper: every block)", choices=DROPOUT_AT, when=_UNET),
        "model.up_kernel_size": Param(int, 0, "unet: up-conv kernel (0 = model.kernel_size; the code's "
                                      "standard UNet hard-codes 3)", low=0, high=15, when=_UNET),
        "model.res_units": Param(int, 2, "MONAI num_res_units (2 = two convs per scale, as the paper)",
                                 low=0, high=4, when={"model.backbone": ("monai",)}),
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
    slots=(Slot("model.fusion", "fusion",
                "(channels) -> forward(shortcut: encoder feature, current: up-sampled feature, (N, C, *S) each) -> "
                "(N, C, *S), at each decoder scale (concat: the UNet's own concatenation)",
                passes=("channels",), extra=("concat",), task_args=(("order", "model.order"),),
                probe="tasks.segmentation.probes:fusion_probes"),),
)
