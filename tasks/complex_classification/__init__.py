"""Complex-valued image classification: CDS Type I / Type E vs DCN vs a real CNN,
with accuracy under random complex scaling (C-scaling) of the test inputs.

Paper: "Co-domain Symmetry for Complex-Valued Deep Learning" (shared/seeds/002),
Sec. 5.2 and Table 1 (CIFARNet models on CIFAR-10/100 and SVHN under the RGB,
LAB and Sliding encodings), Figs. 2c and 8c (accuracy under C-scaling with
different rotation ranges), Sec. 5.1 (MSTAR, complex SAR images).

* Data (``data.py``, ``mstar.py``, tasks/datasets.py): sklearn digits as 32x32
  RGB (offline default, nothing to download), or CIFAR-10 / CIFAR-100 / SVHN
  from ``data.root`` in their distributed formats, encoded per batch by the
  ``encoding`` component (rgb: 3 complex channels; lab, sliding: 2); or MSTAR-style
  complex images from ``.npy`` files (layout in ``mstar.py``), divided by the
  largest training magnitude (the reference's normalisation).  A validation set
  (``data.val_fraction``, paper: 5k of CIFAR's 50k -> 45k / 5k / 10k) is carved
  from the training split with a fixed permutation, the same for every seed.
* Model: ``complex_model`` component type_i / type_e / dcn / real (the CIFARNet
  trunk; in_channels from the encoding, input_size from the data).
* Optimiser (Sec. 5.2): AdamW, lr 1e-3, betas (0.99, 0.999), weight decay 0.1,
  batch 256, 5e4 steps = 285 epochs of 45k images; cross-entropy on the logits.
  (Sec. 5.1 trains MSTAR with betas (0.9, 0.99): set optim.beta1/beta2 for it.)
* Settings where the paper is silent or the authors' code differs (issue 25):
  ``model.cds_settings: paper | reference_code`` sets the EConv init, the GTReLU
  omega constraint, Type E's prototype scale and AdamW's beta1 at once; each also
  has its own key.  Table, precedence and conflicts: ``presets.py``.
* Metrics per epoch: train_loss, test_acc, val_acc, and test_acc_best_val (test
  accuracy of the epoch with the best validation accuracy so far: the paper's
  model selection).  After the last epoch (``eval.robustness``): ``acc_rot_<r>``
  for each rotation range r in ROTATIONS (rotations.py, multiples of pi), and ``rot_drop`` =
  acc_rot_0 - min over r.  Each test image z becomes s*z with s = |s| e^{i theta},
  theta ~ U[-r*pi, r*pi], |s| = 1: Fig. 8's caption says its examples undergo
  "multiplication by a unit complex number", and Sec. 3 leaves magnitude to input
  normalisation (Type E's eval-mode BN is not magnitude invariant, see
  components/cds_models.py).  ``eval.magnitude_range`` m > 1 also draws
  log|s| ~ U[-ln m, ln m].  The draws come from a fixed generator (ROT_SEED), so
  every model and seed sees the same s per test image, and one u ~ U[0, 1) per image
  is shared by all ranges (theta = (2u - 1) r pi): the curve is not noisier than
  the models.  The robustness curve uses the final model (not the best-val one).

What the seed controls (``data.data_order`` returns the data side): the
weight initialisation (stream "model" of tasks.common.stream_seed: torch's
global RNG reseeded right before the model is built) and the order of the
training batches (stream "batches", its own CPU generator, checkpointed).  The
train/val split (SPLIT_SEED), the limits, the test set and the test-time
scalings s (ROT_SEED) are fixed: the same for every seed and cell; there is no
augmentation.  So for one seed every cell with the same ``data.*`` and
``train.batch_size`` (type_i, type_e, dcn, real, any metric) sees the same
split and the same batches in the same order; only the init depends on the model.

Top level stays import-light (see tasks/schema.py); torch is imported in train.py.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .. import datasets
from ..schema import Param, Slot, TaskSpec
from .mstar import layout_problems
from .presets import CDS_SETTINGS, PRESET, problems
from .rotations import rotation_metric_names

RGB_DATASETS = ("digits", "cifar10", "cifar100", "svhn")
DATASET_NAMES = RGB_DATASETS + ("mstar",)
MODELS = ("type_i", "type_e", "dcn", "real")


def _check(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    name, root = cfg.get("data.name"), cfg.get("data.root", "")
    if name == "mstar":
        files = [("data.root", m) for m in layout_problems(root)]
    else:
        files = [("data.root", m) for m in datasets.file_problems(name, root)]
    return problems(cfg) + files


_CDS = {"model.type": ("type_i", "type_e")}
_FILES = {"data.name": ("cifar10", "cifar100", "svhn", "mstar")}

SPEC = TaskSpec(
    name="complex_classification",
    description="CDS Type I/E vs DCN vs real CIFARNet on complex-encoded images; accuracy under C-scaling",
    paper="Co-domain symmetry paper (002), Sec. 5.1-5.3, Table 1, Figs. 2c and 8c",
    params={
        "model.type": Param(str, "type_i", "complex_model component", choices=MODELS),
        "model.metric": Param(str, "euclidean", "prototype distance: euclidean (reference) or manifold (Eq. 7)",
                              choices=("euclidean", "manifold"), when=_CDS),
        "model.relative_eps": Param(bool, False, "Division layer offset relative to |denominator|^2 (exact "
                                    "invariance to any |s|); False: Eq. 4's absolute offset",
                                    when={"model.type": ("type_i",)}),
        "model.gauss": Param(bool, True, "Gauss's three-multiplication trick in complex convs",
                             when={"model.type": ("type_i", "type_e", "dcn")}),
        "model.cds_settings": Param(str, "paper", "where the paper and the authors' code differ: paper (text; "
                                    "init fan_in, omega none, prototype_scale mean, beta1 0.99) or reference_code "
                                    "(sutkarsh/cds: all reference, beta1 0.9); see presets.py",
                                    choices=CDS_SETTINGS),
        "model.init": Param(str, PRESET, "EConv init: fan_in (He by fan-in) or reference (fan-out/groups, gain "
                            "1/sqrt2); preset: as model.cds_settings says", choices=(PRESET, "fan_in", "reference"),
                            when=_CDS),
        "model.omega_constraint": Param(str, PRESET, "GTReLU phase scale omega: none (Sec. 3.6) or reference (clamp "
                                        "[0.5, 2] in type_i, relu in type_e); preset: as model.cds_settings says",
                                        choices=(PRESET, "none", "reference"), when=_CDS),
        "model.prototype_scale": Param(str, PRESET, "invariant head's prototype factor: mean (Eq. 8) or reference "
                                       "(sum_c f / sqrt(2C)); preset: as model.cds_settings says",
                                       choices=(PRESET, "mean", "reference"), when={"model.type": ("type_e",)}),
        "data.name": Param(str, "digits", "digits (offline), cifar10, cifar100, svhn or mstar (local files)",
                           choices=DATASET_NAMES),
        "data.root": Param(str, "", "directory holding the dataset's files (see tasks/datasets.py and "
                           "tasks/complex_classification/mstar.py)", when=_FILES),
        "data.encoding": Param(str, "lab", "complex encoding of RGB (Sec. 4): rgb, lab (Eq. 10), sliding (Eq. 9)",
                               choices=("rgb", "lab", "sliding"), when={"data.name": RGB_DATASETS}),
        "data.val_fraction": Param(float, 0.1, "fraction of training images held out for validation "
                                   "(paper: 5k of 50k)", low=0.0, high=0.5),
        "data.train_limit": Param(int, 0, "use only the first N training images (0 = all)", low=0, high=10**7),
        "data.test_limit": Param(int, 0, "use only the first N test images (0 = all)", low=0, high=10**7),
        "optim.lr": Param(float, 1e-3, "AdamW learning rate", low=1e-8, high=10.0),
        "optim.weight_decay": Param(float, 0.1, "AdamW weight decay", low=0.0, high=10.0),
        "optim.beta1": Param(str, PRESET, "AdamW beta1: a number in [0, 0.9999], or preset: as model.cds_settings "
                             "says (paper 0.99, Sec. 5.2; reference_code 0.9)"),
        "optim.beta2": Param(float, 0.999, "AdamW beta2", low=0.0, high=0.99999),
        "train.epochs": Param(int, 285, "epochs (paper: 5e4 steps of 256 on 45k images = 285 epochs)",
                              low=1, high=100000),
        "train.batch_size": Param(int, 256, "mini-batch size", low=1, high=65536),
        "eval.robustness": Param(bool, True, "after the last epoch, test accuracy under C-scaling per rotation "
                                 "range (acc_rot_*)"),
        "eval.magnitude_range": Param(float, 1.0, "m: also scale |s| log-uniformly in [1/m, m] (1 = phase only, "
                                      "as Fig. 8)", low=1.0, high=1e6),
        "eval.repeats": Param(int, 1, "independent draws of s per test image (accuracies averaged)",
                              low=1, high=100),
    },
    metrics={"test_acc": "max", "train_loss": "min", "val_acc": "max", "test_acc_best_val": "max",
             **{m: "max" for m in rotation_metric_names()}, "rot_drop": "min", "epoch_seconds": "min"},
    run="tasks.complex_classification.train:run",
    check=_check,
    smoke={"train.epochs": 1, "train.batch_size": 64, "data.train_limit": 256, "data.test_limit": 128},
    slots=(
        Slot("model.type", "complex_model",
             "(in_channels, num_classes, input_size) -> forward(z: complex (N, in_channels, S, S)) -> logits "
             "(N, num_classes), real", passes=("in_channels", "num_classes", "input_size"),
             task_args=(("metric", "model.metric"), ("relative_eps", "model.relative_eps"), ("gauss", "model.gauss"),
                        ("init", "model.init"), ("omega_constraint", "model.omega_constraint"),
                        ("prototype_scale", "model.prototype_scale")),
             probe="tasks.complex_classification.probes:model_probes"),
        Slot("data.encoding", "encoding",
             "() -> forward(rgb: (N, 3, H, W) in [0, 1]) -> complex (N, .channels, H, W); attribute channels",
             probe="tasks.complex_classification.probes:encoding_probes"),
    ),
)
