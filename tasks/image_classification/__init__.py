"""Image classification with cross-layer fusion: PCNN / ResNet18 / MobileNetV2
whose residual additions are ``fusion`` components (add, cfu, pu, ...).

Paper: "Parameter-Efficient Cross-Layer Feature Fusion via Chebyshev Polynomial
Unit" (shared/seeds/000_74f9e9f97bcca099.txt), Sec. IV-C and Table IV
(CIFAR-100 test accuracy of PCNN, MobileNetV2, ResNet18 with additive fusion
vs CFU / PU of order 1..9).

* Data (``data.py``, tasks/datasets.py): sklearn digits as 3x32x32 images
  (offline default), or CIFAR-10, CIFAR-100, SVHN from ``data.root`` in their
  distributed formats (never downloaded; missing files fail ``check`` before
  launch, naming the directory and files).  Per-channel mean/std of the
  training images; augmentation ``data.augment`` (auto = 4-pixel-pad random
  crop + horizontal flip on CIFAR, crop only on the digit datasets, where a
  flip changes the class).  The paper names no augmentation; its ResNet18's
  76.1 % on CIFAR-100 is what the standard crop + flip recipe reaches.
* Models (``models.py``): CIFAR variants written here (torchvision is unusable);
  PCNN's fusion placement is documented on ``models.PCNN``.
* Schedule (Sec. IV-C, the defaults): SGD momentum 0.9, weight decay 5e-4,
  lr 0.1 divided by 10 at epochs 40, 60, 80, 100, batch 128, 120 epochs.
  The CFU/PU α scalars are *excluded* from weight decay
  (``optim.fusion_weight_decay`` = 0): α_0 starts at 1/σ(1) so the gate is 1
  (components/fusion.py: the unit starts as f(x) in Eq. 4's form, as x + f(x)
  in the bounded additive one), and L2 decay would pull it towards 0, i.e.
  towards switching f(x) off, by a factor e^{-lr·wd·steps} ≈ 0.46 over
  the first 40 epochs of CIFAR even with no gradient, a bias additive fusion
  does not have.  The paper does not say; the d + 1 scalars are gates, not
  weights (set the key to 5e-4 to decay them too).
* Metrics per epoch: train_loss, train_acc (augmented batches), test_acc (%,
  the final epoch's is the result), val_acc when ``data.val_fraction`` > 0
  (a fixed slice of the training set, the same for every seed).
  ``reporter.annotate``: n_params, n_fusion_params, n_fusion_units, data source.

What the seed controls (``data.data_order`` returns the data side): the
weight initialisation (stream "model" of tasks.common.stream_seed: torch's
global RNG reseeded right before the backbone is built; MobileNetV2's dropout
continues on it), the order of the training batches (stream "batches") and the
crop offsets and flip coins (stream "augment"), each on its own CPU generator
and checkpointed, so a resumed trial continues all three exactly.  The
validation slice (VAL_SEED), the limits and the test set are fixed: the same
for every seed and cell.  So for one seed every cell with the same ``data.*``
and ``train.batch_size`` (any arch, fusion, order, width) sees the same split,
the same batches in the same order and the same crops and flips (crop and
crop_flip cells too: the coins are drawn for both); only the init and the
dropout draws depend on the model.

Top level stays import-light (see tasks/schema.py); torch is imported in train.py.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

from .. import datasets
from ..schema import Param, Slot, TaskSpec
from .schedule import parse_milestones

ARCHS = ("pcnn", "resnet18", "mobilenetv2")
FUSIONS = ("none", "add", "concat", "cfu", "pu")
AUGMENTS = ("auto", "crop_flip", "crop", "none")
_POLY = {"model.fusion": ("cfu", "pu")}
FUSION_FORMS = ("eq4", "bounded_additive")     # components.fusion.FORMS (checked by a test)
_LOCAL = {"data.name": tuple(d for d in datasets.DATASETS if d != "digits")}


def _check(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    errs: List[Tuple[str, str]] = [("data.root", m) for m in
                                   datasets.file_problems(cfg.get("data.name"), cfg.get("data.root", ""))]
    text, epochs = cfg.get("optim.milestones", ""), cfg.get("train.epochs", 1)
    try:
        ms = parse_milestones(text)
        if any(m < 1 for m in ms) or any(b <= a for a, b in zip(ms, ms[1:])):
            raise ValueError
    except ValueError:
        return errs + [("optim.milestones", f"must be increasing positive epoch numbers separated by commas "
                                            f"(e.g. '40,60,80,100'), or '' for a constant lr; got {text!r}")]
    late = [m for m in ms if m >= epochs]
    if late:
        errs.append(("optim.milestones", f"milestones {late} are not below train.epochs={epochs} and would never "
                                         f"apply; lower them (paper: 40,60,80,100 of 120 epochs) or set ''"))
    return errs


SPEC = TaskSpec(
    name="image_classification",
    description="PCNN / ResNet18 / MobileNetV2 (CIFAR variants) with add vs CFU/PU residual fusion",
    paper="CFU paper (000), Sec. IV-C, Table IV",
    params={
        "model.arch": Param(str, "resnet18", "backbone (models.py)", choices=ARCHS),
        "model.fusion": Param(str, "cfu", "residual fusion: add (baseline), cfu, pu, concat, none (no shortcut)",
                              choices=FUSIONS),
        "model.order": Param(int, 4, "Chebyshev (cfu) / power (pu) order d (Eq. 4)", low=0, high=20, when=_POLY),
        "model.fusion_form": Param(str, "eq4", "eq4 = Eq. 4 verbatim, f∘gate(x); bounded_additive = "
                                   "x + f∘gate(tanh x) (components/fusion.py FORMS)", choices=FUSION_FORMS,
                                   when=_POLY),
        "model.fusion_sigma": Param(str, "sigmoid", "σ of Eq. 4 (Sec. III-C: sigmoid or softmax over the terms)",
                                    choices=("sigmoid", "softmax", "tanh", "identity"), when=_POLY),
        "model.fusion_alpha_init": Param(str, "additive", "α init: additive (gate ≡ 1: unit = f(x), or x + f(x) "
                                         "in the bounded_additive form) or uniform",
                                         choices=("additive", "uniform"), when=_POLY),
        "model.width_mult": Param(float, 1.0, "multiplies every width (PCNN 128; ResNet18 64..512; MobileNetV2)",
                                  low=0.01, high=8.0),
        "model.stem": Param(str, "cifar", "cifar: 3x3 stride-1 stem, no max-pool; imagenet: the original strides",
                            choices=("cifar", "imagenet"), when={"model.arch": ("resnet18", "mobilenetv2")}),
        "data.name": Param(str, "digits", "digits (offline), or cifar10 / cifar100 / svhn from data.root",
                           choices=datasets.DATASETS),
        "data.root": Param(str, "", "directory holding the dataset's files (see tasks/datasets.py)", when=_LOCAL),
        "data.augment": Param(str, "auto", "auto: crop_flip on CIFAR, crop on digits/SVHN", choices=AUGMENTS),
        "data.val_fraction": Param(float, 0.0, "fraction of training images held out as validation (paper: none)",
                                   low=0.0, high=0.5),
        "data.train_limit": Param(int, 0, "use only the first N training images (0 = all)", low=0, high=10**7),
        "data.test_limit": Param(int, 0, "use only the first N test images (0 = all)", low=0, high=10**7),
        "optim.lr": Param(float, 0.1, "initial SGD learning rate", low=1e-8, high=10.0),
        "optim.momentum": Param(float, 0.9, "SGD momentum", low=0.0, high=0.999),
        "optim.weight_decay": Param(float, 5e-4, "L2 weight decay of all weights but the fusion α",
                                    low=0.0, high=1.0),
        "optim.fusion_weight_decay": Param(float, 0.0, "weight decay of the CFU/PU α scalars", low=0.0, high=1.0,
                                           when=_POLY),
        "optim.milestones": Param(str, "40,60,80,100", "epochs after which the lr is multiplied by optim.gamma"),
        "optim.gamma": Param(float, 0.1, "lr factor at each milestone", low=1e-6, high=1.0),
        "train.epochs": Param(int, 120, "epochs", low=1, high=10000),
        "train.batch_size": Param(int, 128, "mini-batch size", low=1, high=65536),
    },
    metrics={"test_acc": "max", "train_loss": "min", "train_acc": "max", "val_acc": "max", "epoch_seconds": "min"},
    run="tasks.image_classification.train:run",
    check=_check,
    smoke={"train.epochs": 1, "train.batch_size": 32, "data.train_limit": 64, "data.test_limit": 64,
           "model.width_mult": 0.125, "optim.milestones": ""},
    slots=(Slot("model.fusion", "fusion",
                "(channels) -> forward(shortcut, current: (N, C, H, W) each) -> (N, C, H, W); every residual "
                "block of the backbone (none: no shortcut)", passes=("channels",), extra=("none",),
                task_args=(("order", "model.order"),), probe="tasks.image_classification.probes:fusion_probes"),),
)

