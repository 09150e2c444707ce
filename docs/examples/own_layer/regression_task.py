"""Your own task: a small regression task on scikit-learn's diabetes data (442 patients, 10 features, offline),
registered from this file with ``tasks.register_task`` (README, "Your own task").

The model is an MLP 10 → hidden → 1 whose two linear layers fill the slot ``model.linear`` (kind ``linear``),
so every ``linear`` component fits: dense, cdlinear (block size 1 or 2 divides 10), or the low-rank layer of
lowrank.py.  The metric is the test mean squared error (lower is better) on a fixed 25 % split, on
standardised targets; the seed sets the initialisation and the batch order.
"""
from typing import Any, Dict, List

from tasks import register_task
from tasks.schema import Param, Slot, TaskSpec

N_IN = 10


def _widths(cfg: Dict[str, Any]):
    return [(N_IN, cfg["model.hidden"]), (cfg["model.hidden"], 1)]


def linear_probes(cfg: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The slot's calls (constructor arguments, a random input, the output shape) for the pre-flight."""
    import torch

    own = SPEC.slot_kwargs(cfg, "model.linear")          # the component's own model.linear.<argument> keys
    return [{"kwargs": {"in_features": i, "out_features": o, **own}, "inputs": (torch.randn(4, i),),
             "out_shape": (4, o)} for i, o in _widths(cfg)]


def run(cfg: Dict[str, Any], reporter) -> Dict[str, float]:
    import torch
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    import components
    from tasks.common import batches, count_parameters, fit, setup_runtime, stream_seed
    from tasks.datasets import data_generator

    device = setup_runtime(cfg)
    x, y = load_diabetes(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=0)
    sx, sy = StandardScaler().fit(x_tr), StandardScaler().fit(y_tr.reshape(-1, 1))
    t = lambda a: torch.as_tensor(a, dtype=torch.float32, device=device)
    x_tr, x_te = t(sx.transform(x_tr)), t(sx.transform(x_te))
    y_tr, y_te = t(sy.transform(y_tr.reshape(-1, 1))), t(sy.transform(y_te.reshape(-1, 1)))

    torch.manual_seed(stream_seed(int(cfg["seed"]), "model"))
    own = SPEC.slot_kwargs(cfg, "model.linear")
    layers = [components.build("linear", cfg["model.linear"], in_features=i, out_features=o, **own)
              for i, o in _widths(cfg)]
    model = torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1]).to(device)
    reporter.annotate(n_params=count_parameters(model), n_train=len(x_tr), n_test=len(x_te),
                      data_source="sklearn.datasets.load_diabetes")
    opt = torch.optim.Adam(model.parameters(), lr=cfg["optim.lr"])
    gen = data_generator(int(cfg["seed"]), "batches")

    def train_epoch(epoch: int) -> Dict[str, float]:
        model.train()
        total = 0.0
        for idx in batches(len(x_tr), cfg["train.batch_size"], gen):
            loss = torch.nn.functional.mse_loss(model(x_tr[idx.to(device)]), y_tr[idx.to(device)])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss) * len(idx)
        return {"train_loss": total / len(x_tr)}

    @torch.no_grad()
    def evaluate(epoch: int) -> Dict[str, float]:
        model.eval()
        return {"test_mse": float(torch.nn.functional.mse_loss(model(x_te), y_te))}

    return fit(model=model, optimizer=opt, epochs=cfg["train.epochs"], train_epoch=train_epoch,
               evaluate=evaluate, reporter=reporter, generator=gen)


SPEC = register_task(TaskSpec(
    name="diabetes",
    description="regression on sklearn's diabetes data, MLP 10 -> hidden -> 1 with a linear slot",
    paper="none (an example of your own task)",
    params={
        "model.linear": Param(str, "dense", "linear component", choices=("dense", "cdlinear")),
        "model.hidden": Param(int, 32, "hidden width", low=1, high=1024),
        "optim.lr": Param(float, 1e-2, "Adam learning rate", low=1e-6, high=1.0),
        "train.epochs": Param(int, 30, "epochs", low=1, high=10000),
        "train.batch_size": Param(int, 32, "mini-batch size", low=1, high=331),
    },
    metrics={"test_mse": "min", "train_loss": "min"},
    run=run,
    smoke={"train.epochs": 3},
    slots=(Slot("model.linear", "linear", "(in_features, out_features) -> forward(x: (N, in)) -> (N, out); "
                                          "two layers 10 -> hidden -> 1",
                passes=("in_features", "out_features"), probe=f"{__name__}:linear_probes"),),
))
