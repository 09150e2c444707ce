"""A plain training script that knows nothing of ablate: scikit-learn's SGD classifier on the digits bundled
with scikit-learn (offline), a 2 x 2 grid (loss: hinge | log_loss, alpha: 1e-4 | 0.1) x 5 seeds, each seed
its own stratified train/test split and shuffling.  It logs the way most scripts do, ``mlflow.log_param`` and
``mlflow.log_metric`` (test accuracy after every epoch), or writes one CSV row per run.  README, "Already have
runs?", reads both with ``ablate table --experiment`` / ``--csv``.

    python docs/examples/log_runs.py --tracking-uri sqlite:///mlruns.db     # MLflow experiment "digits_sgd"
    python docs/examples/log_runs.py --csv docs/examples/runs.csv            # the same runs, one CSV row each
"""
from __future__ import annotations

import argparse
import csv
import itertools

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

GRID = {"loss": ["hinge", "log_loss"], "alpha": [0.0001, 0.1]}


def train(loss: str, alpha: float, seed: int, epochs: int):
    """Test accuracy after each epoch."""
    x, y = load_digits(return_X_y=True)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, stratify=y, random_state=seed)
    scaler = StandardScaler().fit(xtr)
    xtr, xte = scaler.transform(xtr), scaler.transform(xte)
    clf, rng = SGDClassifier(loss=loss, alpha=alpha, random_state=seed), np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(xtr))
        clf.partial_fit(xtr[order], ytr[order], classes=np.arange(10))
        yield float(clf.score(xte, yte))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tracking-uri", help="log to this MLflow store")
    p.add_argument("--experiment", default="digits_sgd", help="MLflow experiment (default: digits_sgd)")
    p.add_argument("--csv", help="write one row per run to this CSV file instead")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args()
    if bool(args.tracking_uri) == bool(args.csv):
        p.error("give --tracking-uri or --csv")
    rows = []
    if args.tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(args.tracking_uri)
        mlflow.set_experiment(args.experiment)
    for (loss, alpha), seed in itertools.product(itertools.product(*GRID.values()), range(args.seeds)):
        if args.csv:
            acc = list(train(loss, alpha, seed, args.epochs))
            rows.append({"loss": loss, "alpha": alpha, "seed": seed, "test_acc": acc[-1]})
            continue
        with mlflow.start_run(run_name=f"{loss}-{alpha}-seed{seed}"):
            mlflow.log_params({"loss": loss, "alpha": alpha, "seed": seed})
            for epoch, acc in enumerate(train(loss, alpha, seed, args.epochs)):
                mlflow.log_metric("test_acc", acc, step=epoch)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
