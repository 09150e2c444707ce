"""Segmentation task: data loaders (tiny NIfTI files in each dataset's real
layout), layout checks, UNet fusion/conv wiring and exact parameter counts,
test-time noise, and a deterministic short run through run_trial."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from tasks import get_task
from tests.helpers import count_params

SPEC = get_task("segmentation")
SMALL = {**SPEC.smoke, "eval.noise": False}


def cfg_of(**over):
    return SPEC.resolve({**SMALL, **over})


# ---------------------------------------------------------------- import cost / schema
def test_conditional_keys_drop_where_they_do_not_apply():
    std = SPEC.resolve({"model.conv": "standard", "model.fusion": "concat"})
    assert "model.n_l" not in std and "model.order" not in std and "data.root" not in std
    assert "model.hyper_init" not in std and "model.fusion_form" not in std and "model.res_units" not in std
    assert std["model.backbone"] == "unet" and std["model.dropout_at"] == "reference"
    hyp = SPEC.resolve({"model.conv": "hyper", "model.fusion": "cfu", "model.order": 7, "model.backbone": "monai"})
    assert hyp["model.n_l"] == 4 and hyp["model.order"] == 7 and hyp["model.res_units"] == 2
    assert hyp["model.hyper_init"] == "he_normal" and hyp["model.fusion_form"] == "eq4"
    assert "model.dropout_at" not in hyp and "model.up_kernel_size" not in hyp


def test_choice_lists_mirror_the_components():
    from components.fusion import FORMS
    from components.hyperconv import _INITS
    from tasks.segmentation import FUSION_FORMS, HYPER_INITS

    assert FUSION_FORMS == tuple(FORMS) and HYPER_INITS == _INITS
    assert "test_dice" in SPEC.metrics and SPEC.metrics["dice_gaussian_0.1"] == "max"


def test_check_cross_key_constraints():
    errs = dict(SPEC.check_config(cfg_of(**{"model.kernel_size": 4, "data.size": 30, "data.rad_max": 20,
                                             "data.labels": "1,x"})))
    assert "odd" in errs["model.kernel_size"]
    assert "odd" in dict(SPEC.check_config(cfg_of(**{"model.up_kernel_size": 4})))["model.up_kernel_size"]
    assert "divisible by 2^model.depth = 4" in errs["data.size"]
    assert "2 * data.rad_max" in errs["data.rad_max"]
    assert SPEC.check_config(cfg_of()) == []


@pytest.mark.parametrize("source, expected", [
    ("decathlon", "dataset.json, imagesTr/*.nii.gz and labelsTr/*.nii.gz"),
    ("acdc", "patientNNN_frameFF_gt.nii.gz"),
    ("brats", "_{flair,t1,t1ce,t2,seg}.nii.gz"),
    ("lits", "segmentation-<i>.nii"),
])
def test_missing_dataset_fails_naming_directory_and_files(tmp_path, source, expected):
    missing = str(tmp_path / "nowhere")
    errs = SPEC.check_config(SPEC.resolve({"data.source": source, "data.root": missing}))
    assert errs and errs[0][0] == "data.root"
    assert missing in errs[0][1] and expected in errs[0][1]
    empty = tmp_path / "empty"
    empty.mkdir()
    errs = SPEC.check_config(SPEC.resolve({"data.source": source, "data.root": str(empty)}))
    assert errs and str(empty) in errs[0][1]
    assert "needs data.root" in SPEC.check_config(SPEC.resolve({"data.source": source}))[0][1]


# ---------------------------------------------------------------- NIfTI layouts
def _nii(path, arr, affine=None):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(arr), np.eye(4) if affine is None else affine), str(path))


def _volume(rng, shape=(12, 10, 3), labels=(1, 2)):
    lab = np.zeros(shape, np.int16)
    lab[2:6, 2:6] = labels[0]
    lab[7:10, 5:9] = labels[-1]
    img = rng.normal(100.0, 30.0, shape).astype(np.float32) + 50.0 * lab
    return img, lab


def write_layout(root, source, n=3):
    rng = np.random.default_rng(0)
    if source == "decathlon":
        train = []
        for i in range(n):
            img, lab = _volume(rng)
            _nii(root / "imagesTr" / f"case_{i:03d}.nii.gz", np.stack([img, -img], -1))  # 2 modalities, channels last
            _nii(root / "labelsTr" / f"case_{i:03d}.nii.gz", lab)
            train.append({"image": f"./imagesTr/case_{i:03d}.nii.gz", "label": f"./labelsTr/case_{i:03d}.nii.gz"})
        (root / "dataset.json").write_text(json.dumps({
            "name": "Tiny", "modality": {"0": "FLAIR", "1": "T1w"},
            "labels": {"0": "background", "1": "a", "2": "b"}, "training": train, "test": []}))
    elif source == "acdc":
        for i in range(1, n + 1):
            for frame in (1, 12):
                img, lab = _volume(rng, labels=(1, 3))
                d = root / "training" / f"patient{i:03d}"
                _nii(d / f"patient{i:03d}_frame{frame:02d}.nii.gz", img)
                _nii(d / f"patient{i:03d}_frame{frame:02d}_gt.nii.gz", lab)
    elif source == "brats":
        for i in range(n):
            sid = f"BraTS19_X_{i}"
            img, lab = _volume(rng, labels=(2, 4))
            d = root / ("HGG" if i % 2 else "LGG") / sid
            for m in ("flair", "t1", "t1ce", "t2"):
                _nii(d / f"{sid}_{m}.nii.gz", img)
            _nii(d / f"{sid}_seg.nii.gz", lab)
    elif source == "lits":
        for i in range(n):
            img, lab = _volume(rng)
            _nii(root / f"volume-{i}.nii", img * 2 - 100)     # CT-like values in HU
            _nii(root / f"segmentation-{i}.nii", lab)


@pytest.mark.parametrize("source, channels, classes", [
    ("decathlon", 2, 2), ("acdc", 1, 3), ("brats", 4, 3), ("lits", 1, 2)])
def test_nifti_layouts_load_2d_slices(tmp_path, source, channels, classes):
    from tasks.segmentation.data import load

    write_layout(tmp_path, source)
    cfg = SPEC.resolve({"data.source": source, "data.root": str(tmp_path), "data.size": 8, "model.depth": 2,
                        "data.test_fraction": 0.34})
    assert SPEC.check_config(cfg) == []
    d = load(cfg)
    assert (d.in_channels, d.n_classes) == (channels, classes)
    frames = 2 if source == "acdc" else 1          # 3 patients, 1 test patient, 3 axial slices per volume
    assert len(d.x_test) == 3 * frames and len(d.x_train) == 3 * 2 * frames
    assert d.x_train.shape[1:] == (channels, 8, 8) and d.y_train.shape[1:] == (8, 8)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert 0.0 <= float(d.x_train.min()) and float(d.x_train.max()) <= 1.0
    present = set(torch.cat([d.y_train, d.y_test]).unique().tolist())
    assert present <= set(range(classes + 1)) and 0 in present and len(present) >= 2


def test_nifti_label_selection_and_3d(tmp_path):
    from tasks.segmentation.data import load

    write_layout(tmp_path, "brats")
    cfg = SPEC.resolve({"data.source": "brats", "data.root": str(tmp_path), "data.size": 8, "model.dims": 3,
                        "model.depth": 2, "data.labels": "4"})
    d = load(cfg)
    assert d.n_classes == 1 and d.x_train.shape[1:] == (4, 8, 8, 8) and d.y_train.shape[1:] == (8, 8, 8)
    # label 2 becomes background, label 4 becomes class 1
    assert set(d.y_train.unique().tolist()) == {0, 1}


def test_nifti_image_and_label_on_different_grids_fail_naming_both_files(tmp_path):
    from tasks.segmentation.data import load

    write_layout(tmp_path, "lits")
    bad = tmp_path / "segmentation-1.nii"
    _nii(bad, np.zeros((12, 10, 4), np.int16))          # one slice more than volume-1.nii
    cfg = SPEC.resolve({"data.source": "lits", "data.root": str(tmp_path), "data.size": 8, "model.depth": 2,
                        "data.test_fraction": 0.34})
    with pytest.raises(ValueError, match=r"volume-1\.nii has spatial shape \(12, 10, 3\).*"
                                         r"segmentation-1\.nii has \(12, 10, 4\)"):
        load(cfg)


def test_split_keeps_each_patient_on_one_side(tmp_path):
    from tasks.segmentation.layouts import acdc_cases, split_cases

    write_layout(tmp_path, "acdc", n=5)
    cases = acdc_cases(str(tmp_path))
    assert len(cases) == 10
    train, test = split_cases(cases, "acdc", 0.4, seed=0)
    patient = lambda i: cases[i][1].split("/")[-2]
    assert sorted(train + test) == list(range(10)) and len(test) == 4
    assert not {patient(i) for i in train} & {patient(i) for i in test}
    assert split_cases(cases, "acdc", 0.4, seed=0) == (train, test)
    assert split_cases(cases, "acdc", 0.4, seed=1) != (train, test)
    tr, te = split_cases(cases, "acdc", 0.5, seed=0, max_patients=2)
    assert len(tr) == len(te) == 2


def test_decathlon_missing_listed_file_is_reported(tmp_path):
    write_layout(tmp_path, "decathlon")
    (tmp_path / "labelsTr" / "case_001.nii.gz").unlink()
    errs = SPEC.check_config(SPEC.resolve({"data.source": "decathlon", "data.root": str(tmp_path)}))
    assert "missing" in errs[0][1] and "case_001" in errs[0][1]


def test_synthetic_sets_are_fixed_and_independent_of_trial_seed():
    from tasks.segmentation.data import load

    a, b = load(cfg_of(seed=0)), load(cfg_of(seed=5))
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_test, b.y_test)
    assert a.x_train.shape == (8, 1, 32, 32) and a.x_test.shape == (4, 1, 32, 32)
    assert not torch.equal(a.x_train[:4], a.x_test)             # two different streams
    c = load(cfg_of(**{"data.seed": 1}))
    assert not torch.equal(a.x_train, c.x_train)
    assert set(a.y_train.unique().tolist()) == {0, 1}


# ---------------------------------------------------------------- models
def _model(**over):
    from tasks.segmentation.models import build_model

    torch.manual_seed(0)
    return build_model(cfg_of(**over), 1, 2)


@pytest.mark.parametrize("dims", [2, 3])
def test_fusion_replaces_concat_with_exact_parameter_change(dims):
    from tasks.segmentation.models import unet_channels

    monai = {"model.dims": dims, "model.backbone": "monai"}
    cat, add = _model(**monai), _model(**monai, **{"model.fusion": "add"})
    ch = unet_channels(SMALL["model.base_channels"], SMALL["model.depth"])
    # every up (transposed, 3^dims) conv loses the skip's channels from its input;
    # the bottleneck gains a 1x1 projection channels[-1] -> channels[-2] (+ bias)
    outs = [2] + list(ch[:-2])                      # out channels of the up layers, top first
    lost = sum(((ch[i + 1] if i == len(ch) - 2 else ch[i])) * outs[i] * 3 ** dims for i in range(len(ch) - 1))
    assert count_params(cat) - count_params(add) == lost - (ch[-1] * ch[-2] + ch[-2])
    cfu = _model(**monai, **{"model.fusion": "cfu", "model.order": 6})
    assert count_params(cfu) - count_params(add) == (len(ch) - 1) * (6 + 1)   # d + 1 alphas per skip (Sec. III-C)
    # the authors' UNet: each decoder block's first conv reads C_l instead of 2 C_l channels
    ucat, uadd = _model(**{"model.dims": dims}), _model(**{"model.dims": dims, "model.fusion": "add"})
    assert count_params(ucat) - count_params(uadd) == sum(c * c * 3 ** dims for c in ch[:-1])
    ucfu = _model(**{"model.dims": dims, "model.fusion": "cfu", "model.order": 6})
    assert count_params(ucfu) - count_params(uadd) == (len(ch) - 1) * (6 + 1)
    x = torch.rand(2, 1, *(16,) * dims)
    for m in (cat, add, cfu, ucat, uadd, ucfu):
        assert m.eval()(x).shape == (2, 2, *(16,) * dims)


@pytest.mark.parametrize("backbone", ["unet", "monai"])
def test_cfu_unet_forms_start_as_their_units(backbone):
    """CFU's α init makes the gate 1: the bounded_additive form is then exactly x + f(x)
    (the add UNet, same weights), Eq. 4 exactly f(x) (the skip's encoder feature unused)."""
    add = _model(**{"model.fusion": "add", "model.backbone": backbone})
    cfu = _model(**{"model.fusion": "cfu", "model.order": 5, "model.fusion_form": "bounded_additive",
                    "model.backbone": backbone})
    missing, unexpected = cfu.load_state_dict(add.state_dict(), strict=False)
    assert unexpected == [] and missing and all(k.endswith("alpha") for k in missing)
    x = torch.rand(3, 1, 32, 32)
    torch.testing.assert_close(cfu.eval()(x), add.eval()(x), rtol=1e-5, atol=1e-6)
    # and the gate does act: perturbing α changes the output
    with torch.no_grad():
        for name, p in cfu.named_parameters():
            if name.endswith("alpha"):
                p[1:] += 0.5
    assert not torch.allclose(cfu(x), add(x))
    eq4 = _model(**{"model.fusion": "cfu", "model.order": 5, "model.backbone": backbone})
    units = [m for m in eq4.modules() if type(m).__name__ == "ChebyshevFusion"]
    assert units and all(not u.identity and u.bound == "none" for u in units)
    enc, up = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(units[0](enc, up), up)


def _keras_count(m: nn.Module) -> int:
    """Keras' model.summary() "Total params": the weights plus batch norm's moving mean and
    variance (non-trainable there, buffers here). The paper's counts are Keras'."""
    bn = [b for mod in m.modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)
          for b in (mod.running_mean, mod.running_var)]
    return count_params(m) + sum(b.numel() for b in bn)


