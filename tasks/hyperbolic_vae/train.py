"""Training loop of the hyperbolic VAE task (see the package docstring)."""
from __future__ import annotations

from typing import Any, Dict

import torch

from ..common import batches, count_parameters, fit, setup_runtime, stream_seed
from ..datasets import data_generator
from ..digits import SPLIT_FIXED, split_indices


def load_images(size: int):
    """Digits as (x_train, x_test), float32 (N, 1, size, size), normalised by the
    training set's mean and std; the split is tasks/digits.py's (fixed, random_state=0)."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    x = load_digits().data
    part = split_indices()
    out = []
    for a in (x[part["train"]], x[part["test"]]):
        img = torch.as_tensor(a, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
        if size != 8:
            img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
        out.append(img)
    mean, std = out[0].mean(), out[0].std()
    return tuple((t - mean) / std for t in out)


def data_order(cfg: Dict[str, Any], epochs: int = 1):
    """Split and batch order of a trial of ``cfg`` (tasks.datasets.DataOrder);
    depends on ``seed`` and ``train.batch_size`` only, never on ``model.*``."""
    from ..datasets import DataOrder, epoch_batches

    split = split_indices()
    del split["val"]
    gen = data_generator(int(cfg["seed"]), "batches")
    order = epoch_batches(len(split["train"]), cfg["train.batch_size"], gen, epochs)
    return DataOrder(split, order, {"batches": gen.get_state()}, {"split": SPLIT_FIXED})


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    import components

    from .probes import coarsen_kwargs

    device = setup_runtime(cfg)
    x_tr, x_te = (t.to(device) for t in load_images(cfg["data.size"]))
    seed = int(cfg["seed"])
    torch.manual_seed(stream_seed(seed, "model"))   # the init, from the model stream only
    model = components.build("hyperbolic_vae", "leapfrog", in_channels=1, size=cfg["data.size"],
                             units=cfg["model.units"], depth=cfg["model.depth"], h=cfg["model.h"],
                             coarsen=cfg["model.coarsen"], bias=cfg["model.bias"],
                             reversible=cfg["model.reversible"], tol=cfg["model.tol"],
                             gauss=cfg["model.gauss"], latent=cfg["model.latent"], groups=cfg["model.groups"],
                             wavelet_scale=cfg["model.wavelet_scale"],
                             coarsen_kwargs=coarsen_kwargs(cfg)).to(device)
    theta = [p for n, p in model.named_parameters() if n != "P"]
    opt = torch.optim.SGD([{"params": theta, "lr": cfg["optim.lr"]},
                           {"params": [model.P], "lr": cfg["optim.lr_p"]}])
    reporter.annotate(n_params=count_parameters(model), latent_dim_initial=model.latent_dim,
                      n_train=len(x_tr), n_test=len(x_te),
                      data_source=f"sklearn.datasets.load_digits at {cfg['data.size']}x{cfg['data.size']}")
    gen = data_generator(seed, "batches")   # the batch order: the same for every model of this seed
    alpha, beta, prox = cfg["loss.alpha"], cfg["loss.beta"], cfg["optim.prox"]

    def train_epoch(epoch: int) -> Dict[str, float]:
        model.train()
        total, n = 0.0, 0
        for idx in batches(len(x_tr), cfg["train.batch_size"], gen):
            if len(idx) < 2:
                continue                     # ε needs batch moments
            x = x_tr[idx.to(device)]
            recon, z = model(x)
            smooth = (recon - x).pow(2).mean() + beta * model.gaussianity(z)
            loss = smooth + alpha * model.group_norm()
            opt.zero_grad(set_to_none=True)
            (smooth if prox else loss).backward()
            opt.step()
            if prox:
                model.prox_group_norm_(cfg["optim.lr_p"] * alpha)
            total, n = total + loss.item() * len(idx), n + len(idx)
        return {"train_loss": total / max(n, 1)}

    @torch.no_grad()
    def evaluate(epoch: int) -> Dict[str, float]:
        model.eval()
        z = model.encode(x_te)
        full = (model.decode(z) - x_te).pow(2).mean().item()
        trunc = (model.reconstruct_truncated(x_te) - x_te).pow(2).mean().item()
        return {"test_recon_mse": trunc, "test_recon_mse_full": full,
                "latent_dims": float(model.latent_dims()), "test_gauss": model.gaussianity(z).item()}

    return fit(model=model, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, generator=gen)
