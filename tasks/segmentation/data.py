"""Segmentation data: MONAI's synthetic generators, NIfTI datasets from a local
directory, and the test-time noise of the hyper-convolution paper (Sec. 4.3).

Every loader returns ``SegData`` with float32 images in [0, 1] shaped
(N, C, *spatial) and int64 class maps shaped (N, *spatial) (0 = background,
1..K = the selected labels).  Train and test sets are fixed: they depend on
``data.*`` keys only, never on the trial seed (seeds are replicates of the
model, not of the data).

On-disk layouts (one standard layout per dataset; ``layouts.layout_problems``
checks them before launch):

* decathlon: ``ROOT/dataset.json`` (Medical Segmentation Decathlon format:
  ``modality``, ``labels``, ``training: [{image, label}]``),
  ``ROOT/imagesTr/*.nii.gz``, ``ROOT/labelsTr/*.nii.gz``.  Multi-modal images
  are 4D with channels last (MSD convention).
* acdc: ``ROOT/training/patientNNN/patientNNN_frameFF.nii.gz`` with
  ``patientNNN_frameFF_gt.nii.gz`` beside it (ED and ES frames; labels 1 RV,
  2 MYO, 3 LV).
* brats: ``ROOT/**/<ID>/<ID>_{flair,t1,t1ce,t2,seg}.nii.gz`` (BraTS 2019/2020
  training release; HGG/LGG sub-folders are searched recursively; labels 1
  NCR/NET, 2 ED, 4 ET).
* lits: ``ROOT/volume-<i>.nii[.gz]`` with ``ROOT/segmentation-<i>.nii[.gz]``
  (LiTS training batches; labels 1 liver, 2 lesion).

Cases are split into train/test by patient (a fixed shuffle with ``data.seed``,
``layouts.split_cases``), so no patient's slices or frames fall on both sides.  With
``model.dims = 2`` each volume is cut into axial slices (last axis), as in the
paper's LiTS set-up; with 3 the volume is resized to a cube.  CT (LiTS, MSD
CT tasks) is windowed to [-100, 250] HU then mapped to [0, 1] (paper Sec.
4.2.1); MRI channels are scaled by their 0.5/99.5 percentiles to [0, 1].
Voxel spacing is not resampled (each image is resized to ``data.size``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch

from .noise import NOISE_LEVELS
from .layouts import find_cases, split_cases


@dataclass
class SegData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    in_channels: int
    n_classes: int          # foreground classes K (the model outputs K + 1 channels)
    source: str
    # "train"/"test" → int64 case numbers (NIfTI: into find_cases; synthetic: the generated images)
    split: Dict[str, np.ndarray] = field(default_factory=dict)


def add_noise(x: torch.Tensor, kind: str, level: float, generator: torch.Generator) -> torch.Tensor:
    """Noisy copy of images ``x`` in [0, 1] (any shape), clipped to [0, 1] as
    skimage.util.random_noise does.  The noise is drawn on the CPU from
    ``generator`` so it is identical on every device."""
    xc = x.detach().to("cpu", torch.float32)
    if kind == "gaussian":
        out = xc + level * torch.randn(xc.shape, generator=generator)
    elif kind == "speckle":   # multiplicative: x + x·n, n ~ N(0, level²)
        out = xc + xc * level * torch.randn(xc.shape, generator=generator)
    elif kind == "saltpepper":
        u = torch.rand(xc.shape, generator=generator)
        salt = torch.rand(xc.shape, generator=generator) < 0.5
        out = torch.where(u < level, salt.to(xc.dtype), xc)
    else:
        raise ValueError(f"noise kind must be one of {', '.join(NOISE_LEVELS)}, got {kind!r}")
    return out.clamp_(0.0, 1.0).to(device=x.device, dtype=x.dtype)


def parse_labels(text: str) -> Tuple[int, ...]:
    """"1,2,4" → (1, 2, 4); "" → () (= the dataset's standard labels)."""
    return tuple(int(t) for t in text.replace(" ", "").split(",") if t)


def _remap(label: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    out = np.zeros(label.shape, dtype=np.int64)
    for i, v in enumerate(labels, 1):
        out[label == v] = i
    return out


# ---------------------------------------------------------------- synthetic
def synthetic(cfg) -> SegData:
    """MONAI create_test_image_2d/3d: circles (spheres) of random intensity in
    [0.5, 1] on uniform background noise [0, data.noise_max), binary masks.
    Train and test sets come from two RandomState streams of ``data.seed``."""
    from monai.data import create_test_image_2d, create_test_image_3d

    dims, size = cfg["model.dims"], cfg["data.size"]
    kw = dict(num_objs=cfg["data.num_objs"], rad_max=cfg["data.rad_max"], rad_min=cfg["data.rad_min"],
              noise_max=cfg["data.noise_max"], num_seg_classes=1, channel_dim=0)

    def make(n: int, stream: int):
        rs = np.random.RandomState([cfg["data.seed"], stream])
        pairs = [create_test_image_2d(size, size, random_state=rs, **kw) if dims == 2 else
                 create_test_image_3d(size, size, size, random_state=rs, **kw) for _ in range(n)]
        x = torch.as_tensor(np.stack([p[0] for p in pairs]), dtype=torch.float32)
        y = torch.as_tensor(np.stack([(p[1][0] > 0) for p in pairs]), dtype=torch.int64)
        return x, y

    x_tr, y_tr = make(cfg["data.n_train"], 0)
    x_te, y_te = make(cfg["data.n_test"], 1)
    split = {"train": np.arange(cfg["data.n_train"]), "test": np.arange(cfg["data.n_test"])}
    return SegData(x_tr, y_tr, x_te, y_te, 1, 1, f"monai.data.create_test_image_{dims}d", split)


# ---------------------------------------------------------------- NIfTI datasets
def _load_case(images: List[str], label: str, is_ct: bool, spatial: Tuple[int, ...], labels: Sequence[int]):
    """(C, *spatial) float32 image in [0, 1] and (*spatial) int64 class map via MONAI transforms."""
    from monai.transforms import LoadImage, Resize, ScaleIntensityRange, ScaleIntensityRangePercentiles

    load = LoadImage(image_only=True, ensure_channel_first=True)
    vols = [torch.as_tensor(load(p), dtype=torch.float32) for p in images]
    lab = torch.as_tensor(load(label))
    # A mismatch would otherwise be hidden by the Resize below (or fail in torch.cat
    # without naming a file): image and mask must share one voxel grid.
    for p, v in zip(images, vols):
        if v.shape[1:] != lab.shape[1:]:
            raise ValueError(f"segmentation case: image {p} has spatial shape {tuple(v.shape[1:])} but its "
                             f"label {label} has {tuple(lab.shape[1:])}; they must match voxel for voxel")
    img = torch.cat(vols, dim=0)
    if is_ct:
        img = ScaleIntensityRange(-100.0, 250.0, 0.0, 1.0, clip=True)(img)
    else:
        img = ScaleIntensityRangePercentiles(0.5, 99.5, 0.0, 1.0, clip=True, channel_wise=True)(img)
    img = Resize(spatial, mode="area")(img)
    lab = Resize(spatial, mode="nearest")(lab)
    img = torch.as_tensor(img, dtype=torch.float32).nan_to_num_(0.0)
    return img, torch.as_tensor(_remap(np.asarray(lab[0]), labels))


def nifti(cfg) -> SegData:
    source, root, dims, size = cfg["data.source"], cfg["data.root"], cfg["model.dims"], cfg["data.size"]
    cases, is_ct, standard, channels = find_cases(source, root)
    labels = parse_labels(cfg["data.labels"]) or standard
    train_ids, test_ids = split_cases(cases, source, cfg["data.test_fraction"], cfg["data.seed"],
                                      cfg["data.max_volumes"])
    spatial = (size, size, -1) if dims == 2 else (size,) * 3   # -1: keep the slice count

    def load(idx) -> Tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for i in idx:
            img, lab = _load_case(*cases[i], is_ct, spatial, labels)
            if dims == 2:   # axial slices along the last axis: (D, C, H, W)
                xs.append(img.permute(3, 0, 1, 2))
                ys.append(lab.permute(2, 0, 1))
            else:
                xs.append(img[None])
                ys.append(lab[None])
        return torch.cat(xs), torch.cat(ys)

    x_tr, y_tr = load(train_ids)
    x_te, y_te = load(test_ids)
    split = {"train": np.asarray(train_ids, dtype=np.int64), "test": np.asarray(test_ids, dtype=np.int64)}
    return SegData(x_tr, y_tr, x_te, y_te, channels, len(labels), f"{source}:{root}", split)


def load(cfg) -> SegData:
    return synthetic(cfg) if cfg["data.source"] == "synthetic" else nifti(cfg)


def data_order(cfg: Dict[str, Any], epochs: int = 1):
    """Split (cases) and batch order of a trial of ``cfg`` (tasks.datasets.DataOrder), for the
    segmentation and hyperbolic tasks; depends on ``seed``, ``data.*``, ``model.dims`` (2D slices
    or 3D volumes) and ``train.batch_size``, never on the network.  Loads the data (for its size)."""
    from ..datasets import DataOrder, data_generator, epoch_batches

    data = load(cfg)
    gen = data_generator(int(cfg["seed"]), "batches")
    order = epoch_batches(len(data.x_train), cfg["train.batch_size"], gen, epochs)
    return DataOrder(data.split, order, {"batches": gen.get_state()},
                     {"data": "images and split from data.seed, not the trial seed",
                      "noise": "test-time noise from NOISE_SEED (segmentation), the same for every model and seed"})