def test_authors_unet_parameter_counts_are_the_papers():
    """Issue 26: the 32-channel, 3-max-pool (Hyper-)UNet of paper 003 on a 1-channel image with a
    1-channel head, as the authors' Keras code lays it out.  Paper (Tables 1, 2 and Sec. 4.4):
    Hyper-UNet 5x5 N_L = 2 / 4 / 8: 0.73 / 1.2 / 2.2 M; UNet 3x3: 2.1 M; UNet 5x5: 5.3 M.  The
    counts from the code: 0.729 / 1.206 / 2.159 M and 2.146 / 5.947 M; 5.3 M is the 5x5 UNet with
    the code's hard-coded 3x3 up-convs.  Per hyper-conv: 48 + 272 + 17 N_L + (N_L + 1) C_in C_out
    + C_out (BiasNet)."""
    from components.hyperconv import HyperConv2d
    from tasks.segmentation.maxpool_unet import MaxPoolUNet

    hyper = {n_l: MaxPoolUNet(1, 1, conv="hyper", kernel_size=5, n_l=n_l) for n_l in (2, 4, 8)}
    assert {n: _keras_count(m) for n, m in hyper.items()} == {2: 728_933, 4: 1_205_737, 8: 2_159_345}
    assert [round(_keras_count(m) / 1e6, 3) for m in hyper.values()] == [0.729, 1.206, 2.159]
    assert count_params(hyper[4]) == 1_202_441                 # torch's count: BN running stats are buffers
    convs = [m for m in hyper[4].modules() if isinstance(m, HyperConv2d)]
    assert len(convs) == 18 and all(c.kernel_size == (5, 5) and c.init == "he_normal" for c in convs)
    assert sum(count_params(c) for c in convs) == sum(48 + 272 + 17 * 4 + 5 * c.in_channels * c.out_channels
                                                 + c.out_channels for c in convs)
    std = {k: _keras_count(MaxPoolUNet(1, 1, kernel_size=k)) for k in (3, 5)}
    assert std == {3: 2_145_697, 5: 5_947_297}
    assert [round(v / 1e6, 3) for v in std.values()] == [2.146, 5.947]
    assert _keras_count(MaxPoolUNet(1, 1, kernel_size=5, up_kernel_size=3)) == 5_259_169   # the paper's 5.3 M
    # the same networks through the task's config (1 channel in, background + 1 class out: +33 params)
    cfg = SPEC.resolve({"model.conv": "hyper", "model.kernel_size": 5})
    from tasks.segmentation.models import build_model
    assert _keras_count(build_model(cfg, 1, 2)) == 1_205_737 + 33


