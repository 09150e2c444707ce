"""Training and evaluation of the segmentation task (see the package docstring)."""
from __future__ import annotations

from typing import Any, Dict

import torch

from ..common import batches, count_parameters, fit, setup_runtime, stream_seed
from ..datasets import data_generator
from .noise import NOISE_LEVELS, NOISE_SEED
from .data import add_noise, load
from .models import build_model


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    import torch.nn.functional as F
    from monai.losses import DiceLoss
    from monai.metrics import DiceMetric

    device = setup_runtime(cfg)
    data = load(cfg)
    n_out = data.n_classes + 1
    seed = int(cfg["seed"])
    # Init from the model stream; dropout then continues on torch's global RNG.
    torch.manual_seed(stream_seed(seed, "model"))
    model = build_model(cfg, data.in_channels, n_out).to(device)
    reporter.annotate(n_params=count_parameters(model), n_train=len(data.x_train), n_test=len(data.x_test),
                      data_source=data.source, n_classes=data.n_classes)
    x_tr, y_tr = data.x_train.to(device), data.y_train.to(device)
    x_te, y_te = data.x_test.to(device), data.y_test.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["optim.lr"], weight_decay=cfg["optim.weight_decay"])
    # Soft Dice over the foreground classes with the squared denominator and
    # sums taken over the whole batch (the paper's soft Dice, Sec. 4 [32]).
    loss_fn = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, squared_pred=True, batch=True)
    metric = DiceMetric(include_background=False, reduction="mean", ignore_empty=True)
    gen = data_generator(seed, "batches")   # the batch order: the same for every model of this seed
    bs = cfg["train.batch_size"]

    def train_epoch(epoch: int) -> Dict[str, float]:
        model.train()
        total, n = 0.0, 0
        for idx in batches(len(x_tr), bs, gen):
            idx = idx.to(device)
            if len(idx) < 2 and len(x_tr) > 1 and cfg["model.norm"] == "batch":
                continue  # batch norm cannot train on a single image; skip the remainder batch
            loss = loss_fn(model(x_tr[idx]), y_tr[idx].unsqueeze(1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        return {"train_loss": total / max(n, 1)}

    @torch.no_grad()
    def dice(x: torch.Tensor) -> float:
        model.eval()
        metric.reset()
        for i in range(0, len(x), bs):
            pred = model(x[i:i + bs]).argmax(1)
            metric(y_pred=F.one_hot(pred, n_out).movedim(-1, 1), y=F.one_hot(y_te[i:i + bs], n_out).movedim(-1, 1))
        value = metric.aggregate().item()
        metric.reset()
        # NaN only when no test image contains any foreground: nothing to score.
        return value if value == value else 0.0

    def evaluate(epoch: int) -> Dict[str, float]:
        out = {"test_dice": dice(x_te)}
        if cfg["eval.noise"] and epoch == cfg["train.epochs"] - 1:
            g = torch.Generator().manual_seed(NOISE_SEED)
            for kind, levels in NOISE_LEVELS.items():
                for level in levels:
                    out[f"dice_{kind}_{level:g}"] = dice(add_noise(x_te, kind, level, g))
        return out

    return fit(model=model, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, generator=gen)
