"""Case discovery and layout checks for the local NIfTI datasets (stdlib only:
``check`` runs at sweep validation, which must not import torch or MONAI).
The layouts themselves are documented in ``tasks/segmentation/data.py``."""
from __future__ import annotations

import glob
import json
import os
from typing import Any, Dict, List, Optional, Tuple

STANDARD_LABELS = {"synthetic": (1,), "acdc": (1, 2, 3), "brats": (1, 2, 4), "lits": (1, 2)}
BRATS_MODALITIES = ("flair", "t1", "t1ce", "t2")


def decathlon_cases(root: str) -> Tuple[List[Tuple[List[str], str]], bool, Tuple[int, ...], int]:
    """(cases [(image files, label file)], is_ct, standard labels, channels) from dataset.json."""
    with open(os.path.join(root, "dataset.json")) as f:
        meta = json.load(f)
    cases = [([os.path.normpath(os.path.join(root, c["image"]))], os.path.normpath(os.path.join(root, c["label"])))
             for c in meta["training"]]
    modality = meta.get("modality", {"0": "MRI"})
    labels = tuple(sorted(int(k) for k in meta.get("labels", {"0": "background", "1": "foreground"}) if int(k)))
    is_ct = all(str(v).upper() == "CT" for v in modality.values())
    return cases, is_ct, labels, len(modality)


def acdc_cases(root: str) -> List[Tuple[List[str], str]]:
    gts = sorted(glob.glob(os.path.join(root, "training", "patient*", "patient*_frame*_gt.nii*")))
    return [([g.replace("_gt.nii", ".nii")], g) for g in gts if os.path.exists(g.replace("_gt.nii", ".nii"))]


def brats_cases(root: str) -> List[Tuple[List[str], str]]:
    out = []
    for seg in sorted(glob.glob(os.path.join(root, "**", "*_seg.nii*"), recursive=True)):
        ext = seg[seg.index("_seg.nii") + 4:]
        mods = [seg.replace("_seg" + ext, f"_{m}{ext}") for m in BRATS_MODALITIES]
        if all(os.path.exists(m) for m in mods):
            out.append((mods, seg))
    return out


def lits_cases(root: str) -> List[Tuple[List[str], str]]:
    out = []
    for seg in sorted(glob.glob(os.path.join(root, "segmentation-*.nii*"))):
        vol = os.path.join(root, os.path.basename(seg).replace("segmentation-", "volume-"))
        if os.path.exists(vol):
            out.append(([vol], seg))
    return out


def find_cases(source: str, root: str):
    """(cases, is_ct, standard labels, image channels) of a local dataset."""
    if source == "decathlon":
        return decathlon_cases(root)
    if source == "acdc":
        return acdc_cases(root), False, STANDARD_LABELS["acdc"], 1
    if source == "brats":
        return brats_cases(root), False, STANDARD_LABELS["brats"], len(BRATS_MODALITIES)
    if source == "lits":
        return lits_cases(root), True, STANDARD_LABELS["lits"], 1
    raise ValueError(f"data.source must be synthetic, decathlon, acdc, brats or lits, got {source!r}")



def split_cases(cases, source: str, test_fraction: float, seed: int, max_patients: int = 0):
    """(train indices, test indices) into ``cases``, split by patient: ACDC's two
    frames of one patient share a folder and stay on one side; every other
    dataset has one case per patient.  A fixed shuffle of ``seed``."""
    import random

    key = (lambda c: os.path.dirname(c[1])) if source == "acdc" else (lambda c: c[1])
    patients = sorted({key(c) for c in cases})
    random.Random(seed).shuffle(patients)
    if max_patients:
        patients = patients[:max_patients]
    n_test = min(len(patients) - 1, max(1, round(test_fraction * len(patients))))
    test = set(patients[:n_test])
    train_ids = [i for i, c in enumerate(cases) if key(c) in patients[n_test:]]
    return train_ids, [i for i, c in enumerate(cases) if key(c) in test]