def test_authors_unet_dropout_placement():
    from tasks.segmentation.maxpool_unet import MaxPoolUNet

    count = lambda m: sum(isinstance(x, nn.Dropout) for x in m.modules())  # noqa: E731
    # the code: one dropout (bottom block) in the UNet, one per block (1 + 3 + 1 + 3 + 3 = 11) in the Hyper-UNet
    assert count(MaxPoolUNet(1, 1)) == 1 and count(MaxPoolUNet(1, 1, conv="hyper")) == 11
    assert count(MaxPoolUNet(1, 1, conv="hyper", dropout_at="bottom")) == 1
    assert count(MaxPoolUNet(1, 1, dropout_at="every_block")) == 10
    with pytest.raises(ValueError, match="dropout_at"):
        MaxPoolUNet(1, 1, dropout_at="everywhere")


def test_fusion_skip_passes_encoder_feature_as_shortcut():
    from tasks.segmentation.models import FusionSkip

    class Record(nn.Module):
        def forward(self, shortcut, current):
            self.seen = (shortcut, current)
            return shortcut - current

    rec = Record()
    skip = FusionSkip(nn.Conv2d(3, 3, 1), rec)
    x = torch.randn(1, 3, 4, 4)
    y = skip(x)
    assert rec.seen[0] is x and torch.equal(y, x - skip.submodule(x))


