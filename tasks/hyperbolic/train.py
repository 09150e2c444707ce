"""Training and evaluation of the hyperbolic task (see the package docstring)."""
from __future__ import annotations

from typing import Any, Dict

import torch

from ..common import batches, count_parameters, fit, setup_runtime, stream_seed
from ..datasets import data_generator
from .coarsenings import INVERTIBLE
from .memory import step_activation_mb


def build_model(cfg: Dict[str, Any], in_channels: int, n_out: int):
    """HyperbolicNet from the registry; reversible only where the coarsening is invertible."""
    import components

    from .probes import coarsen_kwargs

    name = cfg["model.coarsen"]
    invertible = name in INVERTIBLE or bool(getattr(components.lookup("coarsen", name), "invertible", False))
    reversible = invertible and cfg.get("model.reversible", True)
    return components.build("hyperbolic_net", "leapfrog", in_channels=in_channels, out_channels=n_out,
                            width=cfg["model.width"], depth=cfg["model.depth"], n_levels=cfg["model.n_levels"],
                            coarsen=name, dims=cfg["model.dims"], h=cfg["model.h"],
                            bias=cfg["model.bias"], reversible=reversible, layout=cfg["model.layout"],
                            wavelet_scale=cfg.get("model.wavelet_scale", "orthonormal"),
                            coarsen_kwargs=coarsen_kwargs(cfg))


def load_data(cfg: Dict[str, Any]):
    """SegData from the segmentation task's loaders (same keys: model.dims, data.*)."""
    from ..segmentation.data import nifti, synthetic

    return synthetic(cfg) if cfg["data.source"] == "synthetic" else nifti(cfg)


def data_order(cfg: Dict[str, Any], epochs: int = 1):
    """Split and batch order of a trial (tasks.datasets.DataOrder): the segmentation
    task's, since the data, its loaders and the batch loop are the same."""
    from ..segmentation.data import data_order as segmentation_order

    return segmentation_order(cfg, epochs)


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    import torch.nn.functional as F
    from monai.losses import DiceCELoss
    from monai.metrics import DiceMetric, MeanIoU

    device = setup_runtime(cfg)
    data = load_data(cfg)
    n_out = data.n_classes + 1
    seed = int(cfg["seed"])
    torch.manual_seed(stream_seed(seed, "model"))   # the init, from the model stream only
    model = build_model(cfg, data.in_channels, n_out).to(device)
    reporter.annotate(n_params=count_parameters(model), n_train=len(data.x_train), n_test=len(data.x_test),
                      data_source=data.source, n_classes=data.n_classes, reversible=model.reversible,
                      n_layers=cfg["model.depth"] * (2 * cfg["model.n_levels"] + 1))
    x_tr, y_tr = data.x_train.to(device), data.y_train.to(device)
    x_te, y_te = data.x_test.to(device), data.y_test.to(device)
    if cfg["optim.name"] == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=cfg["optim.lr"], momentum=cfg["optim.momentum"],
                              weight_decay=cfg["optim.weight_decay"])
    else:
        opt = torch.optim.Adam(model.parameters(), lr=cfg["optim.lr"], weight_decay=cfg["optim.weight_decay"])
    if cfg["train.loss"] == "ce":
        loss_fn = lambda logits, y: F.cross_entropy(logits, y)
    else:
        dce = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True)
        loss_fn = lambda logits, y: dce(logits, y.unsqueeze(1))
    dice_m = DiceMetric(include_background=False, reduction="mean", ignore_empty=True)
    iou_m = MeanIoU(include_background=False, reduction="mean", ignore_empty=True)
    miou_m = MeanIoU(include_background=True, reduction="mean", ignore_empty=True)
    gen = data_generator(seed, "batches")   # the batch order: the same for every model of this seed
    bs = cfg["train.batch_size"]
    mem: Dict[str, float] = {}

    def train_epoch(epoch: int) -> Dict[str, float]:
        model.train()
        total, n = 0.0, 0
        for idx in batches(len(x_tr), bs, gen):
            idx = idx.to(device)
            loss = loss_fn(model(x_tr[idx]), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        return {"train_loss": total / max(n, 1)}

    def peak_mem_mb() -> float:
        # Once, outside the timed epoch: the activation memory depends on shapes only.
        if "mb" not in mem:
            model.train()
            # Copies, as the training loop's x_tr[idx]: the CPU count is per storage, and a
            # slice's storage would be the whole training set.
            xb, yb = x_tr[:bs].clone(), y_tr[:bs].clone()
            mem["mb"] = step_activation_mb(model, xb, lambda logits: loss_fn(logits, yb))
            model.zero_grad(set_to_none=True)
        return mem["mb"]

    @torch.no_grad()
    def scores() -> Dict[str, float]:
        model.eval()
        for m in (dice_m, iou_m, miou_m):
            m.reset()
        for i in range(0, len(x_te), bs):
            pred = F.one_hot(model(x_te[i:i + bs]).argmax(1), n_out).movedim(-1, 1)
            true = F.one_hot(y_te[i:i + bs], n_out).movedim(-1, 1)
            for m in (dice_m, iou_m, miou_m):
                m(y_pred=pred, y=true)
        out = {}
        for name, m in (("test_dice", dice_m), ("test_iou", iou_m), ("test_miou", miou_m)):
            v = m.aggregate().item()
            m.reset()
            # NaN only when no test image contains any foreground: nothing to score.
            out[name] = v if v == v else 0.0
        return out

    def evaluate(epoch: int) -> Dict[str, float]:
        return {**scores(), "peak_mem_mb": peak_mem_mb()}

    return fit(model=model, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, generator=gen)
