"""Training and evaluation of the image_classification task (see the package docstring)."""
from __future__ import annotations

from typing import Any, Dict, List

import torch
import torch.nn.functional as F
from torch import nn

from components.fusion import FORMS

from ..common import batches, count_parameters, fit, setup_runtime, stream_seed
from ..datasets import data_generator
from .data import augment_batch, load, normalise, to_unit
from .models import build_backbone, fusion_modules
from .schedule import parse_milestones

EVAL_BATCH = 1000


def fusion_kwargs(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Constructor arguments of the fusion named by model.fusion (order etc. only for cfu / pu; a researcher's
    own fusion component gets its model.fusion.<argument> keys)."""
    if cfg["model.fusion"] not in ("none", "add", "concat", "cfu", "pu"):
        from tasks import get_task

        return get_task("image_classification").slot_kwargs(cfg, "model.fusion")
    if cfg["model.fusion"] not in ("cfu", "pu"):
        return {}
    return {"order": cfg["model.order"], "alpha_init": cfg["model.fusion_alpha_init"],
            "sigma": cfg["model.fusion_sigma"], **FORMS[cfg["model.fusion_form"]]}


def build_model(cfg: Dict[str, Any], num_classes: int) -> nn.Module:
    return build_backbone(cfg["model.arch"], num_classes=num_classes, fusion=cfg["model.fusion"],
                          fusion_kwargs=fusion_kwargs(cfg), width_mult=cfg["model.width_mult"],
                          stem=cfg.get("model.stem", "cifar"))


def param_groups(model: nn.Module, cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    """All parameters at optim.weight_decay, except CFU/PU α at optim.fusion_weight_decay.

    Only the polynomial units' scalars are special (see the package
    docstring); a concat fusion's 1x1 projection is an ordinary weight.
    """
    if cfg["model.fusion"] not in ("cfu", "pu"):
        return [{"params": [p for p in model.parameters() if p.requires_grad]}]
    alpha = {id(p) for m in fusion_modules(model) for p in m.parameters()}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in alpha]
    gates = [p for p in model.parameters() if p.requires_grad and id(p) in alpha]
    return [{"params": rest}, {"params": gates, "weight_decay": cfg["optim.fusion_weight_decay"]}]


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    device = setup_runtime(cfg)
    data = load(cfg)
    x_tr, y_tr, x_va, y_va, x_te, y_te = (t.to(device) for t in (
        data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test))
    mean, std = data.mean.to(device), data.std.to(device)
    seed = int(cfg["seed"])
    # Init from the model stream; dropout (MobileNetV2) then continues on torch's global RNG.
    torch.manual_seed(stream_seed(seed, "model"))
    model = build_model(cfg, data.num_classes).to(device)
    units = list(fusion_modules(model))
    reporter.annotate(n_params=count_parameters(model), n_fusion_units=len(units),
                      n_fusion_params=sum(p.numel() for m in units for p in m.parameters()),
                      n_train=len(x_tr), n_val=len(x_va), n_test=len(x_te), num_classes=data.num_classes,
                      augment=data.augment, data_source=data.source)
    opt = torch.optim.SGD(param_groups(model, cfg), lr=cfg["optim.lr"], momentum=cfg["optim.momentum"],
                          weight_decay=cfg["optim.weight_decay"])
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, parse_milestones(cfg["optim.milestones"]),
                                                 gamma=cfg["optim.gamma"])
    # Data streams, the same for every model of this seed: batch order (checkpointed as fit's
    # generator) and augmentation (its state travels in extra_state, restored by fit on resume).
    gen, aug = data_generator(seed, "batches"), data_generator(seed, "augment")
    extra = {"augment_rng": aug.get_state()}

    def train_epoch(epoch: int) -> Dict[str, float]:
        model.train()
        aug.set_state(extra["augment_rng"])    # a no-op unless fit has just restored a checkpoint
        lr = opt.param_groups[0]["lr"]      # the lr of this epoch (the scheduler steps after it)
        total, correct, n = 0.0, 0, 0
        for idx in batches(len(x_tr), cfg["train.batch_size"], gen):
            idx = idx.to(device)
            x = normalise(augment_batch(to_unit(x_tr[idx]), data.augment, aug), mean, std)
            logits = model(x)
            loss = F.cross_entropy(logits, y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            correct += (logits.argmax(1) == y_tr[idx]).sum().item()
            n += len(idx)
        extra["augment_rng"] = aug.get_state()
        return {"train_loss": total / max(n, 1), "train_acc": 100.0 * correct / max(n, 1), "lr": lr}

    @torch.no_grad()
    def accuracy(x: torch.Tensor, y: torch.Tensor) -> float:
        model.eval()
        correct = 0
        for i in range(0, len(x), EVAL_BATCH):
            logits = model(normalise(to_unit(x[i:i + EVAL_BATCH]), mean, std))
            correct += (logits.argmax(1) == y[i:i + EVAL_BATCH]).sum().item()
        return 100.0 * correct / max(len(x), 1)

    def evaluate(epoch: int) -> Dict[str, float]:
        out = {"test_acc": accuracy(x_te, y_te)}
        if len(x_va):
            out["val_acc"] = accuracy(x_va, y_va)
        return out

    return fit(model=model, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, scheduler=sched, generator=gen, extra_state=extra)