def test_hyper_convs_decouple_parameters_from_kernel_size():
    from components.hyperconv import HyperConv2d

    hyper = {k: _model(**{"model.conv": "hyper", "model.kernel_size": k, "model.n_l": 2}) for k in (3, 5, 7)}
    assert len({count_params(m) for m in hyper.values()}) == 1                       # Eq. (3)
    convs = [m for m in hyper[5].modules() if isinstance(m, HyperConv2d)]
    assert convs and all(c.kernel_size == (5, 5) and c.n_l == 2 for c in convs)
    assert not any(type(m) is nn.Conv2d and m.kernel_size != (1, 1) for m in hyper[5].modules())
    # standard convs grow with k: each non-pointwise conv adds C_in C_out (k² - 9)
    s3, s5 = _model(**{"model.kernel_size": 3}), _model(**{"model.kernel_size": 5})
    grow = sum(m.in_channels * m.out_channels // m.groups * 16 for m in s3.modules()
               if type(m) is nn.Conv2d and m.kernel_size == (3, 3))
    assert count_params(s5) - count_params(s3) == grow
    x = torch.rand(2, 1, 32, 32)
    assert hyper[7].eval()(x).shape == (2, 2, 32, 32)


# ---------------------------------------------------------------- noise
def test_noise_models():
    from tasks.segmentation.data import add_noise

    g = lambda: torch.Generator().manual_seed(0)
    x = torch.full((4, 1, 64, 64), 0.5)
    n = add_noise(x, "gaussian", 0.1, g()) - x
    assert abs(n.std().item() - 0.1) < 0.005 and abs(n.mean().item()) < 0.005
    sp = add_noise(x, "saltpepper", 0.1, g())
    changed = sp != 0.5
    assert abs(changed.float().mean().item() - 0.1) < 0.01
    assert set(sp[changed].unique().tolist()) == {0.0, 1.0}
    sk = add_noise(torch.cat([x, torch.zeros_like(x)], 1), "speckle", 0.2, g())
    assert torch.equal(sk[:, 1], torch.zeros_like(sk[:, 1]))                    # multiplicative
    assert abs((sk[:, 0] - 0.5).std().item() - 0.1) < 0.005                     # x·σ = 0.1
    assert torch.equal(add_noise(x, "gaussian", 0.3, g()), add_noise(x, "gaussian", 0.3, g()))
    big = add_noise(x, "gaussian", 2.0, g())
    assert big.min() >= 0 and big.max() <= 1
    with pytest.raises(ValueError, match="noise kind"):
        add_noise(x, "poisson", 0.1, g())


