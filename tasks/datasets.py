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
  A file that exists but is not in its dataset's format raises ``DatasetFormatError``
  (a ValueError) naming the file and what was expected.

Random streams (shared by every task)
  ``data_generator(seed, stream) -> torch.Generator``  CPU generator of the trial's
  named data stream (``"batches"``, ``"augment"``), seeded by
  ``tasks.common.stream_seed``, so it does not depend on the model stream.
  ``epoch_batches(n, batch_size, generator, epochs) -> list``  the batches
  ``tasks.common.batches`` yields, epoch by epoch, as numpy index arrays.
  ``DataOrder``  what a trial's seed decides about its data (split, batch order,
  generator states), returned by each task's ``data_order(cfg)`` so that tests
  (and a paired analysis) can check that two cells of one seed share it.

Module top level imports only the standard library (heavy imports are inside
the loaders), because sweep validation imports task modules and must be fast.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

DATASETS: Tuple[str, ...] = ("digits", "cifar10", "cifar100", "svhn")
NUM_CLASSES: Dict[str, int] = {"digits": 10, "cifar10": 10, "cifar100": 100, "svhn": 10}
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
    x, y = (_svhn(files[0]) if name == "svhn" else
            _cifar(files, "fine_labels" if name == "cifar100" else "labels", NUM_CLASSES[name]))
    x = torch.from_numpy(x)
    if dtype != "uint8":
        x = x.to(getattr(torch, dtype)) / 255.0
    return x, torch.from_numpy(y)


class DatasetFormatError(ValueError):
    """A dataset file exists but is not in the format its authors distribute."""


def _cifar(files: List[str], label_key: str, num_classes: int):
    """Reads the python-pickle batches, checking each against the distributed format
    (a dict with ``data`` N x 3072 uint8 and N labels in 0..num_classes-1), so a
    truncated or foreign file fails here, naming the file, rather than as an
    index error in the middle of training."""
    import pickle

    import numpy as np

    xs, ys = [], []
    for f in files:
        try:
            with open(f, "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
        except Exception as e:  # pickle raises many types on foreign or truncated input
            raise DatasetFormatError(f"{f}: not a readable CIFAR python pickle ({type(e).__name__}: {e})") from None
        if not isinstance(d, dict):
            raise DatasetFormatError(f"{f}: a CIFAR batch is a dict, got {type(d).__name__}")
        for key in ("data", label_key):
            if key.encode() not in d and key not in d:
                raise DatasetFormatError(f"{f}: CIFAR batch lacks the key {key!r} (has "
                                         f"{', '.join(sorted(repr(k) for k in d))})")
        data = np.asarray(d[b"data"] if b"data" in d else d["data"])
        labels = np.asarray(d[label_key.encode()] if label_key.encode() in d else d[label_key])
        if data.ndim != 2 or data.shape[1] != 3072 or data.dtype != np.uint8:
            raise DatasetFormatError(f"{f}: 'data' must be N x 3072 uint8 (32x32 RGB planes), got "
                                     f"{data.shape} {data.dtype}")
        if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetFormatError(f"{f}: {label_key!r} must be {len(data)} integers (one per image), got "
                                     f"shape {labels.shape} {labels.dtype}")
        if len(labels) and not (0 <= labels.min() and labels.max() < num_classes):
            raise DatasetFormatError(f"{f}: {label_key!r} must lie in 0..{num_classes - 1}, got "
                                     f"{labels.min()}..{labels.max()}")
        # rows are 1024 R, then G, then B values of a 32x32 image (row-major)
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels.astype(np.int64))
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)


def _svhn(file: str):
    """Reads format 2 (``X`` 32x32x3xN uint8, ``y`` N x 1 in 1..10), checking it for
    the same reason as :func:`_cifar`."""
    import numpy as np
    import scipy.io

    try:
        m = scipy.io.loadmat(file)
    except Exception as e:  # scipy raises several types on non-.mat input
        raise DatasetFormatError(f"{file}: not a readable MATLAB .mat file ({type(e).__name__}: {e})") from None
    for key in ("X", "y"):
        if key not in m:
            raise DatasetFormatError(f"{file}: SVHN format 2 needs the variable {key!r}; the file has "
                                     f"{', '.join(sorted(k for k in m if not k.startswith('__')))}")
    X, y = np.asarray(m["X"]), np.asarray(m["y"])
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3):
        raise DatasetFormatError(f"{file}: 'X' must be 32 x 32 x 3 x N (format 2, cropped digits), got {X.shape}")
    if y.size != X.shape[3] or not np.issubdtype(y.dtype, np.number):
        raise DatasetFormatError(f"{file}: 'y' must hold {X.shape[3]} labels (one per image), got shape {y.shape}")
    y = y.reshape(-1)
    if y.size and not (np.all(y == np.round(y)) and y.min() >= 0 and y.max() <= 10):
        raise DatasetFormatError(f"{file}: 'y' must be integers 1..10 (10 = digit 0), got {y.min()}..{y.max()}")
    if X.dtype != np.uint8 and (X.min(initial=0) < 0 or X.max(initial=0) > 255):
        raise DatasetFormatError(f"{file}: 'X' must be bytes 0..255, got {X.min()}..{X.max()}")
    x = np.ascontiguousarray(X.astype(np.uint8).transpose(3, 2, 0, 1))  # HWCN -> NCHW
    y = y.astype(np.int64)
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


# ------------------------------------------------------------ random streams
@dataclass
class DataOrder:
    """What a trial's seed decides about its data, independent of the model.

    Args:
        split: part name ("train", "val", "test", ...) → int64 numpy array of
            the source rows (or cases, trajectories) in that part, in order.
        batches: epoch → list of int64 numpy arrays, the training rows of each
            mini-batch (or step) in the order the task draws them.
        states: stream name ("batches", "augment") → the torch.Generator state
            after those epochs: what a run's checkpoint holds after as many
            epochs, so a test can check that the run drew exactly these.
        fixed: parts of the data that do not depend on the seed at all, with why
            (default {}).
    """

    split: Dict[str, Any]
    batches: List[List[Any]]
    states: Dict[str, Any]
    fixed: Dict[str, str] = field(default_factory=dict)


def data_generator(seed: int, stream: str):
    """CPU torch.Generator of the trial's data stream ``stream`` (see tasks.common.stream_seed).

    CPU, so that the draws are the same on every device."""
    import torch

    from .common import stream_seed

    return torch.Generator().manual_seed(stream_seed(seed, stream))


def epoch_batches(n: int, batch_size: int, generator, epochs: int = 1) -> List[List[Any]]:
    """``epochs`` epochs of ``tasks.common.batches(n, batch_size, generator)`` as numpy arrays."""
    from .common import batches

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
    return [[idx.numpy() for idx in batches(n, batch_size, generator)] for _ in range(epochs)]
