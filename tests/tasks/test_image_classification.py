"""image_classification task: schema and pre-launch checks, the backbones
(exact parameter counts, CIFAR/ImageNet strides, where the fusion goes, CFU ≡
add at initialisation), α excluded from weight decay, the batch augmentation,
local CIFAR/SVHN files in their real formats, and deterministic / resumable
short runs through run_trial."""
from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch

from sweeps.runner.trial import LocalReporter, run_trial
from tasks import get_task
from tasks.image_classification import data as icdata
from tasks.image_classification.models import (PCNN, MobileNetV2, ResNet18, build_backbone,
                                                fusion_modules)
from tasks.image_classification.train import build_model, param_groups
from tests.helpers import count_params

SPEC = get_task("image_classification")


def cfg_of(**over):
    return SPEC.resolve({**SPEC.smoke, **over})


# ------------------------------------------------------------------ schema / checks
def test_paper_defaults_and_conditional_keys():
    d = SPEC.resolve({})
    # Sec. IV-C: SGD 0.9, wd 5e-4, lr 0.1 / 10 at 40, 60, 80, 100, batch 128, 120 epochs
    assert (d["optim.lr"], d["optim.momentum"], d["optim.weight_decay"]) == (0.1, 0.9, 5e-4)
    assert (d["optim.milestones"], d["optim.gamma"], d["train.batch_size"], d["train.epochs"]) == \
        ("40,60,80,100", 0.1, 128, 120)
    assert d["model.order"] == 4 and d["optim.fusion_weight_decay"] == 0.0 and "data.root" not in d
    add = SPEC.resolve({"model.fusion": "add", "model.arch": "pcnn"})
    assert d["model.fusion_form"] == "eq4"
    from components.fusion import FORMS
    from tasks.image_classification import FUSION_FORMS

    assert FUSION_FORMS == tuple(FORMS)
    for k in ("model.order", "model.fusion_form", "model.fusion_sigma",
              "optim.fusion_weight_decay", "model.stem"):
        assert k not in add, k
    assert SPEC.resolve({"data.name": "svhn", "data.root": "/x"})["data.root"] == "/x"
    assert SPEC.check_config(cfg_of()) == [] and SPEC.check_config(SPEC.resolve({})) == []


@pytest.mark.parametrize("name, files", [
    ("cifar10", "cifar-10-batches-py/data_batch_1"), ("cifar100", "cifar-100-python/train"),
    ("svhn", "train_32x32.mat")])
def test_missing_dataset_fails_before_launch_naming_directory_and_files(tmp_path, name, files):
    where = tmp_path / "nowhere"
    errs = SPEC.check_config(SPEC.resolve({"data.name": name, "data.root": str(where)}))
    assert errs and errs[0][0] == "data.root" and str(where) in errs[0][1] and files in errs[0][1]
    (empty,) = SPEC.check_config(SPEC.resolve({"data.name": name}))
    assert empty[0] == "data.root" and "data.root is empty" in empty[1]


def test_milestone_checks():
    errs = dict(SPEC.check_config(cfg_of(**{"train.epochs": 30, "optim.milestones": "10,40"})))
    assert "[40]" in errs["optim.milestones"] and "train.epochs=30" in errs["optim.milestones"]
    for bad in ("20,10", "a,b", "0,5"):
        errs = dict(SPEC.check_config(cfg_of(**{"train.epochs": 30, "optim.milestones": bad})))
        assert "increasing positive" in errs["optim.milestones"], bad


# ------------------------------------------------------------------ backbones
def test_exact_parameter_counts():
    # the usual CIFAR ResNet18 and torchvision's MobileNetV2 counts with a 10-way head
    assert count_params(ResNet18(10)) == 11_173_962 and count_params(ResNet18(100)) == 11_220_132
    assert count_params(MobileNetV2(10)) == 2_236_682 == 3_504_872 - 1281 * 1000 + 1281 * 10
    assert count_params(PCNN(10)) == 594_560 + 129 * 10
    units = {"pcnn": 4, "resnet18": 8, "mobilenetv2": 10}
    for arch, u in units.items():
        # MobileNetV2: residuals wherever stride 1 and in == out; below width 0.5 its 8-channel
        # floor makes two more blocks shape-preserving (12 units at 0.25)
        base = count_params(build_backbone(arch, num_classes=10, fusion="add", width_mult=0.5))
        for kind in ("cfu", "pu"):
            for d in (1, 9):
                m = build_backbone(arch, num_classes=10, fusion=kind, fusion_kwargs={"order": d}, width_mult=0.5)
                assert len(list(fusion_modules(m))) == u
                assert count_params(m) - base == u * (d + 1)       # Sec. III-C: d + 1 per unit


