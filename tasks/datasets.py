"""Local-directory loaders for small RGB image-classification datasets.

Shared by the image tasks (complex_classification, image_classification).  Each
dataset is read from ``root`` in the format its authors distribute; nothing is
downloaded (torchvision's dataset classes would download and are unusable here).

=========  ===============================================================  =======
name       files under ``root``                                             classes
=========  ===============================================================  =======
cifar10    ``cifar-10-batches-py/data_batch_1`` .. ``_5``, ``test_batch``    10
           (python pickles: ``b"data"`` N x 3072 uint8, ``b"labels"``)
cifar100   ``cifar-100-python/train``, ``test`` (``b"fine_labels"``)         100
svhn       ``train_32x32.mat``, ``test_32x32.mat`` (format 2: ``X`` 32x32x3xN  10
           uint8, ``y`` N x 1 with digit 0 stored as 10)
digits     none: ``sklearn.datasets.load_digits`` (8x8 grey, 0..16), split  10
           1437 / 360 (stratified, random_state=0, as tasks/digits.py),
           bilinearly upsampled to 32x32 and replicated to 3 channels
=========  ===============================================================  =======

API
  ``expected_files(name, root) -> list[str]``  full paths a dataset needs (pure
  Python, no heavy imports: usable from a TaskSpec.check before launch).
  ``file_problems(name, root) -> list[str]``  one message naming the directory and the
  missing files, or [] when all are present.
  ``load_image_dataset(name, root="", split="train", dtype="float32") -> (x, y)``
  x: torch (N, 3, H, W), float in [0, 1] (``dtype="float32"``/``"float64"``) or the raw
  bytes 0..255 (``dtype="uint8"``, 4x smaller: convert per batch); y: int64 (N,).

Module top level imports only the standard library (heavy imports are inside
the loaders), because sweep validation imports task modules and must be fast.
"""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

DATASETS: Tuple[str, ...] = ("digits", "cifar10", "cifar100", "svhn")
NUM_CLASSES: Dict[str, int] = {"digits": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}
IMAGE_SIZE: Dict[str, int] = {"digits": 32, "cifar10": 32, "cifar100": 32, "svhn": 32}
SPLITS = ("train", "test")
DTYPES = ("float32", "float64", "uint8")

_FILES: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "digits": {"train": (), "test": ()},
    "cifar10": {"train": tuple(f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)),
                "test": ("cifar-10-batches-py/test_batch",)},
    "cifar100": {"train": ("cifar-100-python/train",), "test": ("cifar-100-python/test",)},
    "svhn": {"train": ("train_32x32.mat",), "test": ("test_32x32.mat",)},
}


def _check_name(name: str) -> None:
    if name not in _FILES:
        raise ValueError(f"dataset name must be one of {', '.join(DATASETS)}, got {name!r}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def expected_files(name: str, root: str, split: str | None = None) -> List[str]:
    """Paths (``root`` joined) the dataset needs, for both splits or one; [] for digits."""
    _check_name(name)
    splits = SPLITS if split is None else (split,)
    for s in splits:
        _check_split(s)
    return [os.path.join(root or "", f) for s in splits for f in _FILES[name][s]]


def file_problems(name: str, root: str, split: str | None = None) -> List[str]:
    """[] when every expected file exists, else one message naming directory and files."""
    files = expected_files(name, root, split)
    if not files:
        return []
    if not root:
        rel = [f for s in (SPLITS if split is None else (split,)) for f in _FILES[name][s]]
        return [f"data.name={name} reads local files but data.root is empty; set it to the directory "
                f"containing {', '.join(rel)} (nothing is downloaded)"]
    missing = [f for f in files if not os.path.isfile(f)]
    if not missing:
        return []
    where, want = os.path.abspath(root), ", ".join(os.path.relpath(f, root) for f in files)
    if not os.path.isdir(root):
        return [f"{name}: directory {where} does not exist; it must hold {want} (nothing is downloaded)"]
    if len(missing) == len(files):
        return [f"{name}: {where} holds none of the expected files {want} (nothing is downloaded)"]
    rel = ", ".join(os.path.relpath(f, root) for f in missing)
    return [f"{name}: missing {rel} in {where}; expected {want} (nothing is downloaded)"]


def load_image_dataset(name: str, root: str = "", split: str = "train", dtype: str = "float32"):
    """(x, y): x (N, 3, H, W) float in [0, 1] or uint8 0..255 (see module docstring), y int64 (N,)."""
    _check_name(name)
    _check_split(split)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    problems = file_problems(name, root, split)
    if problems:
        raise FileNotFoundError(problems[0])
    import torch

    if name == "digits":
        x, y = _digits(split)                       # float64 in [0, 1]
        if dtype == "uint8":
            x = (x * 255.0).round().to(torch.uint8)
        else:
            x = x.to(getattr(torch, dtype))
        return x, y
    files = expected_files(name, root, split)
    x, y = _svhn(files[0]) if name == "svhn" else _cifar(files, "fine_labels" if name == "cifar100" else "labels")
    x = torch.from_numpy(x)
    if dtype != "uint8":
        x = x.to(getattr(torch, dtype)) / 255.0
    return x, torch.from_numpy(y)


def _cifar(files: List[str], label_key: str):
    import pickle

    import numpy as np

    xs, ys = [], []
    for f in files:
        with open(f, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        data = d[b"data"] if b"data" in d else d["data"]
        labels = d[label_key.encode()] if label_key.encode() in d else d[label_key]
        # rows are 1024 R, then G, then B values of a 32x32 image (row-major)
        xs.append(np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(labels, dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)


def _svhn(file: str):
    import numpy as np
    import scipy.io

    m = scipy.io.loadmat(file)
    x = np.ascontiguousarray(np.asarray(m["X"], dtype=np.uint8).transpose(3, 2, 0, 1))  # HWCN -> NCHW
    y = np.asarray(m["y"], dtype=np.int64).reshape(-1)
    y[y == 10] = 0   # SVHN stores digit 0 as label 10
    return x, y


def _digits(split: str):
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    img = torch.as_tensor(x, dtype=torch.float64).view(-1, 1, 8, 8) / 16.0
    # bilinear (not nearest) so that the CIFARNet's 3x3 stride-2 convolutions see smooth
    # strokes; a convex combination of [0, 1] values stays in [0, 1]
    img = F.interpolate(img, size=(32, 32), mode="bilinear", align_corners=False)
    return img.expand(-1, 3, -1, -1).contiguous(), torch.as_tensor(y, dtype=torch.int64)
