"""Digits classification: CDLinear vs dense MLP (CDLinear paper, Sec. VI).

Paper: "Communication Dynamics Neural Networks: FFT-Diagonalized Layers"
(shared/seeds/004_ac4f87fd0ce9e956.txt), Sec. VI.1 and Table 1.

* Data: sklearn.datasets.load_digits (8×8, 1797 images), stratified
  train_test_split(test_size=0.2, random_state=0) → 1437 train / 360 test,
  fixed across seeds (seeds are replicates of the model, not of the split);
  inputs standardised with the training set's mean and std.
* Model: 64 → hidden → hidden → 10 with ReLU, each linear a ``linear``
  component (the slot ``model.linear``: dense, cdlinear, or any registered
  ``linear`` component, built with in_features / out_features and its own
  ``model.linear.<argument>`` keys).  When 10 is not a multiple of B the last
  layer pads its output to the next multiple (12 for B = 4, 16 for B = 8) and
  the logits are sliced to 10: the paper's counts 8,970 / 2,380 / 1,296 follow.
* Dropout α (Sec. IV.1, Eq. 7) after each hidden activation; Fisher
  regulariser λ_F·tr(I⁻¹) (Eq. 8) optional.
* Optimiser: SGD, momentum 0.9, lr 0.1, batch 64, 25 epochs.
* Metrics: test_acc (percent), train_loss, hessian_kappa after the last epoch
  (Table 1's κ, Sec. VI.1 definition; defined for dense and CDLinear layers,
  so a model with another linear component reports it as not applicable: the
  run's tag ``ablate.hessian_kappa`` says why), and, when data.val_fraction > 0,
  a validation accuracy carved out of the training set (for tuning nuisance
  axes without looking at the test set).

What the seed controls: the weight initialisation (stream "model" of
tasks.common.stream_seed, torch's global RNG reseeded right before the model is
built), the order of the training batches (stream "batches", its own CPU
generator, checkpointed by fit) and the dropout masks (the global RNG,
continuing after the init).  The train/val/test split is not random per seed:
it is the fixed random_state=0 split, the same for every seed and cell; there
is no augmentation.  So for one seed every cell that shares ``data.*`` and
``train.batch_size`` (dense or cdlinear, any B, width, dropout or λ_F) sees the
same split and the same batches in the same order, and only the init and the
dropout draws depend on the model.  ``data_order(cfg)`` returns them.

Top level stays import-light (see tasks/schema.py); torch is imported in run().
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .schema import Param, Slot, TaskSpec

N_IN, N_CLASSES = 64, 10


def _check(cfg: Dict[str, Any]) -> List[Tuple[str, str]]:
    errs = []
    if cfg.get("model.linear") == "cdlinear":
        b, h = cfg["model.block_size"], cfg["model.hidden"]
        widths = {"input (64)": N_IN, f"model.hidden ({h})": h}
        bad = [w for w, n in widths.items() if n % b]
        if bad:
            ok = [d for d in range(1, 65) if N_IN % d == 0 and h % d == 0]
            errs.append(("model.block_size",
                         f"block size {b} must divide the layer widths {', '.join(bad)}; "
                         f"allowed with model.hidden={h}: {ok}"))
    if cfg.get("optim.fisher", 0.0) > 0 and cfg.get("model.linear") != "cdlinear":
        errs.append(("optim.fisher", "the Fisher regulariser (Eq. 8) needs model.linear=cdlinear"))
    return errs


SPEC = TaskSpec(
    name="digits",
    description="sklearn digits, MLP 64→h→h→10 with dense or CDLinear layers",
    paper="CDLinear paper (004), Sec. VI, Table 1",
    params={
        "model.linear": Param(str, "dense", "linear component", choices=("dense", "cdlinear")),
        "model.block_size": Param(int, 4, "CDLinear block size B", low=1, high=64,
                                  when={"model.linear": ("cdlinear",)}),
        "model.hidden": Param(int, 64, "hidden width", low=1, high=4096),
        "model.dropout": Param(float, 0.0, "dropout rate α after each hidden layer (Eq. 7)", low=0.0, high=0.95),
        "optim.lr": Param(float, 0.1, "SGD learning rate", low=1e-8, high=10.0),
        "optim.momentum": Param(float, 0.9, "SGD momentum", low=0.0, high=0.999),
        "optim.weight_decay": Param(float, 0.0, "L2 weight decay", low=0.0, high=1.0),
        "optim.fisher": Param(float, 0.0, "λ_F of the Fisher regulariser (Eq. 8)", low=0.0, high=1.0),
        "train.epochs": Param(int, 25, "epochs", low=1, high=10000),
        "train.batch_size": Param(int, 64, "mini-batch size", low=1, high=1437),
        "data.train_limit": Param(int, 0, "use only the first N training rows (0 = all)", low=0, high=1437),
        "data.val_fraction": Param(float, 0.0, "fraction of training rows held out as validation",
                                   low=0.0, high=0.5),
    },
    metrics={"test_acc": "max", "train_loss": "min", "val_acc": "max", "epoch_seconds": "min",
             "hessian_kappa": "min"},
    run="tasks.digits:run",
    check=_check,
    smoke={"train.epochs": 2, "data.train_limit": 400},
    slots=(Slot("model.linear", "linear",
                "(in_features, out_features) -> forward(x: (N, in_features)) -> (N, out_features); three layers "
                "64 -> h -> h -> 10 (padded to a multiple of model.block_size for cdlinear)",
                passes=("in_features", "out_features"), task_args=(("block_size", "model.block_size"),),
                probe="tasks.digits:linear_probes"),),
)


SPLIT_FIXED = "sklearn train_test_split(stratify=y, random_state=0): the same split for every seed and cell"


def split_indices(val_fraction: float = 0.0, train_limit: int = 0) -> Dict[str, Any]:
    """Rows of load_digits() in each part: {"train", "val", "test"} → int64 arrays.

    Fixed across seeds (random_state=0 in both stratified splits); splitting the
    row numbers gives exactly the partition that splitting the images would.
    """
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    y = load_digits().target
    rows = np.arange(len(y))
    tr, te = train_test_split(rows, test_size=0.2, stratify=y, random_state=0)
    va = tr[:0]
    if val_fraction > 0:
        tr, va = train_test_split(tr, test_size=val_fraction, stratify=y[tr], random_state=0)
    if train_limit:
        tr = tr[:train_limit]
    return {"train": tr, "val": va, "test": te}


def load_data(val_fraction: float = 0.0, train_limit: int = 0):
    """Standardised float32 tensors (x_tr, y_tr, x_val, y_val, x_te, y_te)."""
    import numpy as np
    import torch
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    part = split_indices(val_fraction, train_limit)
    x_tr, x_val, x_te = (x[part[k]] for k in ("train", "val", "test"))
    y_tr, y_val, y_te = (y[part[k]] for k in ("train", "val", "test"))
    scaler = StandardScaler().fit(x_tr)
    t = lambda a: torch.as_tensor(scaler.transform(a) if a.size else a.reshape(0, 64), dtype=torch.float32)
    lab = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)
    return t(x_tr), lab(y_tr), t(x_val), lab(y_val), t(x_te), lab(y_te)


def data_order(cfg: Dict[str, Any], epochs: int = 1):
    """The split and the first ``epochs`` epochs' batches a trial of ``cfg`` uses
    (tasks.datasets.DataOrder); depends on ``seed`` and ``data.*`` / ``train.*``, never on ``model.*``."""
    from .datasets import DataOrder, data_generator, epoch_batches

    split = split_indices(cfg["data.val_fraction"], cfg["data.train_limit"])
    gen = data_generator(int(cfg["seed"]), "batches")
    order = epoch_batches(len(split["train"]), cfg["train.batch_size"], gen, epochs)
    return DataOrder(split, order, {"batches": gen.get_state()}, {"split": SPLIT_FIXED})


def _widths(cfg: Dict[str, Any]) -> List[Tuple[int, int]]:
    """(in, out) of the three linear layers: 64 → h → h → 10 padded to a multiple of B for cdlinear."""
    h = cfg["model.hidden"]
    b = cfg.get("model.block_size", 1) if cfg["model.linear"] == "cdlinear" else 1
    return [(N_IN, h), (h, h), (h, -(-N_CLASSES // b) * b)]


def linear_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The slot's calls in the model of ``cfg``, on a batch of 4 random rows (the pre-flight runs them)."""
    import torch

    own = SPEC.slot_kwargs(cfg, "model.linear")
    return [{"kwargs": {"in_features": i, "out_features": o, **own}, "inputs": (torch.randn(4, i),),
             "out_shape": (4, o)} for i, o in _widths(cfg)]