@pytest.mark.parametrize("cls, stem, side", [(ResNet18, "cifar", 4), (ResNet18, "imagenet", 1),
                                             (MobileNetV2, "cifar", 4), (MobileNetV2, "imagenet", 1)])
def test_cifar_and_imagenet_strides(cls, stem, side):
    m = cls(10, width_mult=0.125, stem=stem).eval()
    x = torch.randn(2, 3, 32, 32)
    assert m.features(x).shape[-2:] == (side, side) and m(x).shape == (2, 10)


@pytest.mark.parametrize("arch", ["pcnn", "resnet18", "mobilenetv2"])
def test_cfu_and_pu_equal_their_form_at_initialisation(arch):
    """The α init makes the gate 1: the bounded additive form equals additive fusion, Eq. 4 (the
    default form) equals the network without shortcuts (fusion 'none'), same weights."""
    from components.fusion import FORMS

    torch.manual_seed(0)
    add = build_backbone(arch, num_classes=7, fusion="add", width_mult=0.25).eval()
    plain = build_backbone(arch, num_classes=7, fusion="none", width_mult=0.25).eval()
    plain.load_state_dict(add.state_dict())
    x = torch.randn(3, 3, 32, 32)
    ref = add(x)
    for kind in ("cfu", "pu"):
        eq4 = build_backbone(arch, num_classes=7, fusion=kind, fusion_kwargs={"order": 5}, width_mult=0.25).eval()
        eq4.load_state_dict(add.state_dict(), strict=False)
        torch.testing.assert_close(eq4(x), plain(x), rtol=1e-5, atol=1e-5)
        m = build_backbone(arch, num_classes=7, fusion=kind, fusion_kwargs={"order": 5, **FORMS["bounded_additive"]},
                           width_mult=0.25).eval()
        missing, unexpected = m.load_state_dict(add.state_dict(), strict=False)
        assert not unexpected and all(k.endswith("fusion.alpha") for k in missing)
        torch.testing.assert_close(m(x), ref, rtol=1e-5, atol=1e-5)
        m.train()
        loss = m(x).logsumexp(1).sum()
        loss.backward()
        assert all(u.alpha.grad.abs().sum() > 0 for u in fusion_modules(m))   # α learn from there


def test_pcnn_fuses_each_block_input_with_its_output():
    torch.manual_seed(0)
    m = PCNN(5, fusion="concat", width_mult=0.125).eval()
    seen = []
    for blk in m.layers:
        blk.fusion.register_forward_hook(lambda mod, inp, out: seen.append((inp[0], inp[1])))
    block_in = []
    for blk in m.layers:
        blk.register_forward_hook(lambda mod, inp, out: block_in.append(inp[0]))
    x = torch.randn(2, 3, 32, 32)
    m(x)
    assert [s[0].shape[-1] for s in seen] == [32, 16, 8, 4]
    for (shortcut, current), inp, blk in zip(seen, block_in, m.layers):
        assert torch.equal(shortcut, inp) and torch.equal(current, blk.body(inp))
    plain = PCNN(5, fusion="none", width_mult=0.125).eval()
    plain.load_state_dict({k: v for k, v in m.state_dict().items() if ".fusion." not in k})
    h = torch.relu(plain.layers[0].body(plain.stem(x)))     # "none": conv-BN-ReLU layers only
    for blk in plain.layers[1:]:
        h = torch.relu(blk.body(plain.pool(h)))
    torch.testing.assert_close(plain(x), plain.head(h.mean(dim=(2, 3))))
    # "add": relu(h + bn(conv(h))), ResNet's BasicBlock with one convolution
    blk, inp = m.layers[2], torch.rand(2, 16, 8, 8)
    add = PCNN(5, fusion="add", width_mult=0.125).eval().layers[2]
    add.load_state_dict({k: v for k, v in blk.state_dict().items() if not k.startswith("fusion.")})
    torch.testing.assert_close(add(inp), torch.relu(inp + add.body(inp)))


def test_resnet_fusion_gets_projected_shortcut_and_residual_branch():
    m = ResNet18(10, fusion="add", width_mult=0.125).eval()
    blk = m.features[5]        # stage 2, first block: stride 2, 8 -> 16 channels
    got = []
    blk.fusion.register_forward_hook(lambda mod, inp, out: got.append(inp))
    x = torch.randn(2, 8, 16, 16)
    out = blk(x)
    shortcut, current = got[0]
    torch.testing.assert_close(shortcut, blk.shortcut(x))
    torch.testing.assert_close(current, blk.body(x))
    torch.testing.assert_close(out, torch.relu(shortcut + current))
    assert out.shape == (2, 16, 8, 8)


