"""complex_classification task: schema and checks, the model.cds_settings presets (paper vs
the authors' code), MSTAR .npy layouts, per-batch encoding, test-time complex scaling, model
sizes, deterministic runs, and (slow) the CDS paper's robustness claim on the offline digits data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sweeps.runner.trial import LocalReporter, run_trial
from tasks import get_task
from tasks.complex_classification.mstar import layout_problems, load_mstar
from tasks.complex_classification.presets import effective
from tasks.complex_classification.rotations import ROTATIONS, rotation_metric_names

TASK = "complex_classification"
SPEC = get_task(TASK)


def test_rotation_metrics_declared():
    assert rotation_metric_names() == ["acc_rot_0", "acc_rot_0.25pi", "acc_rot_0.5pi", "acc_rot_0.75pi",
                                       "acc_rot_1pi"]
    for m in rotation_metric_names() + ["test_acc", "val_acc", "test_acc_best_val"]:
        assert SPEC.metrics[m] == "max"
    assert SPEC.metrics["train_loss"] == SPEC.metrics["rot_drop"] == "min"


def test_paper_defaults_and_conditional_keys():
    cfg = SPEC.resolve({})
    assert (cfg["optim.lr"], cfg["optim.weight_decay"], cfg["train.batch_size"]) == (1e-3, 0.1, 256)
    assert (cfg["optim.beta2"], cfg["data.val_fraction"], cfg["model.cds_settings"]) == (0.999, 0.1, "paper")
    assert effective(cfg) == {"model.init": "fan_in", "model.omega_constraint": "none", "optim.beta1": 0.99}
    assert cfg["data.name"] == "digits" and "data.root" not in cfg     # offline default needs no root
    dcn = SPEC.resolve({"model.type": "dcn"})
    assert "model.metric" not in dcn and "model.relative_eps" not in dcn and dcn["model.gauss"] is True
    real = SPEC.resolve({"model.type": "real"})
    assert "model.gauss" not in real
    assert "model.relative_eps" not in SPEC.resolve({"model.type": "type_e"})
    mstar = SPEC.resolve({"data.name": "mstar", "data.root": "/x"})
    assert "data.encoding" not in mstar and mstar["data.root"] == "/x"
    with pytest.raises(ValueError, match="one of 'type_i', 'type_e', 'dcn', 'real'"):
        SPEC.params["model.type"].coerce("cnn")


def test_check_names_directory_and_files(tmp_path):
    assert SPEC.check_config(SPEC.resolve({})) == []
    errs = SPEC.check_config(SPEC.resolve({"data.name": "cifar10", "data.root": str(tmp_path)}))
    assert len(errs) == 1 and errs[0][0] == "data.root"
    assert str(tmp_path) in errs[0][1] and "cifar-10-batches-py/data_batch_1" in errs[0][1]
    errs = SPEC.check_config(SPEC.resolve({"data.name": "svhn"}))
    assert errs and "data.root is empty" in errs[0][1]
    errs = SPEC.check_config(SPEC.resolve({"data.name": "mstar", "data.root": str(tmp_path)}))
    assert [k for k, _ in errs] == ["data.root", "data.root"]
    assert str(tmp_path / "train") in errs[0][1] and "images.npy" in errs[0][1]


# ------------------------------------------------- model.cds_settings: paper vs the authors' code
REFERENCE = {"model.init": "reference", "model.omega_constraint": "reference", "model.prototype_scale": "reference",
             "optim.beta1": 0.9}


def test_cds_settings_presets_resolve_every_setting():
    paper = effective(SPEC.resolve({"model.type": "type_e"}))
    assert paper == {"model.init": "fan_in", "model.omega_constraint": "none", "model.prototype_scale": "mean",
                     "optim.beta1": 0.99}
    assert effective(SPEC.resolve({"model.type": "type_e", "model.cds_settings": "reference_code"})) == REFERENCE
    ref_i = effective(SPEC.resolve({"model.type": "type_i", "model.cds_settings": "reference_code"}))
    assert ref_i == {k: v for k, v in REFERENCE.items() if k != "model.prototype_scale"}   # Type E only
    assert effective(SPEC.resolve({"model.type": "dcn", "model.cds_settings": "reference_code"})) == {
        "optim.beta1": 0.9}                                                                # betas for every model
    for key in ("model.init", "model.omega_constraint", "model.prototype_scale", "optim.beta1"):
        assert SPEC.params[key].default == "preset"


def test_own_keys_override_the_paper_preset_and_conflict_with_reference_code():
    one = SPEC.resolve({"model.type": "type_e", "model.prototype_scale": "reference", "optim.beta1": 0.95})
    assert SPEC.check_config(one) == []
    assert effective(one) == {"model.init": "fan_in", "model.omega_constraint": "none",
                              "model.prototype_scale": "reference", "optim.beta1": 0.95}
    agree = SPEC.resolve({"model.cds_settings": "reference_code", "model.init": "reference", "optim.beta1": "0.9"})
    assert SPEC.check_config(agree) == [] and effective(agree)["optim.beta1"] == 0.9
    bad = SPEC.resolve({"model.type": "type_e", "model.cds_settings": "reference_code", "optim.beta1": 0.99,
                        "model.prototype_scale": "mean"})
    errs = dict(SPEC.check_config(bad))
    assert set(errs) == {"optim.beta1", "model.prototype_scale"}
    assert "optim.beta1=0.99 conflicts with model.cds_settings=reference_code, which sets optim.beta1=0.9" \
        in errs["optim.beta1"] and "\n" not in errs["optim.beta1"]
    with pytest.raises(ValueError, match="conflicts"):          # a run that bypasses the sweep check
        effective(bad)
    for v in ("fast", 1.5, -0.1):
        errs = SPEC.check_config(SPEC.resolve({"optim.beta1": v}))
        assert [k for k, _ in errs] == ["optim.beta1"] and "'preset'" in errs[0][1]
    with pytest.raises(ValueError, match="one of 'paper', 'reference_code'"):
        SPEC.params["model.cds_settings"].coerce("foo")


def test_build_model_and_optimizer_follow_the_preset():
    from components.cds import ComplexConv2d, GTReLU
    from tasks.complex_classification.train import adamw_betas, build_model

    for settings, (init, omega, scale, betas) in {
            "paper": (("fan_in", "fan_in"), "none", "mean", (0.99, 0.999)),
            "reference_code": (("reference", "reference_ungrouped"), "relu", "reference", (0.9, 0.999))}.items():
        cfg = SPEC.resolve({"model.type": "type_e", "model.cds_settings": settings})
        m = build_model(cfg, 2, 10, 32)
        assert {c.init for c in m.modules() if isinstance(c, ComplexConv2d)} == set(init)
        assert {g.omega_constraint for g in m.modules() if isinstance(g, GTReLU)} == {omega}
        assert m.head.scale == scale and adamw_betas(cfg) == betas
    cfg = SPEC.resolve({"model.type": "type_i", "model.cds_settings": "reference_code", "model.init": "reference"})
    assert {g.omega_constraint for g in build_model(cfg, 2, 10, 32).modules() if isinstance(g, GTReLU)} == {"clamp"}


def test_reference_code_run_records_what_it_ran_with():
    cfg = _tiny(**{"model.type": "type_e", "model.cds_settings": "reference_code", "train.epochs": 1,
                   "eval.robustness": False})
    rep = LocalReporter(echo=lambda s: None)
    out = run_trial(TASK, cfg, rep)
    assert math.isfinite(out["train_loss"])
    assert rep.info["effective_settings"] == ("model.init=reference, model.omega_constraint=reference, "
                                              "model.prototype_scale=reference, optim.beta1=0.9")


def _mstar_folders(root, size=16, per_class=(3, 2), classes=("bmp2", "t72", "zsu")):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for k, c in enumerate(classes):
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                a = (rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) * (k + 1)
                np.save(root / split / c / f"{i}.npy", a.astype(np.complex64))


def test_mstar_class_folders(tmp_path):
    _mstar_folders(tmp_path)
    assert layout_problems(str(tmp_path)) == []
    x_tr, y_tr, x_te, y_te, k = load_mstar(str(tmp_path))
    assert k == 3 and x_tr.shape == (9, 1, 16, 16) and x_te.shape == (6, 1, 16, 16)
    assert x_tr.dtype == torch.complex64 and y_tr.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert x_tr.abs().max().item() == pytest.approx(1.0)               # divided by the train maximum
    raw = np.load(tmp_path / "train" / "t72" / "1.npy")
    scale = max(np.abs(np.load(p)).max() for p in (tmp_path / "train").rglob("*.npy"))
    assert np.allclose(x_tr[4, 0].numpy(), raw / scale)                # phase kept, positive scaling


def test_mstar_arrays_layout_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("test", 4)):
        (tmp_path / split).mkdir()
        np.save(tmp_path / split / "images.npy", (rng.normal(size=(n, 1, 12, 12)) + 0j).astype(np.complex128))
        np.save(tmp_path / split / "labels.npy", np.arange(n) % 4)
    x_tr, y_tr, x_te, y_te, k = load_mstar(str(tmp_path))
    assert k == 4 and x_tr.shape == (6, 1, 12, 12) and y_te.tolist() == [0, 1, 2, 3]
    (tmp_path / "test" / "labels.npy").unlink()
    probs = layout_problems(str(tmp_path))
    assert len(probs) == 1 and "lacks labels.npy" in probs[0] and str(tmp_path / "test") in probs[0]
    with pytest.raises(FileNotFoundError, match="labels.npy"):
        load_mstar(str(tmp_path))
    bad = tmp_path / "bad"
    _mstar_folders(bad)
    np.save(bad / "train" / "zsu" / "odd.npy", np.zeros((8, 8), np.complex64))
    with pytest.raises(ValueError, match="different sizes"):
        load_mstar(str(bad))


def test_mstar_non_finite_images_and_fractional_labels_fail_naming_the_split(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        (tmp_path / split).mkdir()
        np.save(tmp_path / split / "images.npy", np.ones((n, 6, 6), np.complex64))
        np.save(tmp_path / split / "labels.npy", np.arange(n))
    assert load_mstar(str(tmp_path))[4] == 4
    np.save(tmp_path / "test" / "labels.npy", np.array([0.0, 1.5]))
    with pytest.raises(ValueError, match=r"test/labels.npy must hold integer class labels.*1\.5"):
        load_mstar(str(tmp_path))
    np.save(tmp_path / "test" / "labels.npy", np.array([0.0, 1.0]))   # integral floats are fine
    assert load_mstar(str(tmp_path))[3].tolist() == [0, 1]
    img = np.ones((4, 6, 6), np.complex64)
    img[2, 3, 3] = np.nan
    np.save(tmp_path / "train" / "images.npy", img)
    with pytest.raises(ValueError, match=r"train contain 1 non-finite values"):
        load_mstar(str(tmp_path))


def test_encoder_uint8_equals_float():
    import components
    from tasks.complex_classification.data import Encoder

    x8 = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    for name in ("rgb", "lab", "sliding"):
        enc = Encoder(components.build("encoding", name))
        a, b = enc(x8), enc(x8.float() / 255.0)
        assert a.is_complex() and a.shape[1] == enc.channels and torch.equal(a, b)
    z = torch.randn(2, 1, 8, 8, dtype=torch.complex64)
    assert torch.equal(Encoder(None)(z), z) and Encoder(None).channels == 1


def test_complex_scale_is_a_unit_rotation_within_the_range():
    from tasks.complex_classification.data import complex_scale, scaling_draws

    z = torch.randn(500, 2, 3, 3, dtype=torch.complex128)
    u, v = scaling_draws(500, 2, seed=7)
    assert torch.equal(u, scaling_draws(500, 2, seed=7)[0]) and u.shape == (2, 500)
    assert torch.equal(complex_scale(z, u[0], v[0], 0.0), z)
    for r in (0.25, 1.0):
        out = complex_scale(z, u[0], v[0], r)
        s = out / z                                   # one s per sample, shared by its entries
        assert torch.allclose(s, s[:, :1, :1, :1].expand_as(s))
        assert torch.allclose(s.abs(), torch.ones_like(s.abs()))
        theta = s[:, 0, 0, 0].angle()
        assert theta.abs().max() <= r * math.pi + 1e-9
        assert theta.abs().max() > 0.9 * r * math.pi      # the draws span the range
        assert torch.allclose(theta, (2 * u[0] - 1) * r * math.pi)
    mag = (complex_scale(z, u[1], v[1], 0.0, magnitude_range=4.0) / z)[:, 0, 0, 0].abs()
    assert mag.min() >= 0.25 - 1e-12 and mag.max() <= 4.0 + 1e-12 and mag.max() > 3.0


@pytest.mark.parametrize("settings", ["paper", "reference_code"])
@pytest.mark.parametrize("kind,enc,params", [("type_i", "lab", 24241), ("type_e", "sliding", 23697),
                                             ("dcn", "lab", 68266), ("real", "sliding", 34426)])
def test_model_sizes_match_table_1_setup(kind, enc, params, settings):
    import components
    from tasks.common import count_parameters
    from tasks.complex_classification.train import build_model

    cfg = SPEC.resolve({"model.type": kind, "data.encoding": enc, "model.cds_settings": settings})
    channels = components.build("encoding", enc).channels
    model = build_model(cfg, channels, 10, 32)
    assert channels == 2 and count_parameters(model) == params
    rgb = build_model(cfg, 3, 10, 32)
    z = torch.randn(2, 3, 32, 32, dtype=torch.complex64)
    assert rgb(z).shape == (2, 10)


def _tiny(**over):
    return SPEC.resolve({**SPEC.smoke, "data.train_limit": 96, "data.test_limit": 64, "data.val_fraction": 0.05,
                         "train.batch_size": 32, "train.epochs": 2, **over})


def test_short_run_is_deterministic():
    cfg = _tiny(**{"model.type": "dcn", "data.encoding": "sliding", "seed": 3})
    r1, r2 = LocalReporter(echo=lambda s: None), LocalReporter(echo=lambda s: None)
    m1, m2 = run_trial(TASK, cfg, r1), run_trial(TASK, cfg, r2)
    strip = lambda h: {k: v for k, v in h.items() if k != "epoch_seconds"}
    assert [strip(h) for h in r1.history] == [strip(h) for h in r2.history]
    assert len(r1.history) == 2 and set(rotation_metric_names()) <= set(m1)
    assert "acc_rot_0" not in r1.history[0]                 # robustness only after the last epoch
    assert m1["acc_rot_0"] == m1["test_acc"]                # range 0 is the clean input exactly
    assert r1.info["n_train"] == 96 and r1.info["n_test"] == 64 and r1.info["in_channels"] == 2
    other = run_trial(TASK, {**cfg, "seed": 4}, LocalReporter(echo=lambda s: None))
    assert other["train_loss"] != m1["train_loss"]


def test_mstar_run_type_i_is_rotation_invariant(tmp_path):
    _mstar_folders(tmp_path, size=16, per_class=(8, 6))
    cfg = SPEC.resolve({**SPEC.smoke, "data.name": "mstar", "data.root": str(tmp_path), "model.type": "type_i",
                        "model.relative_eps": True, "train.batch_size": 8, "train.epochs": 2,
                        "eval.magnitude_range": 10.0, "eval.repeats": 2})
    rep = LocalReporter(echo=lambda s: None)
    out = run_trial(TASK, cfg, rep)
    assert rep.info["in_channels"] == 1 and rep.info["input_size"] == 16 and rep.info["num_classes"] == 3
    accs = [out[m] for m in rotation_metric_names()]
    assert len(ROTATIONS) == 5 and max(accs) - min(accs) == 0.0 and out["rot_drop"] == 0.0


def _train_digits(kind: str, epochs: int = 12):
    cfg = SPEC.resolve({"model.type": kind, "data.encoding": "lab", "train.epochs": epochs,
                        "train.batch_size": 64, "data.val_fraction": 0.0, "seed": 0})
    return run_trial(TASK, cfg, LocalReporter(echo=lambda s: None))


@pytest.mark.slow
def test_cds_models_flat_under_rotation_dcn_drops():
    """Acceptance: on digits (LAB), Type I and Type E accuracy stays within 0.5 points across
    rotation ranges 0..pi (|s| = 1, as Fig. 8), while DCN's drops."""
    res = {k: _train_digits(k) for k in ("type_i", "type_e", "dcn")}
    names = rotation_metric_names()
    for k, out in res.items():
        print(k, {n: round(out[n], 2) for n in names})
    for k in ("type_i", "type_e"):
        accs = [res[k][n] for n in names]
        assert max(accs) - min(accs) <= 0.5, (k, accs)
        assert res[k]["test_acc"] > 50.0, (k, res[k]["test_acc"])     # learned (chance: 10)
    dcn = res["dcn"]
    assert dcn["acc_rot_0"] > 80.0
    assert dcn["acc_rot_0"] - dcn["acc_rot_1pi"] > 10.0, dcn


# ---------------------------------------------------------------- what the seed controls
def test_model_type_cells_of_one_seed_share_split_and_batches():
    from tasks.complex_classification.data import SPLIT_SEED, data_order

    from ._pairing import assert_paired

    a = _tiny(**{"model.type": "type_i", "data.encoding": "lab", "seed": 2, "eval.robustness": False})
    b = _tiny(**{"model.type": "dcn", "data.encoding": "lab", "seed": 2, "eval.robustness": False})
    reps = assert_paired(TASK, a, b, data_order)
    order = data_order(a)
    perm = torch.randperm(1437, generator=torch.Generator().manual_seed(SPLIT_SEED)).numpy()
    n_val = round(0.05 * 1437)
    assert np.array_equal(order.split["val"], perm[1437 - n_val:]) and np.array_equal(order.split["train"], perm[:96])
    assert reps["a"].info["n_val"] == n_val and reps["b"].info["n_train"] == len(order.split["train"]) == 96
