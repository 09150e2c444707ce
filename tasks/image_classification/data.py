"""Data of the image_classification task: loading through tasks/datasets.py,
the fixed validation split, per-channel normalisation and the batch
augmentation (see the package docstring for the choices)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F

from .. import datasets

VAL_SEED = 0        # the validation slice is the same for every trial seed
PAD = 4             # random-crop padding (the standard CIFAR recipe)
_FLIP_OK = ("cifar10", "cifar100")   # flipping a digit can change its class


@dataclass
class ImageData:
    x_train: torch.Tensor     # (N, 3, H, W) uint8 (local files) or float in [0, 1] (digits)
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: torch.Tensor        # (3,) per-channel mean of the training images in [0, 1]
    std: torch.Tensor
    num_classes: int
    augment: str              # crop_flip, crop or none (auto resolved)
    source: str


def resolve_augment(name: str, augment: str) -> str:
    if augment != "auto":
        return augment
    return "crop_flip" if name in _FLIP_OK else "crop"


def load(cfg: Dict[str, Any]) -> ImageData:
    name, root = cfg["data.name"], cfg.get("data.root", "")
    # CIFAR's 50k images stay bytes (150 MB instead of 600 MB) and become floats per batch.
    dtype = "float32" if name == "digits" else "uint8"
    x_tr, y_tr = datasets.load_image_dataset(name, root, "train", dtype=dtype)
    x_te, y_te = datasets.load_image_dataset(name, root, "test", dtype=dtype)
    n_val = int(round(cfg.get("data.val_fraction", 0.0) * len(x_tr)))
    x_va, y_va = x_tr[:0], y_tr[:0]
    if n_val:
        perm = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(VAL_SEED))
        x_va, y_va = x_tr[perm[:n_val]], y_tr[perm[:n_val]]
        x_tr, y_tr = x_tr[perm[n_val:]], y_tr[perm[n_val:]]
    if cfg.get("data.train_limit"):
        x_tr, y_tr = x_tr[:cfg["data.train_limit"]], y_tr[:cfg["data.train_limit"]]
    if cfg.get("data.test_limit"):
        x_te, y_te = x_te[:cfg["data.test_limit"]], y_te[:cfg["data.test_limit"]]
    mean, std = channel_stats(x_tr)
    source = "sklearn.datasets.load_digits (32x32 RGB)" if name == "digits" else f"{name} from {root}"
    return ImageData(x_tr, y_tr, x_va, y_va, x_te, y_te, mean, std, datasets.NUM_CLASSES[name],
                     resolve_augment(name, cfg.get("data.augment", "auto")), source)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 bytes → float32 in [0, 1]; float input unchanged."""
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def channel_stats(x: torch.Tensor, chunk: int = 5000):
    """Per-channel mean and std (float32, (3,)) of images in [0, 1], in float64 chunks."""
    c = x.shape[1]
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(x), chunk):
        b = to_unit(x[i:i + chunk]).double().cpu()
        s += b.sum(dim=(0, 2, 3))
        s2 += (b * b).sum(dim=(0, 2, 3))
    n = max(len(x), 1) * x.shape[2] * x.shape[3]
    mean = s / n
    std = (s2 / n - mean * mean).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()


def augment_batch(x: torch.Tensor, mode: str, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Random crop after zero padding by PAD pixels (and horizontal flip for crop_flip).

    x: (B, C, H, W) float in [0, 1] on any device; returns the same shape.
    The random draws come from the CPU ``generator`` (checkpointed by ``fit``)
    so a trial is reproducible and resumes exactly on CPU or CUDA.
    """
    if mode == "none" or len(x) == 0:
        return x
    b, _, h, w = x.shape
    off = torch.randint(0, 2 * PAD + 1, (2, b), generator=generator).to(x.device)
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[bi, ci, rows, cols]
    if mode == "crop_flip":
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)[:, None, None, None]
        out = torch.where(flip, out.flip(-1), out)
    return out


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std per channel; x (B, C, H, W) float, mean/std (C,)."""
    return (x - mean.to(x)[:, None, None]) / std.to(x)[:, None, None]
