"""Dense segmentation with the fully hyperbolic encoder-decoder: reversible
wavelet coarsening vs pooling, depth, and the activation memory it costs.

Paper: "Fully Hyperbolic Convolutional Neural Networks" (Lensink, Peters,
Haber; shared/seeds/001), Secs. 3.2, 5 and 6.1, Tables 1-2.

* Model: ``hyperbolic_net/leapfrog`` (components/hyperbolic.py): an
  opening, 2 n_levels + 1 units of ``model.depth`` leapfrog layers
  (Eq. 3.2), one coarsening (``model.coarsen``: dwt, learnable_dwt,
  avgpool, maxpool; components/wavelets.py) after each encoder unit and its
  inverse before each decoder unit, a head.  Defaults follow Table 2:
  three resolutions (n_levels 2) and 4 layers per unit (5 units = 20
  layers, the table lists 19); h = 0.1.  Where the paper's text and the
  authors' code (klensink/HyperNet) differ, the task has a key
  (components/hyperbolic.py says why each default): ``model.layout``
  (reference = the image's channels repeated up to width and a 3x3 head
  without bias, as the code and Sec. 6.1.2; learned_opening = a 3x3 opening
  conv and a 1x1 head), ``model.bias`` (b in f; off as in the code, the
  paper's θ = {K, b} has it), ``model.wavelet_scale`` (orthonormal as the
  paper; reference = the code's 0.5x Haar).
* Reversibility (Sec. 5, Algorithm 5.1): ``model.reversible`` only exists
  for the invertible coarsenings (dwt, learnable_dwt; default True); for
  avgpool/maxpool the key is dropped (Param.when) and the network trains with
  plain autograd, so a coarsen x depth grid has no invalid cells and the
  pooling cells are the paper's "non-reversible" column of Table 1.
* Data (``tasks/segmentation/data.py``, reused, not copied): MONAI's
  synthetic circles/spheres (fixed seeded train/test sets) by default, or a
  local NIfTI dataset (decathlon/acdc/brats/lits layouts, checked before
  launch).  The paper trains on one partially labelled hyperspectral volume
  and one DAVIS video (Sec. 6.1); neither is a standard local dataset.
* Loss: cross-entropy (the paper's segmentation "misfit"; Sec. 6 names no
  other), or MONAI DiceCELoss with ``train.loss=dicece``.
* Optimiser: SGD, lr 0.1 (Sec. 6.2.2, the only deep-network learning rate
  the paper states; Sec. 6.1 gives none), momentum 0.9.  The momentum is our
  choice: the paper does not say, and plain SGD at lr 0.1 had not left the
  all-background solution after 10 epochs on the synthetic circles.
* Metrics: test_dice (MONAI DiceMetric, foreground), test_iou (MONAI
  MeanIoU, foreground, cf. the paper's "positive IOU"), test_miou (MeanIoU
  with background, cf. the paper's "mean IOU"), train_loss, epoch_seconds,
  peak_mem_mb (activation memory of one training step; how it is measured:
  tasks/hyperbolic/memory.py).

What the seed controls (``train.data_order`` returns the data side): the
weight initialisation (stream "model" of tasks.common.stream_seed: torch's
global RNG reseeded right before the network is built) and the order of the
training batches (stream "batches", its own CPU generator, checkpointed).  The
data are fixed: images and split come from ``data.seed``, not the trial seed;
there is no augmentation and no dropout.  So for one seed every cell with the
same ``data.*`` and ``train.batch_size`` (any coarsening, depth, width, h,
reversible or not) sees the same images and batches in the same order; only
the init depends on the model.

Top level stays import-light (no torch/MONAI); see tasks/schema.py.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from ..schema import Param, Slot, TaskSpec
from ..segmentation.layouts import data_params, data_problems, find_cases
from .coarsenings import COARSEN, INVERTIBLE, LAYOUTS, WAVELET_SCALES


def _check(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    errs = []
    size, levels = cfg["data.size"], cfg["model.n_levels"]
    if size % 2 ** levels:
        ok = list(range(2 ** levels, 4 * size + 1, 2 ** levels))[:6]
        errs.append(("data.size", f"image size {size} must be divisible by 2^model.n_levels = {2 ** levels} "
                                  f"(each coarsening halves it); e.g. {ok}"))
    data_errs = data_problems(cfg)
    errs.extend(data_errs)
    if cfg.get("model.layout") == "reference" and not data_errs:
        source = cfg["data.source"]
        channels = 1 if source == "synthetic" else find_cases(source, cfg["data.root"])[3]
        if cfg["model.width"] % channels:
            ok = [channels * i for i in range(1, 5)]
            errs.append(("model.width", f"with model.layout=reference the image's {channels} channels are repeated "
                                        f"up to model.width, so it must be a multiple of {channels}, got "
                                        f"{cfg['model.width']}; e.g. {ok}, or model.layout=learned_opening"))
    return errs



SPEC = TaskSpec(
    name="hyperbolic",
    description="fully hyperbolic encoder-decoder segmentation: dwt / learnable_dwt / avgpool / maxpool "
                "coarsening x depth; Dice, IoU and training-step activation memory",
    paper="Fully Hyperbolic CNNs (001), Secs. 3.2, 5, 6.1, Tables 1-2",
    params={
        "model.dims": Param(int, 2, "spatial dimensions (2D images; 3D volumes as the paper's video)",
                            choices=(2, 3)),
        "model.coarsen": Param(str, "dwt", "coarsening W_j (Eqs. 3.4-3.7); pooling is not invertible",
                               choices=COARSEN),
        "model.reversible": Param(bool, True, "backpropagate by recomputing states backwards (Sec. 5)",
                                  when={"model.coarsen": INVERTIBLE}),
        "model.depth": Param(int, 4, "leapfrog layers per unit (2 n_levels + 1 units)", low=1, high=1024),
        "model.n_levels": Param(int, 2, "coarsenings = refinements (Table 2: three resolutions)", low=0, high=8),
        "model.width": Param(int, 8, "channels at full resolution (x 2^dims per level)", low=1, high=4096),
        "model.h": Param(float, 0.1, "leapfrog step size h (f scaled by h^2)", low=1e-6, high=1.0),
        "model.bias": Param(bool, False, "learn b in f(Y) = -K^T relu(N(K Y + b)) (Sec. 3.1; the authors' code "
                                         "has none)"),
        "model.layout": Param(str, "reference", "reference = channels repeated to width + 3x3 head without bias "
                              "(the authors' code); learned_opening = 3x3 opening conv + 1x1 head", choices=LAYOUTS),
        "model.wavelet_scale": Param(str, "orthonormal", "Haar scale: orthonormal (the paper) or reference "
                                     "(the authors' code, 0.5x in 2D)", choices=WAVELET_SCALES,
                                     when={"model.coarsen": INVERTIBLE}),
        "optim.name": Param(str, "sgd", "optimiser (the paper's experiments use SGD)", choices=("sgd", "adam")),
        "optim.lr": Param(float, 0.1, "learning rate (Sec. 6.2.2: 1e-1)", low=1e-8, high=10.0),
        "optim.momentum": Param(float, 0.9, "SGD momentum (not stated in the paper)", low=0.0, high=0.999,
                                when={"optim.name": ("sgd",)}),
        "optim.weight_decay": Param(float, 0.0, "L2 weight decay", low=0.0, high=1.0),
        "train.loss": Param(str, "ce", "ce = cross-entropy; dicece = MONAI DiceCELoss", choices=("ce", "dicece")),
        "train.epochs": Param(int, 100, "epochs (Sec. 6.2: 100)", low=1, high=100000),
        "train.batch_size": Param(int, 8, "mini-batch size", low=1, high=4096),
        **data_params(size=64, size_low=1, n_train=128, n_test=32, num_objs=6, rad_max=14, rad_min=4, rad_high=2048),
    },
    metrics={"test_dice": "max", "test_iou": "max", "test_miou": "max", "train_loss": "min",
             "peak_mem_mb": "min", "epoch_seconds": "min"},
    run="tasks.hyperbolic.train:run",
    check=_check,
    smoke={"data.size": 16, "data.n_train": 4, "data.n_test": 2, "data.num_objs": 2, "data.rad_max": 5,
           "data.rad_min": 2, "model.width": 4, "train.epochs": 1, "train.batch_size": 4},
    slots=(Slot("model.coarsen", "coarsen",
                "(channels, dims) -> forward(x: (N, C, *S)) -> (N, C * 2^dims, *S / 2), once per level; invertible "
                "(attribute invertible, method inverse) makes the network reversible",
                passes=("channels", "dims"), task_args=(("scale", "model.wavelet_scale"),),
                probe="tasks.hyperbolic.probes:coarsen_probes"),),
)
