"""Data of the image_classification task: loading through tasks/datasets.py,
the fixed validation split, per-channel normalisation, the batch
augmentation and ``data_order`` (what the seed decides; see the package
docstring for the choices)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

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
    split: Dict[str, torch.Tensor]   # source rows: "train"/"val" of the train file, "test" of the test file


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
    split = split_indices(len(x_tr), len(x_te), cfg)
    x_tr, y_tr, x_va, y_va = x_tr[split["train"]], y_tr[split["train"]], x_tr[split["val"]], y_tr[split["val"]]
    x_te, y_te = x_te[split["test"]], y_te[split["test"]]
    mean, std = channel_stats(x_tr)
    source = "sklearn.datasets.load_digits (32x32 RGB)" if name == "digits" else f"{name} from {root}"
    return ImageData(x_tr, y_tr, x_va, y_va, x_te, y_te, mean, std, datasets.NUM_CLASSES[name],
                     resolve_augment(name, cfg.get("data.augment", "auto")), source, split)


def split_indices(n_train: int, n_test: int, cfg: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """Source rows of each part: "train" and "val" rows of the training file, "test" rows of the test file.

    The validation slice is a permutation seeded by VAL_SEED, not by the trial
    seed: the same for every seed and cell.  The limits then keep the first rows.
    """
    n_val = int(round(cfg.get("data.val_fraction", 0.0) * n_train))
    rows = torch.arange(n_train)
    if n_val:
        rows = torch.randperm(n_train, generator=torch.Generator().manual_seed(VAL_SEED))
    train, val = rows[n_val:], rows[:n_val]
    if cfg.get("data.train_limit"):
        train = train[:cfg["data.train_limit"]]
    test = torch.arange(n_test)[:cfg.get("data.test_limit") or None]
    return {"train": train, "val": val, "test": test}


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


def augment_draws(b: int, mode: str, generator: Optional[torch.Generator]
                  ) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
    """The random draws of one batch of ``b`` images: crop offsets (2, b) int64 in
    [0, 2 PAD] (rows, columns) and flip coins (b,) bool; None for mode "none".

    The coins are drawn for "crop" too (and ignored), so that the crop and
    crop_flip cells of one seed see the same crops on every batch.
    """
    if mode not in ("crop_flip", "crop", "none"):
        raise ValueError(f"mode must be crop_flip, crop or none (auto resolved first), got {mode!r}")
    if mode == "none" or b == 0:
        return None
    off = torch.randint(0, 2 * PAD + 1, (2, b), generator=generator)
    return off, torch.rand(b, generator=generator) < 0.5


def augment_batch(x: torch.Tensor, mode: str, generator: Optional[torch.Generator]) -> torch.Tensor:
    """Random crop after zero padding by PAD pixels (and horizontal flip for crop_flip).

    x: (B, C, H, W) float in [0, 1] on any device; returns the same shape.
    The random draws (``augment_draws``) come from the CPU ``generator``
    (the task's "augment" stream, checkpointed) so a trial is reproducible and
    resumes exactly on CPU or CUDA.
    """
    draws = augment_draws(len(x), mode, generator)
    if draws is None:
        return x
    b, _, h, w = x.shape
    off, flip = draws[0].to(x.device), draws[1].to(x.device)
    padded = F.pad(x, (PAD, PAD, PAD, PAD))
    rows = (off[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (off[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[bi, ci, rows, cols]
    if mode == "crop_flip":
        out = torch.where(flip[:, None, None, None], out.flip(-1), out)
    return out


def data_order(cfg: Dict[str, Any], epochs: int = 1):
    """Split, batch order and augmentation streams of a trial of ``cfg``
    (tasks.datasets.DataOrder); depends on ``seed``, ``data.*`` and
    ``train.batch_size``, never on ``model.*``.  Loads the dataset (for its size)."""
    from ..common import batches

    data = load(cfg)
    seed = int(cfg["seed"])
    gen, aug = datasets.data_generator(seed, "batches"), datasets.data_generator(seed, "augment")
    order = []
    for _ in range(epochs):
        order.append([idx.numpy() for idx in batches(len(data.x_train), cfg["train.batch_size"], gen)])
        for idx in order[-1]:
            augment_draws(len(idx), data.augment, aug)   # the same draws train_epoch makes
    split = {k: v.numpy() for k, v in data.split.items()}
    states = {"batches": gen.get_state(), "augment": aug.get_state()}
    return datasets.DataOrder(split, order, states,
                              {"val": f"permutation seeded by VAL_SEED={VAL_SEED}, the same for every seed",
                               "test": "the dataset's test file"})


def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std per channel; x (B, C, H, W) float, mean/std (C,)."""
    return (x - mean.to(x)[:, None, None]) / std.to(x)[:, None, None]
