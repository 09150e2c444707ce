"""MSTAR-style complex-valued images from a local directory of ``.npy`` files.

The CDS paper (shared/seeds/002, Sec. 5.1) trains on MSTAR SAR chips (one complex
channel, 128x128, 10 classes after dropping "clutter"; train at depression 17 deg,
test at 15 deg).  MSTAR is distributed in several raw formats, so the task reads
a neutral layout that any conversion script can write, in one of two forms
(the same under ``train/`` and ``test/``):

  class folders                           arrays
  root/train/<class_name>/*.npy           root/train/images.npy   (N, H, W) or (N, 1, H, W)
  root/test/<class_name>/*.npy            root/train/labels.npy   (N,) integers 0..K-1
                                          root/test/images.npy, root/test/labels.npy

Each per-image file is one complex 2-D (H, W) array (a real array is read as
complex with zero imaginary part).  Class folders are labelled in sorted name
order over train and test together; every image must have the same square size.
The images are divided by the largest training magnitude (the reference's
``normalize_mag``), a positive real scaling, which keeps the data's phase.

``layout_problems`` is stdlib-only (used by the TaskSpec check before launch);
``load_mstar`` imports numpy/torch when called.
"""
from __future__ import annotations

import os
from typing import List

SPLITS = ("train", "test")
LAYOUT = ("root/{train,test}/<class_name>/*.npy (one complex H x W array each), or "
          "root/{train,test}/images.npy (N, H, W complex) + root/{train,test}/labels.npy (N,)")


def _class_dirs(split_dir: str) -> List[str]:
    return sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d))
                  and any(f.endswith(".npy") for f in os.listdir(os.path.join(split_dir, d))))


def layout_problems(root: str) -> List[str]:
    """[] when ``root`` holds one of the two layouts for both splits, else messages."""
    if not root:
        return [f"data.name=mstar reads local .npy files but data.root is empty; expected {LAYOUT}"]
    out = []
    for split in SPLITS:
        d = os.path.join(root, split)
        if not os.path.isdir(d):
            out.append(f"mstar: missing directory {os.path.abspath(d)}; expected {LAYOUT}")
            continue
        arrays = [os.path.join(d, f) for f in ("images.npy", "labels.npy")]
        if any(os.path.isfile(f) for f in arrays):
            missing = [os.path.basename(f) for f in arrays if not os.path.isfile(f)]
            if missing:
                out.append(f"mstar: {os.path.abspath(d)} has images.npy/labels.npy but lacks "
                           f"{', '.join(missing)}; expected {LAYOUT}")
        elif not _class_dirs(d):
            out.append(f"mstar: {os.path.abspath(d)} has neither images.npy + labels.npy nor class "
                       f"folders of .npy files; expected {LAYOUT}")
    return out


def load_mstar(root: str):
    """(x_train, y_train, x_test, y_test, num_classes): x complex64 (N, 1, S, S), y int64."""
    import numpy as np
    import torch

    problems = layout_problems(root)
    if problems:
        raise FileNotFoundError("; ".join(problems))
    folder_classes = sorted({c for s in SPLITS if not _has_arrays(root, s)
                             for c in _class_dirs(os.path.join(root, s))})
    xs, ys = [], []
    for split in SPLITS:
        d = os.path.join(root, split)
        if _has_arrays(root, split):
            x = np.load(os.path.join(d, "images.npy"))
            y = np.load(os.path.join(d, "labels.npy")).reshape(-1)
            if not np.issubdtype(y.dtype, np.number) or not np.all(y == np.round(y)):
                raise ValueError(f"mstar: {d}/labels.npy must hold integer class labels, got dtype {y.dtype}"
                                 + (f" with values such as {y[y != np.round(y)][0]}"
                                    if np.issubdtype(y.dtype, np.number) else ""))
            y = y.astype(np.int64)
            if x.ndim == 4 and x.shape[1] == 1:
                x = x[:, 0]
            if x.ndim != 3 or len(x) != len(y):
                raise ValueError(f"mstar: {d}/images.npy must be (N, H, W) or (N, 1, H, W) matching "
                                 f"labels.npy's {len(y)} labels, got shape {x.shape}")
        else:
            imgs, labels = [], []
            for k, c in enumerate(folder_classes):
                cdir = os.path.join(d, c)
                for f in sorted(os.listdir(cdir)) if os.path.isdir(cdir) else []:
                    if f.endswith(".npy"):
                        a = np.load(os.path.join(cdir, f))
                        if a.ndim != 2:
                            raise ValueError(f"mstar: {os.path.join(cdir, f)} must be a 2-D (H, W) array, "
                                             f"got shape {a.shape}")
                        imgs.append(a)
                        labels.append(k)
            shapes = {a.shape for a in imgs}
            if len(shapes) != 1:
                raise ValueError(f"mstar: images under {d} have different sizes {sorted(shapes)}; "
                                 f"crop them to one size")
            x, y = np.stack(imgs), np.asarray(labels, dtype=np.int64)
        if x.shape[1] != x.shape[2]:
            raise ValueError(f"mstar: images under {d} must be square, got {x.shape[1]}x{x.shape[2]}")
        if (y < 0).any():
            raise ValueError(f"mstar: labels under {d} must be integers >= 0")
        if not np.isfinite(x).all():
            # one NaN would make the magnitude scale, and so every image, NaN
            raise ValueError(f"mstar: images under {d} contain {int((~np.isfinite(x)).sum())} "
                             f"non-finite values (NaN or inf)")
        xs.append(x.astype(np.complex64))
        ys.append(y)
    if xs[0].shape[1:] != xs[1].shape[1:]:
        raise ValueError(f"mstar: train images are {xs[0].shape[1:]} but test images {xs[1].shape[1:]}")
    scale = float(np.abs(xs[0]).max()) or 1.0
    num_classes = int(max(ys[0].max(initial=0), ys[1].max(initial=0))) + 1
    x_tr, x_te = (torch.from_numpy(x / scale)[:, None] for x in xs)
    return x_tr, torch.from_numpy(ys[0]), x_te, torch.from_numpy(ys[1]), num_classes


def _has_arrays(root: str, split: str) -> bool:
    return os.path.isfile(os.path.join(root, split, "images.npy"))