def test_invalid_arguments_raise_value_errors_naming_them():
    for kwargs, word in [({"fusion": "mul"}, "fusion"), ({"width_mult": 0}, "width_mult"),
                         ({"num_classes": 0}, "num_classes"), ({"stem": "big"}, "stem")]:
        with pytest.raises(ValueError, match=word):
            ResNet18(**kwargs)
    with pytest.raises(ValueError, match="order"):
        PCNN(fusion="cfu", fusion_kwargs={"order": -1})
    with pytest.raises(ValueError, match="arch"):
        build_backbone("vgg")


# ------------------------------------------------------------------ optimiser
def test_fusion_alpha_excluded_from_weight_decay():
    cfg = cfg_of(**{"model.arch": "pcnn", "model.fusion": "cfu", "model.order": 3})
    m = build_model(cfg, 10)
    groups = param_groups(m, cfg)
    alphas = [u.alpha for u in fusion_modules(m)]
    assert groups[1]["params"] == alphas and groups[1]["weight_decay"] == 0.0
    assert sum(p.numel() for g in groups for p in g["params"]) == count_params(m)
    opt = torch.optim.SGD(groups, lr=0.1, weight_decay=0.5)
    before = copy.deepcopy(m.state_dict())
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()          # zero gradient: only decay moves the weights
    after = m.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in after if k.endswith("fusion.alpha"))
    w = "stem.0.weight"
    torch.testing.assert_close(after[w], before[w] * (1 - 0.1 * 0.5))
    add = cfg_of(**{"model.arch": "pcnn", "model.fusion": "add"})
    assert len(param_groups(build_model(add, 10), add)) == 1