# ---------------------------------------------------------------- end to end
def test_run_trial_is_deterministic_and_reports_robustness():
    from sweeps.runner.trial import LocalReporter, run_trial

    cfg = SPEC.resolve({**SPEC.smoke, "model.fusion": "cfu", "model.order": 3, "model.conv": "hyper",
                        "model.kernel_size": 5, "train.epochs": 2})
    runs = []
    for _ in range(2):
        rep = LocalReporter(echo=lambda s: None)
        runs.append((run_trial("segmentation", cfg, rep), rep))
    (m1, r1), (m2, _) = runs
    drop = lambda m: {k: v for k, v in m.items() if k != "epoch_seconds"}
    assert drop(m1) == drop(m2)
    assert [h["epoch"] for h in r1.history] == [1, 2]
    assert "dice_speckle_0.4" not in r1.history[0]                 # robustness only at the end
    noise = [k for k in SPEC.metrics if k.startswith("dice_")]
    assert len(noise) == 9 and all(0.0 <= m1[k] <= 1.0 for k in noise + ["test_dice"])
    assert math.isfinite(m1["train_loss"]) and r1.info["n_params"] > 0


# ---------------------------------------------------------------- what the seed controls
def test_conv_and_fusion_cells_of_one_seed_share_data_and_batches():
    from tasks.segmentation.data import data_order, load

    from ._pairing import assert_paired

    a = cfg_of(**{"model.conv": "standard", "seed": 4, "train.epochs": 2})
    b = cfg_of(**{"model.conv": "hyper", "model.fusion": "cfu", "seed": 4, "train.epochs": 2})
    reps = assert_paired("segmentation", a, b, data_order)
    assert reps["a"].info["n_train"] == len(data_order(a).split["train"]) == 8
    # the images themselves depend on data.seed only, not on the trial seed
    assert torch.equal(load(a).x_train, load({**a, "seed": 9}).x_train)