def build_model(cfg: Dict[str, Any]):
    """nn.Sequential MLP whose linear layers come from the ``linear`` registry (the ``model.linear`` slot)."""
    from torch import nn

    import components

    name = cfg["model.linear"]
    own = SPEC.slot_kwargs(cfg, "model.linear")
    (_, h), _, (_, n_out) = _widths(cfg)
    lin = lambda i, o: components.build("linear", name, in_features=i, out_features=o, **own)
    alpha = cfg["model.dropout"]
    drop = lambda: components.build("dropout", "shannon", p=alpha) if alpha > 0 else nn.Identity()
    return nn.Sequential(lin(N_IN, h), nn.ReLU(), drop(), lin(h, h), nn.ReLU(), drop(), lin(h, n_out))


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    import torch
    import torch.nn.functional as F

    from .common import batches, count_parameters, fit, setup_runtime, stream_seed
    from .datasets import data_generator

    device = setup_runtime(cfg)
    seed = int(cfg["seed"])
    x_tr, y_tr, x_val, y_val, x_te, y_te = [t.to(device) for t in load_data(
        cfg["data.val_fraction"], cfg["data.train_limit"])]
    # Init from the model stream; dropout then continues on torch's global RNG.
    torch.manual_seed(stream_seed(seed, "model"))
    model = build_model(cfg).to(device)
    reporter.annotate(n_params=count_parameters(model), n_train=len(x_tr), n_test=len(x_te),
                      data_source="sklearn.datasets.load_digits")
    opt = torch.optim.SGD(model.parameters(), lr=cfg["optim.lr"], momentum=cfg["optim.momentum"],
                          weight_decay=cfg["optim.weight_decay"])
    gen = data_generator(seed, "batches")   # the batch order: the same for every model of this seed
    fisher = cfg["optim.fisher"]
    if fisher:
        from components.circulant_extras import fisher_penalty

    def train_epoch(epoch: int) -> Dict[str, float]:
        model.train()
        total, n = 0.0, 0
        for idx in batches(len(x_tr), cfg["train.batch_size"], gen):
            idx = idx.to(device)
            logits = model(x_tr[idx])[:, :N_CLASSES]
            loss = F.cross_entropy(logits, y_tr[idx])
            obj = loss + fisher * fisher_penalty(model) if fisher else loss
            opt.zero_grad(set_to_none=True)
            obj.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        return {"train_loss": total / max(n, 1)}

    @torch.no_grad()
    def accuracy(x, y) -> float:
        model.eval()
        return 100.0 * (model(x)[:, :N_CLASSES].argmax(1) == y).float().mean().item()

    def evaluate(epoch: int) -> Dict[str, float]:
        out = {"test_acc": accuracy(x_te, y_te)}
        if len(x_val):
            out["val_acc"] = accuracy(x_val, y_val)
        if epoch + 1 == cfg["train.epochs"]:
            kappa = hessian_kappa()
            if kappa is not None:
                out["hessian_kappa"] = kappa
        return out

    def hessian_kappa() -> Optional[float]:
        """Sec. VI.1 / Table 1: κ averaged over weight layers: σ²_max/σ²_min of W
        (dense) or, for CDLinear, "the FFT-diagonal eigenvalues of Theorem 1",
        i.e. Eq. (5)'s Σ_n |F[X_nj](k)|² on that layer's training inputs
        (exact=False).  The exact spectrum (exact=True) couples input blocks and
        is singular as soon as a hidden ReLU unit is dead, giving κ = ∞.
        Defined only for those two layer types: another component gets None and
        the reason as the run's tag ``ablate.hessian_kappa``."""
        from components.circulant import CDLinear
        from components.circulant_extras import condition_number

        model.eval()
        vals, h = [], x_tr
        with torch.no_grad():
            for layer in model:
                if isinstance(layer, (CDLinear, torch.nn.Linear)):
                    vals.append(condition_number(layer, h, exact=False))
                h = layer(h)
        if not vals:
            reporter.annotate(hessian_kappa=f"not applicable: defined for dense and cdlinear layers, not "
                                            f"{cfg['model.linear']!r}")
            return None
        return float(sum(vals) / len(vals))

    return fit(model=model, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, generator=gen)
