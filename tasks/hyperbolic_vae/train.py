"""Training loop of the hyperbolic VAE task (see the package docstring)."""
from __future__ import annotations

from typing import Any, Dict

import torch

from ..common import batches, count_parameters, fit, setup_runtime


def load_images(size: int):
    """Digits as (x_train, x_test), float32 (N, 1, size, size), normalised by the
    training set's mean and std; the split is tasks/digits.py's."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te = train_test_split(x, test_size=0.2, stratify=y, random_state=0)
    out = []
    for a in (x_tr, x_te):
        img = torch.as_tensor(a, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
        if size != 8:
            img = F.interpolate(img, size=(size, size), mode="bilinear", align_corners=False)
        out.append(img)
    mean, std = out[0].mean(), out[0].std()
    return tuple((t - mean) / std for t in out)


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    import components

    device = setup_runtime(cfg)
    x_tr, x_te = (t.to(device) for t in load_images(cfg["data.size"]))
    model = components.build("hyperbolic_vae", "leapfrog", in_channels=1, size=cfg["data.size"],
                             units=cfg["model.units"], depth=cfg["model.depth"], h=cfg["model.h"],
                             coarsen=cfg["model.coarsen"], bias=cfg["model.bias"],
                             reversible=cfg["model.reversible"], tol=cfg["model.tol"],
                             gauss=cfg["model.gauss"]).to(device)
    theta = [p for n, p in model.named_parameters() if n != "P"]
    opt = torch.optim.SGD([{"params": theta, "lr": cfg["optim.lr"]},
                           {"params": [model.P], "lr": cfg["optim.lr_p"]}])
    reporter.annotate(n_params=count_parameters(model), latent_dim_initial=model.latent_dim,
                      n_train=len(x_tr), n_test=len(x_te),
                      data_source=f"sklearn.datasets.load_digits at {cfg['data.size']}x{cfg['data.size']}")
    gen = torch.Generator().manual_seed(int(cfg["seed"]))
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
        trunc = (model.decode(model.truncated(z)) - x_te).pow(2).mean().item()
        return {"test_recon_mse": trunc, "test_recon_mse_full": full,
                "latent_dims": float(model.active().sum()), "test_gauss": model.gaussianity(z).item()}

    return fit(model=model, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, generator=gen)
