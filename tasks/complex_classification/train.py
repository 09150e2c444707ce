"""Training and evaluation of the complex_classification task (see the package docstring)."""
from __future__ import annotations

from typing import Any, Dict

import torch
import torch.nn.functional as F

import components

from ..common import batches, count_parameters, fit, setup_runtime, stream_seed
from ..datasets import data_generator
from .data import complex_scale, load, scaling_draws
from .presets import effective
from .rotations import ROT_SEED, ROTATIONS, rotation_metric

EVAL_BATCH = 1024


def build_model(cfg: Dict[str, Any], in_channels: int, num_classes: int, input_size: int):
    """The ``complex_model`` component named by model.type, with the config's options
    (the settings of presets.py as they resolve for this config)."""
    return components.build("complex_model", cfg["model.type"],
                            **model_kwargs(cfg, in_channels, num_classes, input_size))


def model_kwargs(cfg: Dict[str, Any], in_channels: int, num_classes: int, input_size: int) -> Dict[str, Any]:
    """The constructor arguments of the model.type component (the pre-flight's probe uses them too)."""
    kind, settings = cfg["model.type"], effective(cfg)
    kw: Dict[str, Any] = {"in_channels": in_channels, "num_classes": num_classes, "input_size": input_size}
    if kind not in ("type_i", "type_e", "dcn", "real"):         # a researcher's own complex_model component
        from tasks import get_task

        return {**kw, **get_task("complex_classification").slot_kwargs(cfg, "model.type")}
    if kind in ("type_i", "type_e"):
        kw.update(metric=cfg["model.metric"], init=settings["model.init"],
                  omega_constraint=settings["model.omega_constraint"])
    if kind == "type_i":
        kw["relative_eps"] = cfg["model.relative_eps"]
    if kind == "type_e":
        kw["prototype_scale"] = settings["model.prototype_scale"]
    if kind != "real":
        kw["gauss"] = cfg["model.gauss"]
    return kw


def adamw_betas(cfg: Dict[str, Any]) -> tuple:
    """(beta1, beta2): beta1 from optim.beta1 or model.cds_settings (presets.py)."""
    return effective(cfg)["optim.beta1"], cfg["optim.beta2"]


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    device = setup_runtime(cfg)
    data = load(cfg)
    x_tr, y_tr, x_va, y_va, x_te, y_te = (t.to(device) for t in (
        data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test))
    encode = data.encoder.to(device)
    seed = int(cfg["seed"])
    torch.manual_seed(stream_seed(seed, "model"))   # the init, from the model stream only
    model = build_model(cfg, encode.channels, data.num_classes, data.input_size).to(device)
    settings = ", ".join(f"{k}={v}" for k, v in effective(cfg).items())   # what ran, not "unset"
    reporter.annotate(n_params=count_parameters(model), n_train=len(x_tr), n_val=len(x_va), n_test=len(x_te),
                      in_channels=encode.channels, input_size=data.input_size, num_classes=data.num_classes,
                      data_source=data.source, effective_settings=settings)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["optim.lr"], weight_decay=cfg["optim.weight_decay"],
                            betas=adamw_betas(cfg))
    gen = data_generator(seed, "batches")   # the batch order: the same for every model of this seed
    best = {"val_acc": -1.0, "test_acc": float("nan")}
    epochs = cfg["train.epochs"]

    def train_epoch(epoch: int) -> Dict[str, float]:
        model.train()
        total, n = 0.0, 0
        for idx in batches(len(x_tr), cfg["train.batch_size"], gen):
            idx = idx.to(device)
            loss = F.cross_entropy(model(encode(x_tr[idx])), y_tr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        return {"train_loss": total / max(n, 1)}

    @torch.no_grad()
    def accuracy(x, y, rotation: float = 0.0, u=None, v=None) -> float:
        model.eval()
        correct = 0
        for i in range(0, len(x), EVAL_BATCH):
            z = encode(x[i:i + EVAL_BATCH])
            if u is not None:
                z = complex_scale(z, u[i:i + EVAL_BATCH], v[i:i + EVAL_BATCH], rotation,
                                  cfg["eval.magnitude_range"])
            correct += (model(z).argmax(1) == y[i:i + EVAL_BATCH]).sum().item()
        return 100.0 * correct / max(len(x), 1)

    def robustness() -> Dict[str, float]:
        us, vs = scaling_draws(len(x_te), cfg["eval.repeats"], ROT_SEED)
        out = {rotation_metric(r): sum(accuracy(x_te, y_te, r, u, v) for u, v in zip(us, vs)) / len(us)
               for r in ROTATIONS}
        out["rot_drop"] = out[rotation_metric(0.0)] - min(out.values())
        return out

    def evaluate(epoch: int) -> Dict[str, float]:
        out = {"test_acc": accuracy(x_te, y_te)}
        if len(x_va):
            out["val_acc"] = accuracy(x_va, y_va)
            if out["val_acc"] > best["val_acc"]:
                best.update(val_acc=out["val_acc"], test_acc=out["test_acc"])
            out["test_acc_best_val"] = best["test_acc"]
        if cfg["eval.robustness"] and epoch == epochs - 1:
            out.update(robustness())
        return out

    return fit(model=model, optimizer=opt, epochs=epochs, train_epoch=train_epoch, evaluate=evaluate,
               reporter=reporter, generator=gen, extra_state=best)
