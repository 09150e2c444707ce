"""Hyperbolic task: schema (reversible only where invertible), checks, exact
parameter counts, the activation-memory helper (exact on a known graph;
depth-independent for reversible nets, linear in depth for pooling), a local
NIfTI dataset, and deterministic short runs through run_trial."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sweeps.runner.trial import LocalReporter, run_trial
from tasks import get_task
from tasks.hyperbolic.memory import saved_bytes, step_activation_mb
from tasks.hyperbolic.train import build_model, load_data

SPEC = get_task("hyperbolic")


def cfg_of(**over):
    return SPEC.resolve({**SPEC.smoke, **{k.replace("__", "."): v for k, v in over.items()}})


def trial(cfg):
    rep = LocalReporter(echo=lambda s: None)
    out = run_trial("hyperbolic", cfg, rep)
    return out, rep


# ---------------------------------------------------------------- schema / checks
def test_reversible_exists_only_for_invertible_coarsenings():
    for c in ("dwt", "learnable_dwt"):
        assert SPEC.resolve({"model.coarsen": c})["model.reversible"] is True
    for c in ("avgpool", "maxpool"):
        cfg = SPEC.resolve({"model.coarsen": c, "model.reversible": True})
        assert "model.reversible" not in cfg
        assert build_model(cfg, 1, 2).reversible is False
    assert build_model(cfg_of(model__coarsen="dwt"), 1, 2).reversible is True
    assert build_model(cfg_of(model__coarsen="dwt", model__reversible=False), 1, 2).reversible is False
    assert SPEC.metrics["peak_mem_mb"] == "min" and SPEC.metrics["test_iou"] == "max"


def test_check_cross_key_constraints():
    errs = dict(SPEC.check_config(cfg_of(data__size=18, data__rad_max=9, data__rad_min=9)))
    assert "divisible by 2^model.n_levels = 4" in errs["data.size"]
    assert "2 * data.rad_max" in errs["data.rad_max"] and "< data.rad_max" in errs["data.rad_min"]
    assert SPEC.check_config(cfg_of()) == []
    assert SPEC.check_config(cfg_of(data__size=18, model__n_levels=1)) == []


def test_paper_vs_code_keys_defaults_and_choices():
    import components.hyperbolic as H
    import components.wavelets as W
    from tasks.hyperbolic.coarsenings import LAYOUTS, WAVELET_SCALES

    assert LAYOUTS == H.LAYOUTS and WAVELET_SCALES == tuple(W.SCALES)
    d = SPEC.resolve({})
    assert (d["model.layout"], d["model.bias"], d["model.wavelet_scale"]) == ("reference", False, "orthonormal")
    assert "model.wavelet_scale" not in SPEC.resolve({"model.coarsen": "maxpool"})
    errs = dict(SPEC.check_config(cfg_of(model__width=3)))
    assert errs == {} or "model.width" not in errs                 # synthetic images have 1 channel
    net = build_model(cfg_of(model__wavelet_scale="reference"), 1, 2)
    assert {op.op.scale for op in net.ops if hasattr(op, "op")} == {"reference"}


def test_missing_dataset_fails_naming_directory_and_files(tmp_path):
    missing = str(tmp_path / "nowhere")
    errs = SPEC.check_config(SPEC.resolve({"data.source": "decathlon", "data.root": missing}))
    assert errs[0][0] == "data.root" and missing in errs[0][1] and "dataset.json" in errs[0][1]
    assert "needs data.root" in SPEC.check_config(SPEC.resolve({"data.source": "lits"}))[0][1]


# ---------------------------------------------------------------- model
@pytest.mark.parametrize("layout", ["reference", "learned_opening"])
@pytest.mark.parametrize("coarsen, extra", [("dwt", 0), ("avgpool", 0), ("maxpool", 0), ("learnable_dwt", 8)])
@pytest.mark.parametrize("dims", [2, 3])
def test_parameter_count_is_exact(coarsen, extra, dims, layout):
    """reference (default, the authors' code): no opening, leapfrog K without b, 3^dims head
    without bias; learned_opening (ablate's before issue 26) with bias: 3^dims opening conv,
    K and b per layer, 1x1 head with bias."""
    w, d, lv, cin, cout = 4, 2, 2, 2, 3
    ref = layout == "reference"
    cfg = cfg_of(model__coarsen=coarsen, model__dims=dims, model__width=w, model__depth=d, model__n_levels=lv,
                 model__layout=layout, model__bias=not ref)
    k = 3 ** dims
    widths = [w * 2 ** (dims * min(i, 2 * lv - i)) for i in range(2 * lv + 1)]   # w, 4w, 16w, 4w, w in 2D
    if ref:
        expect = sum(d * c * c * k for c in widths) + w * cout * k + extra
    else:
        expect = (cin * w * k + w) + sum(d * (c * c * k + c) for c in widths) + (w * cout + cout) + extra
    model = build_model(cfg, cin, cout)
    assert sum(p.numel() for p in model.parameters()) == expect
    x = torch.randn(1, cin, *[8] * dims)
    assert model(x).shape == (1, cout, *[8] * dims)


# ---------------------------------------------------------------- activation memory
def test_saved_bytes_counts_each_saved_storage_once():
    a = torch.randn(10, 7, requires_grad=True)
    b = torch.randn(10, 7, requires_grad=True)
    nbytes, out = saved_bytes(lambda: (a * b * a).sum(), exclude=set())
    # a*b saves a and b; (a*b)*a saves a*b and a again (same storage)
    assert nbytes == 3 * 70 * 4 and out.requires_grad
    assert saved_bytes(lambda: (a * b).sum(), exclude={a.untyped_storage().data_ptr()})[0] == 70 * 4


def _mem(coarsen, depth, reversible=True):
    cfg = cfg_of(model__coarsen=coarsen, model__depth=depth, model__reversible=reversible)
    torch.manual_seed(0)
    net = build_model(cfg, 1, 2)
    x, y = torch.randn(2, 1, 16, 16), torch.randint(0, 2, (2, 16, 16))
    mb = step_activation_mb(net, x, lambda logits: F.cross_entropy(logits, y))
    assert all(p.grad is not None for p in net.parameters())   # the probe really backpropagated
    return mb


def test_reversible_memory_is_flat_in_depth_pooling_memory_grows():
    rev = {d: _mem("dwt", d) for d in (1, 4)}
    pool = {d: _mem("avgpool", d) for d in (1, 4)}
    plain = _mem("dwt", 4, reversible=False)
    assert rev[4] == pytest.approx(rev[1], rel=1e-9)       # Sec. 5: independent of depth
    assert 2.8 < pool[4] / pool[1] < 4.2                   # ~ linear in the layers (5 -> 20)
    assert rev[4] < 0.2 * pool[4] and rev[4] < 0.2 * plain  # Table 1: 798 vs 5057 MB (0.16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_memory_reversible_below_pooling():
    def mem(coarsen, depth):
        net = build_model(cfg_of(model__coarsen=coarsen, model__depth=depth), 1, 2).cuda()
        x, y = torch.randn(2, 1, 64, 64, device="cuda"), torch.randint(0, 2, (2, 64, 64), device="cuda")
        return step_activation_mb(net, x, lambda logits: F.cross_entropy(logits, y))
    assert mem("dwt", 8) < 0.5 * mem("avgpool", 8)


# ---------------------------------------------------------------- data and runs
def test_synthetic_data_is_fixed_across_trial_seeds():
    a, b = load_data(cfg_of(seed=0)), load_data(cfg_of(seed=5))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert a.x_train.shape == (4, 1, 16, 16) and a.y_train.shape == (4, 16, 16) and a.y_train.max() == 1


def test_run_is_deterministic_and_reports_all_metrics():
    cfg = cfg_of(model__coarsen="learnable_dwt", train__epochs=2)
    (out1, rep1), (out2, rep2) = trial(cfg), trial(cfg)
    strip = lambda h: [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in h]
    assert strip(rep1.history) == strip(rep2.history) and len(rep1.history) == 2
    for m in ("test_dice", "test_iou", "test_miou"):
        assert 0.0 <= out1[m] <= 1.0
    assert out1["peak_mem_mb"] > 0 and out1["epoch_seconds"] > 0 and np.isfinite(out1["train_loss"])
    assert rep1.info["reversible"] is True and rep1.info["n_layers"] == 4 * 5
    assert rep1.info["n_params"] == sum(p.numel() for p in build_model(cfg, 1, 2).parameters())
    # one step's activation memory depends on the batch, not on the size of the training set
    more, _ = trial({**cfg, "data.n_train": 8, "train.epochs": 1})
    assert more["peak_mem_mb"] == out1["peak_mem_mb"]


def test_training_reduces_the_loss_with_both_losses():
    for loss in ("ce", "dicece"):
        _, rep = trial(cfg_of(model__coarsen="avgpool", train__epochs=4, train__loss=loss,
                              optim__name="adam", optim__lr=0.01))
        losses = [h["train_loss"] for h in rep.history]
        assert losses[-1] < losses[0], (loss, losses)


def _nii(path, arr):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(arr), np.eye(4)), str(path))


def test_local_decathlon_dataset_trains(tmp_path):
    rng = np.random.default_rng(0)
    training = []
    for i in range(2):
        lab = np.zeros((12, 12, 2), np.int16)
        lab[2:7, 3:8] = 1
        _nii(tmp_path / "imagesTr" / f"c{i}.nii.gz", rng.random((12, 12, 2)).astype(np.float32) + lab)
        _nii(tmp_path / "labelsTr" / f"c{i}.nii.gz", lab)
        training.append({"image": f"./imagesTr/c{i}.nii.gz", "label": f"./labelsTr/c{i}.nii.gz"})
    (tmp_path / "dataset.json").write_text(json.dumps(
        {"modality": {"0": "MRI"}, "labels": {"0": "background", "1": "organ"}, "training": training}))
    cfg = SPEC.resolve({**SPEC.smoke, "data.source": "decathlon", "data.root": str(tmp_path), "data.size": 8})
    assert SPEC.check_config(cfg) == []
    (tmp_path / "dataset.json").write_text(json.dumps(
        {"modality": {"0": "MRI", "1": "T2"}, "labels": {"0": "background", "1": "organ"}, "training": training}))
    errs = dict(SPEC.check_config({**cfg, "model.width": 3}))
    assert "multiple of 2" in errs["model.width"] and "learned_opening" in errs["model.width"]
    (tmp_path / "dataset.json").write_text(json.dumps(
        {"modality": {"0": "MRI"}, "labels": {"0": "background", "1": "organ"}, "training": training}))
    data = load_data(cfg)
    assert data.x_train.shape == (2, 1, 8, 8) and data.x_test.shape == (2, 1, 8, 8)   # 2 slices per volume
    out, rep = trial(cfg)
    assert rep.info["data_source"] == f"decathlon:{tmp_path}" and 0.0 <= out["test_dice"] <= 1.0


# ---------------------------------------------------------------- what the seed controls
def test_coarsening_cells_of_one_seed_share_data_and_batches():
    from tasks.hyperbolic.train import data_order

    from ._pairing import assert_paired

    a = cfg_of(model__coarsen="dwt", seed=2, train__batch_size=2)
    b = cfg_of(model__coarsen="avgpool", model__depth=2, seed=2, train__batch_size=2)
    reps = assert_paired("hyperbolic", a, b, data_order)
    assert reps["a"].info["reversible"] and not reps["b"].info["reversible"]
    assert [len(x) for x in data_order(a).batches[0]] == [2, 2]