# ------------------------------------------------------------------ data
def test_augment_crop_is_a_window_of_the_padded_image_and_flip_mirrors():
    x = torch.rand(6, 3, 8, 8, dtype=torch.float64)
    g = torch.Generator().manual_seed(3)
    out = icdata.augment_batch(x, "crop", g)
    off = torch.randint(0, 9, (2, 6), generator=torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for b in range(6):
        i, j = off[0, b].item(), off[1, b].item()
        assert torch.equal(out[b], padded[b, :, i:i + 8, j:j + 8])
    a = icdata.augment_batch(x, "crop_flip", torch.Generator().manual_seed(5))
    b = icdata.augment_batch(x, "crop_flip", torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.dtype == x.dtype
    g = torch.Generator().manual_seed(5)
    torch.randint(0, 9, (2, 6), generator=g)
    flip = torch.rand(6, generator=g) < 0.5
    crop = icdata.augment_batch(x, "crop", torch.Generator().manual_seed(5))
    assert 0 < flip.sum() < 6
    for k in range(6):
        assert torch.equal(a[k], crop[k].flip(-1) if flip[k] else crop[k])
    assert icdata.augment_batch(x, "none", g) is x
    assert icdata.resolve_augment("cifar100", "auto") == "crop_flip"
    assert icdata.resolve_augment("svhn", "auto") == icdata.resolve_augment("digits", "auto") == "crop"


def _cifar10(root, n_train=(8, 8, 8, 8, 8), n_test=16):
    rng = np.random.default_rng(0)
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for f, n in zip(names, [*n_train, n_test]):
        rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        with open(d / f, "wb") as fh:
            pickle.dump({b"data": rows, b"labels": rng.integers(0, 10, n).tolist()}, fh)


def test_local_cifar_files_load_normalise_and_split(tmp_path):
    _cifar10(tmp_path)
    cfg = SPEC.resolve({"data.name": "cifar10", "data.root": str(tmp_path), "data.val_fraction": 0.25})
    assert SPEC.check_config(cfg) == []
    d = icdata.load(cfg)
    assert d.x_train.dtype == torch.uint8 and d.x_train.shape == (30, 3, 32, 32) and len(d.x_val) == 10
    assert len(d.x_test) == 16 and d.num_classes == 10 and d.augment == "crop_flip"
    again = icdata.load(cfg)           # the validation slice does not depend on the seed or call
    assert torch.equal(again.x_val, d.x_val) and torch.equal(again.y_train, d.y_train)
    ref = d.x_train.double().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    torch.testing.assert_close(d.mean.double(), ref.mean(1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(d.std.double(), ref.std(1, unbiased=False), rtol=1e-5, atol=1e-6)
    z = icdata.normalise(icdata.to_unit(d.x_train), d.mean, d.std)
    assert z.mean(dim=(0, 2, 3)).abs().max() < 1e-4 and (z.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-2


def test_run_on_local_cifar_files(tmp_path):
    _cifar10(tmp_path)
    cfg = cfg_of(**{"data.name": "cifar10", "data.root": str(tmp_path), "model.arch": "resnet18",
                    "model.fusion": "pu", "model.order": 2, "data.val_fraction": 0.2})
    rep = LocalReporter(echo=lambda s: None)
    out = run_trial("image_classification", cfg, rep)
    assert {"test_acc", "val_acc", "train_loss", "train_acc"} <= set(out)
    assert rep.info["n_fusion_units"] == 8 and rep.info["n_fusion_params"] == 8 * 3
    assert rep.info["data_source"].startswith("cifar10 from") and rep.info["n_val"] == 8


# ------------------------------------------------------------------ runs
def test_deterministic_and_resumes_exactly():
    cfg = cfg_of(**{"model.arch": "pcnn", "model.fusion": "cfu", "model.order": 4, "train.epochs": 2,
                    "optim.milestones": "1"})
    runs = [LocalReporter(echo=lambda s: None) for _ in range(2)]
    outs = [run_trial("image_classification", cfg, r) for r in runs]
    strip = lambda h: [{k: v for k, v in m.items() if k != "epoch_seconds"} for m in h]
    assert strip(runs[0].history) == strip(runs[1].history)
    assert [m["lr"] for m in runs[0].history] == [0.1, pytest.approx(0.01)]
    assert runs[0].info["n_params"] == count_params(build_model(cfg, 10)) and outs[0]["epoch"] == 2
    # kill after epoch 1 and resume from its checkpoint (through torch.save, as a sweep's
    # checkpoint travels; the augment stream's state is in it): the same second epoch
    first = LocalReporter(echo=lambda s: None)
    run_trial("image_classification", {**cfg, "train.epochs": 1}, first)
    buf = io.BytesIO()
    torch.save(first.last_state, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=False)
    assert "augment_rng" in state["extra"]
    resumed = LocalReporter(state=state, echo=lambda s: None)
    run_trial("image_classification", cfg, resumed)
    assert strip(resumed.history) == strip(runs[0].history[1:])


# ------------------------------------------------------------------ what the seed controls
def test_fusion_cells_of_one_seed_share_split_batches_and_augmentation():
    from ._pairing import assert_paired

    base = {"model.arch": "pcnn", "data.val_fraction": 0.1, "train.epochs": 2, "seed": 5}
    a, b = cfg_of(**base, **{"model.fusion": "add"}), cfg_of(**base, **{"model.fusion": "cfu", "model.order": 3})
    reps = assert_paired("image_classification", a, b, icdata.data_order)
    order = icdata.data_order(a)
    assert set(order.states) == {"batches", "augment"} and reps["a"].info["augment"] == "crop"
    assert reps["a"].info["n_val"] == len(order.split["val"]) == 144
    assert reps["a"].info["n_train"] == len(order.split["train"]) == 64
    # the validation slice is VAL_SEED's permutation, disjoint from the training rows
    perm = torch.randperm(1437, generator=torch.Generator().manual_seed(icdata.VAL_SEED)).numpy()
    assert np.array_equal(order.split["val"], perm[:144]) and np.array_equal(order.split["train"], perm[144:208])


def test_crop_and_crop_flip_cells_see_the_same_batches_and_crops():
    crop, flip = (icdata.data_order(cfg_of(**{"data.augment": m, "seed": 1}), 2) for m in ("crop", "crop_flip"))
    from ._pairing import same_order

    assert same_order(crop, flip) and torch.equal(crop.states["augment"], flip.states["augment"])
    none = icdata.data_order(cfg_of(**{"data.augment": "none", "seed": 1}), 2)
    assert same_order(none, crop)          # no augmentation: the batch order is still the same
    x = torch.rand(5, 3, 8, 8)
    a = icdata.augment_batch(x, "crop", torch.Generator().manual_seed(2))
    b = icdata.augment_batch(x, "crop_flip", torch.Generator().manual_seed(2))
    off, coin = icdata.augment_draws(5, "crop_flip", torch.Generator().manual_seed(2))
    assert all(torch.equal(b[k], a[k].flip(-1) if coin[k] else a[k]) for k in range(5))
    with pytest.raises(ValueError, match="mode must be"):
        icdata.augment_draws(5, "auto", None)