def layout_problems(source: str, root: Optional[str]) -> List[str]:
    """Pure os.path/glob checks of a local dataset's layout; [] when it is usable."""
    expected = {
        "decathlon": "dataset.json, imagesTr/*.nii.gz and labelsTr/*.nii.gz (Medical Segmentation Decathlon layout)",
        "acdc": "training/patientNNN/patientNNN_frameFF.nii.gz with patientNNN_frameFF_gt.nii.gz (ACDC layout)",
        "brats": "<ID>/<ID>_{flair,t1,t1ce,t2,seg}.nii.gz, in any sub-folder (BraTS layout)",
        "lits": "volume-<i>.nii[.gz] with segmentation-<i>.nii[.gz] (LiTS layout)",
    }[source]
    if not root:
        return [f"data.source={source} needs data.root, a local directory containing {expected}"]
    if not os.path.isdir(root):
        return [f"directory {root!r} does not exist; expected it to contain {expected}"]
    if source == "decathlon":
        missing = [p for p in ("dataset.json", "imagesTr", "labelsTr") if not os.path.exists(os.path.join(root, p))]
        if missing:
            return [f"{root!r} lacks {', '.join(missing)}; expected {expected}"]
        try:
            cases = decathlon_cases(root)[0]
        except (ValueError, KeyError, TypeError) as e:
            return [f"{os.path.join(root, 'dataset.json')} is not a Decathlon dataset.json ({e!r})"]
        absent = [p for imgs, lab in cases for p in (*imgs, lab) if not os.path.exists(p)]
        if absent:
            return [f"{root!r}: {len(absent)} files listed in dataset.json are missing, e.g. {absent[0]!r}"]
    else:
        cases = find_cases(source, root)[0]
    patients = {os.path.dirname(c[1]) for c in cases} if source == "acdc" else cases
    if len(patients) < 2:
        return [f"{root!r} holds {len(patients)} complete patients (need >= 2: one to train, one to test); "
                f"expected {expected}"]
    return []


SYNTHETIC = {"data.source": ("synthetic",)}
REAL = {"data.source": ("decathlon", "acdc", "brats", "lits")}


def data_params(*, size: int, size_low: int, n_train: int, n_test: int, num_objs: int, rad_max: int,
                rad_min: int, rad_high: int) -> Dict[str, Any]:
    """The ``data.*`` config keys shared by the image-segmentation tasks
    (segmentation, hyperbolic): MONAI synthetic images or a local NIfTI
    dataset, with each task's own defaults.  Param is imported here, not at the
    top, so this module stays importable without the task schema."""
    from ..schema import Param

    return {
        "data.source": Param(str, "synthetic", "synthetic (MONAI generator) or a local NIfTI dataset",
                             choices=("synthetic", "decathlon", "acdc", "brats", "lits")),
        "data.root": Param(str, "", "directory of the local dataset (layouts: tasks/segmentation/data.py)",
                           when=REAL),
        "data.labels": Param(str, "", "label values segmented as classes, e.g. '1,2,4'; '' = dataset standard",
                             when=REAL),
        "data.test_fraction": Param(float, 0.2, "fraction of patients (volumes) held out for test",
                                    low=0.01, high=0.9, when=REAL),
        "data.max_volumes": Param(int, 0, "use only this many patients (0 = all)", low=0, high=100000, when=REAL),
        "data.size": Param(int, size, "side of the (resized) image, slice or cube", low=size_low, high=4096),
        "data.seed": Param(int, 0, "seed of the fixed data sets and split (not the trial seed)", low=0,
                           high=2**31 - 1),
        "data.n_train": Param(int, n_train, "synthetic training images", low=1, high=100000, when=SYNTHETIC),
        "data.n_test": Param(int, n_test, "synthetic test images", low=1, high=100000, when=SYNTHETIC),
        "data.noise_max": Param(float, 0.8, "synthetic background noise U[0, noise_max) (MONAI)", low=0.0,
                                high=1.0, when=SYNTHETIC),
        "data.num_objs": Param(int, num_objs, "synthetic circles/spheres per image", low=1, high=1000,
                               when=SYNTHETIC),
        "data.rad_max": Param(int, rad_max, "synthetic maximum radius", low=2, high=rad_high, when=SYNTHETIC),
        "data.rad_min": Param(int, rad_min, "synthetic minimum radius", low=1, high=rad_high, when=SYNTHETIC),
    }


def data_problems(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    """Pre-launch checks of the shared ``data.*`` keys: synthetic radii that
    MONAI's generator accepts, or a local dataset's files and label list."""
    errs: List[Tuple[str, str]] = []
    size = cfg["data.size"]
    if cfg["data.source"] == "synthetic":
        rmax, rmin = cfg["data.rad_max"], cfg["data.rad_min"]
        if rmin >= rmax:
            errs.append(("data.rad_min", f"must be < data.rad_max ({rmax}), got {rmin}"))
        if 2 * rmax >= size:
            errs.append(("data.rad_max", f"MONAI's generator needs 2 * data.rad_max < data.size ({size}), "
                                         f"got {rmax}; use at most {(size - 1) // 2}"))
        return errs
    errs.extend(("data.root", m) for m in layout_problems(cfg["data.source"], cfg.get("data.root")))
    labels = cfg.get("data.labels", "")
    try:
        vals = [int(t) for t in labels.replace(" ", "").split(",") if t]
        if any(v <= 0 for v in vals) or len(set(vals)) != len(vals):
            raise ValueError
    except ValueError:
        errs.append(("data.labels", f"must be distinct positive label values separated by commas "
                                    f"(e.g. '1,2,4'), or '' for the dataset's standard labels; got {labels!r}"))
    return errs
