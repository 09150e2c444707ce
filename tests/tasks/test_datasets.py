"""tasks/datasets.py: local loaders read tiny files written here in each dataset's own
format (CIFAR python pickles, SVHN .mat), digits as 3-channel 32x32, and missing files
fail naming the directory and the expected files."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from tasks import datasets


def _cifar_dir(root, name="cifar10", n=(3, 2)):
    """Tiny CIFAR-10/100 pickles; returns the (train, test) images as (N, 32, 32, 3) uint8."""
    rng = np.random.default_rng(0)
    sub = "cifar-10-batches-py" if name == "cifar10" else "cifar-100-python"
    files = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]) if name == "cifar10" else (["train"], ["test"])
    key = b"labels" if name == "cifar10" else b"fine_labels"
    (root / sub).mkdir(parents=True)
    out = []
    for split_files, count in zip(files, n):
        imgs, labels = [], []
        for f in split_files:
            hwc = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
            y = rng.integers(0, 10 if name == "cifar10" else 100, size=count).tolist()
            # the distributed layout: each row is the R plane, then G, then B (row-major)
            rows = hwc.transpose(0, 3, 1, 2).reshape(count, 3072)
            with open(root / sub / f, "wb") as fh:
                pickle.dump({b"data": rows, key: y, b"batch_label": b"x"}, fh)
            imgs.append(hwc)
            labels += y
        out.append((np.concatenate(imgs), np.asarray(labels)))
    return out


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_pickles_round_trip(tmp_path, name):
    (tr_x, tr_y), (te_x, te_y) = _cifar_dir(tmp_path, name)
    x, y = datasets.load_image_dataset(name, str(tmp_path), "train", dtype="uint8")
    assert x.shape == (len(tr_x), 3, 32, 32) and x.dtype == torch.uint8
    assert torch.equal(x, torch.from_numpy(tr_x).permute(0, 3, 1, 2))
    assert torch.equal(y, torch.from_numpy(tr_y)) and y.dtype == torch.int64
    xf, yf = datasets.load_image_dataset(name, str(tmp_path), "test")
    assert xf.dtype == torch.float32 and len(xf) == len(te_x)
    assert torch.allclose(xf * 255.0, torch.from_numpy(te_x).permute(0, 3, 1, 2).float())
    assert torch.equal(yf, torch.from_numpy(te_y))
    if name == "cifar10":
        assert len(x) == 5 * 3  # all five training batches, in order


def test_svhn_mat(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    for split, n in (("train", 4), ("test", 3)):
        X = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = np.array([[10], [1], [9], [10]][:n], dtype=np.uint8)  # 10 = digit 0 in SVHN
        savemat(tmp_path / f"{split}_32x32.mat", {"X": X, "y": y})
        x, lab = datasets.load_image_dataset("svhn", str(tmp_path), split, dtype="uint8")
        assert x.shape == (n, 3, 32, 32)
        assert torch.equal(x[2, 1], torch.from_numpy(X[:, :, 1, 2]))   # image 2, green plane
        assert lab.tolist() == [0, 1, 9, 0][:n]


def test_digits_are_3_channel_32px_grey():
    x, y = datasets.load_image_dataset("digits", split="train")
    xt, yt = datasets.load_image_dataset("digits", split="test")
    assert x.shape == (1437, 3, 32, 32) and xt.shape == (360, 3, 32, 32)
    assert x.dtype == torch.float32 and 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 1], x[:, 2])   # grey replicated
    assert sorted(set(y.tolist())) == list(range(10)) and y.dtype == torch.int64
    # the same stratified split as tasks/digits.py: the pixel means agree with the 8x8 originals
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d, t = load_digits(return_X_y=True)
    d_tr, _, t_tr, _ = train_test_split(d, t, test_size=0.2, stratify=t, random_state=0)
    assert torch.equal(y, torch.as_tensor(t_tr))
    # bilinear upsampling by 4 preserves each image's mean away from the border; compare loosely
    assert torch.allclose(x[:, 0].mean((1, 2)), torch.as_tensor(d_tr.mean(1) / 16.0, dtype=torch.float32),
                          atol=0.03)
    x8, _ = datasets.load_image_dataset("digits", split="test", dtype="uint8")
    assert x8.dtype == torch.uint8 and (x8.float() / 255 - xt).abs().max() <= 0.5 / 255 + 1e-6


def test_missing_files_name_directory_and_files(tmp_path):
    probs = datasets.file_problems("cifar10", str(tmp_path / "nowhere"))
    assert len(probs) == 1
    msg = probs[0]
    assert str(tmp_path / "nowhere") in msg and "does not exist" in msg
    assert "cifar-10-batches-py/data_batch_1" in msg and "cifar-10-batches-py/test_batch" in msg
    (tmp_path / "cifar-100-python").mkdir()
    (tmp_path / "cifar-100-python" / "train").write_bytes(b"")
    msg = datasets.file_problems("cifar100", str(tmp_path))[0]
    assert "missing cifar-100-python/test" in msg and str(tmp_path) in msg
    assert datasets.file_problems("cifar100", str(tmp_path), split="train") == []
    assert "data.root is empty" in datasets.file_problems("svhn", "")[0]
    assert datasets.file_problems("digits", "") == []
    with pytest.raises(FileNotFoundError, match="test_32x32.mat"):
        datasets.load_image_dataset("svhn", str(tmp_path), "test")
    assert datasets.expected_files("svhn", "/d") == ["/d/train_32x32.mat", "/d/test_32x32.mat"]


def _corrupt_cifar(root, what):
    """One valid-looking CIFAR-10 test_batch with one defect."""
    (root / "cifar-10-batches-py").mkdir(parents=True, exist_ok=True)
    f = root / "cifar-10-batches-py" / "test_batch"
    rows = np.zeros((4, 3072), np.uint8)
    d = {b"data": rows, b"labels": [0, 1, 2, 3]}
    if what == "not a pickle":
        f.write_bytes(b"\x00garbage, not a pickle")
        return f
    if what == "no labels":
        del d[b"labels"]
    elif what == "wrong row size":
        d[b"data"] = np.zeros((4, 1024), np.uint8)
    elif what == "float data":
        d[b"data"] = rows.astype(np.float32)
    elif what == "label count":
        d[b"labels"] = [0, 1, 2]
    elif what == "label range":
        d[b"labels"] = [0, 1, 2, 10]
    elif what == "negative label":
        d[b"labels"] = [0, -1, 2, 3]
    with open(f, "wb") as fh:
        pickle.dump(d, fh)
    return f


@pytest.mark.parametrize("what, expect", [
    ("not a pickle", "not a readable CIFAR python pickle"), ("no labels", "lacks the key 'labels'"),
    ("wrong row size", "N x 3072 uint8"), ("float data", "N x 3072 uint8"),
    ("label count", "must be 4 integers"), ("label range", r"0\.\.9, got 0\.\.10"),
    ("negative label", r"0\.\.9, got -1\.\.3")])
def test_cifar_file_in_the_wrong_format_names_file_and_defect(tmp_path, what, expect):
    f = _corrupt_cifar(tmp_path, what)
    with pytest.raises(datasets.DatasetFormatError, match=expect) as e:
        datasets.load_image_dataset("cifar10", str(tmp_path), "test")
    assert str(f) in str(e.value)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize("what, expect", [
    ("not a mat", "not a readable MATLAB .mat file"), ("no y", "needs the variable 'y'"),
    ("extra format 1", r"32 x 32 x 3 x N"), ("label count", "must hold 3 labels"),
    ("label range", r"integers 1\.\.10")])
def test_svhn_file_in_the_wrong_format_names_file_and_defect(tmp_path, what, expect):
    from scipy.io import savemat

    f = tmp_path / "test_32x32.mat"
    X, y = np.zeros((32, 32, 3, 3), np.uint8), np.array([[1], [2], [10]], np.uint8)
    if what == "not a mat":
        f.write_bytes(b"not a mat file at all" * 10)
    else:
        d = {"X": X, "y": y}
        if what == "no y":
            del d["y"]
        elif what == "extra format 1":         # the full-number format has no fixed 32x32x3 X
            d["X"] = np.zeros((40, 30, 3, 3), np.uint8)
        elif what == "label count":
            d["y"] = y[:2]
        elif what == "label range":
            d["y"] = np.array([[1], [2], [11]], np.uint8)
        savemat(f, d)
    with pytest.raises(datasets.DatasetFormatError, match=expect) as e:
        datasets.load_image_dataset("svhn", str(tmp_path), "test")
    assert str(f) in str(e.value)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="dataset name must be one of .*got 'mnist'"):
        datasets.expected_files("mnist", "")
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        datasets.load_image_dataset("digits", split="val")
    with pytest.raises(ValueError, match="dtype must be one of"):
        datasets.load_image_dataset("digits", dtype="int32")


