"""Data for the complex_classification task: splits, per-batch complex encoding, and
the test-time complex scaling of the CDS paper's robustness curves (Figs. 2c, 8c).

RGB datasets stay in their compact storage (uint8 for CIFAR/SVHN) on the device and
are encoded one batch at a time (``Encoder``), so CIFAR's 45k training images cost
138 MB instead of 740 MB as complex64.  The encodings are the ``encoding``
components; MSTAR images are complex already and pass through unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional

import torch
import torch.nn as nn

import components

from .. import datasets
from .mstar import load_mstar

SPLIT_SEED = 0   # the train/val permutation is fixed: seeds replicate models, not splits


class Encoder(nn.Module):
    """Stored batch -> complex model input: uint8/float RGB -> [0, 1] -> ``encoding``; or identity.

    Args:
        encoding: an ``encoding`` component, or None for data that is complex already.
        dtype=torch.float32: real dtype of the encoded batch (complex64 for float32).
    """

    def __init__(self, encoding: Optional[nn.Module], dtype: torch.dtype = torch.float32):
        super().__init__()
        self.encoding, self.dtype = encoding, dtype

    @property
    def channels(self) -> int:
        return self.encoding.channels if self.encoding is not None else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) uint8 or real, or (N, C, H, W) complex -> (N, channels, H, W) complex."""
        if self.encoding is None:
            return x.to(torch.complex64 if self.dtype == torch.float32 else torch.complex128)
        rgb = x.to(self.dtype) / 255.0 if x.dtype == torch.uint8 else x.to(self.dtype)
        return self.encoding(rgb)


@dataclass
class ComplexData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    input_size: int
    encoder: Encoder
    source: str
    split: Dict[str, torch.Tensor]   # source rows: "train"/"val" of the training set, "test" of the test set


def load(cfg: Dict[str, Any]) -> ComplexData:
    """Train / val / test tensors (CPU) and the encoder for the config's dataset."""
    name = cfg["data.name"]
    if name == "mstar":
        root = cfg["data.root"]
        x_tr, y_tr, x_te, y_te, k = load_mstar(root)
        enc, source = Encoder(None), f"mstar .npy files in {root}"
    else:
        root = cfg.get("data.root", "")
        store = "float32" if name == "digits" else "uint8"
        x_tr, y_tr = datasets.load_image_dataset(name, root, "train", dtype=store)
        x_te, y_te = datasets.load_image_dataset(name, root, "test", dtype=store)
        k = datasets.NUM_CLASSES[name]
        from tasks import get_task

        own = get_task("complex_classification").slot_kwargs(cfg, "data.encoding")
        enc = Encoder(components.build("encoding", cfg["data.encoding"], **own))
        source = ("sklearn.datasets.load_digits (32x32 RGB, upsampled grey)" if name == "digits"
                  else f"{name} files in {root}")
    split = split_indices(len(x_tr), len(x_te), cfg)
    x_va, y_va = x_tr[split["val"]], y_tr[split["val"]]
    x_tr, y_tr = x_tr[split["train"]], y_tr[split["train"]]
    x_te, y_te = x_te[split["test"]], y_te[split["test"]]
    return ComplexData(x_tr, y_tr, x_va, y_va, x_te, y_te, k, int(x_tr.shape[-1]), enc, source, split)


def split_indices(n_train: int, n_test: int, cfg: Dict[str, Any]) -> Dict[str, torch.Tensor]:
    """Source rows of "train", "val" (of the training set) and "test" (of the test set).

    One permutation seeded by SPLIT_SEED, not by the trial seed: the same split
    for every seed and cell; the limits then keep the first rows.
    """
    n_val = int(round(cfg["data.val_fraction"] * n_train))
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(SPLIT_SEED))
    train, val = perm[:n_train - n_val], perm[n_train - n_val:]
    train = train[:cfg["data.train_limit"] or None]
    return {"train": train, "val": val, "test": torch.arange(n_test)[:cfg["data.test_limit"] or None]}


def data_order(cfg: Dict[str, Any], epochs: int = 1) -> datasets.DataOrder:
    """Split and batch order of a trial of ``cfg`` (tasks.datasets.DataOrder);
    depends on ``seed``, ``data.*`` and ``train.batch_size``, never on ``model.*``."""
    data = load(cfg)
    gen = datasets.data_generator(int(cfg["seed"]), "batches")
    order = datasets.epoch_batches(len(data.x_train), cfg["train.batch_size"], gen, epochs)
    return datasets.DataOrder({k: v.numpy() for k, v in data.split.items()}, order, {"batches": gen.get_state()},
                              {"val": f"permutation seeded by SPLIT_SEED={SPLIT_SEED}",
                               "robustness": "test-time scalings s drawn from ROT_SEED: the same for every "
                                             "model and seed"})

def scaling_draws(n: int, repeats: int, seed: int):
    """(u, v): (repeats, n) uniform [0, 1) draws for the phase and the log-magnitude of s.

    CPU generator, so that the draws are the same on every device.
    """
    g = torch.Generator().manual_seed(seed)
    return torch.rand(repeats, n, generator=g, dtype=torch.float64), \
        torch.rand(repeats, n, generator=g, dtype=torch.float64)


def complex_scale(z: torch.Tensor, u: torch.Tensor, v: torch.Tensor, rotation: float,
                  magnitude_range: float = 1.0) -> torch.Tensor:
    """s * z per sample: s = |s| e^{i theta}, theta = (2u - 1) rotation pi, ln|s| = (2v - 1) ln m.

    z: (N, ...) complex; u, v: (N,) in [0, 1); rotation: the range as a multiple of pi;
    magnitude_range m >= 1 (1: |s| = 1 exactly).  Returns z's shape and dtype.
    """
    theta = (2.0 * u - 1.0) * rotation * math.pi
    logmag = (2.0 * v - 1.0) * math.log(magnitude_range)
    s = torch.polar(torch.exp(logmag), theta).to(device=z.device, dtype=z.dtype)
    if rotation == 0 and magnitude_range == 1.0:
        s = torch.ones_like(s)   # exactly the clean input, so acc_rot_0 == clean accuracy
    return z * s.view(-1, *([1] * (z.dim() - 1)))
