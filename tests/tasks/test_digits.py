"""Digits task: the fixed split against sklearn called directly, what the seed
controls (paired cells share split and batch order), and exact resumption."""
from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from tasks import get_task
from tasks.digits import data_order, split_indices

from ._pairing import assert_paired
from ._resume import whole_and_resumed, without_timing

SPEC = get_task("digits")


def cfg_of(**over):
    return SPEC.resolve({**SPEC.smoke, **over})


def test_split_is_sklearns_fixed_stratified_split():
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, _ = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    x_tr2, x_va, _, _ = train_test_split(x_tr, y_tr, test_size=0.1, stratify=y_tr, random_state=0)
    part = split_indices(0.1, 300)
    assert np.array_equal(x[part["test"]], x_te) and np.array_equal(x[part["val"]], x_va)
    assert np.array_equal(x[part["train"]], x_tr2[:300])
    full = split_indices()
    assert (len(full["train"]), len(full["val"]), len(full["test"])) == (1437, 0, 360)
    assert not set(full["train"]) & set(full["test"])


def test_dense_and_cdlinear_cells_of_one_seed_share_split_and_batches():
    a = cfg_of(**{"model.linear": "dense", "seed": 3, "data.val_fraction": 0.1})
    b = cfg_of(**{"model.linear": "cdlinear", "model.block_size": 4, "model.dropout": 0.2, "seed": 3,
                  "data.val_fraction": 0.1})
    reps = assert_paired("digits", a, b, data_order)
    order = data_order(a)
    assert reps["a"].info["n_train"] == reps["b"].info["n_train"] == len(order.split["train"]) == 400
    assert reps["a"].info["n_params"] != reps["b"].info["n_params"]


def test_resumed_run_equals_uninterrupted_one():
    cfg = cfg_of(**{"model.linear": "cdlinear", "model.dropout": 0.1, "train.epochs": 2, "seed": 1})
    full, resumed = whole_and_resumed("digits", cfg, stop_after=1)
    assert without_timing(resumed.history) == without_timing(full.history[1:])
