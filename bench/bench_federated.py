"""Federated against centralised training of the same model on the same data, same run.

A 4-class task (12 features, classes that overlap, 6,000 rows) is trained three ways
with the tabular classifier's network (12 -> 64 -> 4, AdamW, batch 32, lr 1e-2):

- centralised: `tabular.train`, `rounds x local_epochs` epochs over all training rows;
- FedAvg: 10 simulated clients (iid shares), `rounds` rounds of `local_epochs` local
  epochs each, through modelhub's worker (Flower's simulation on a local Ray);
- non-IID: Dirichlet(0.3) label skew over the same 10 clients, FedAvg against FedProx
  (proximal_mu 0.1).

All measure accuracy on the same held-out validation rows (the spec's seed and
validation_split pick them). Goal: FedAvg on iid shares reaches at least 95 % of the
centralised accuracy. Medians over `--repeats` seeds; every figure of a repeat comes
from the same seed, so a repeat compares like with like.

    python bench/bench_federated.py [--repeats 3] [--rounds 5] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import emit, isolate_from_user_env, log, median, rounded

FEATURES, CLASSES, HIDDEN, BATCH, LR = 16, 10, [64], 32, 1e-2
CLIENTS, ALPHA, MU = 10, 0.3, 0.1


def make_dataset(path: Path, rows: int, seed: int) -> None:
    """Four Gaussian classes whose centres sit close enough to overlap (accuracy < 1)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=0.9, size=(CLASSES, FEATURES))
    labels = rng.integers(0, CLASSES, size=rows)
    x = centres[labels] + rng.normal(size=(rows, FEATURES))
    header = ",".join([f"f{i}" for i in range(FEATURES)] + ["label"])
    lines = [",".join(f"{v:.5f}" for v in row) + f",{c}" for row, c in zip(x, labels, strict=True)]
    path.write_text(header + "\n" + "\n".join(lines) + "\n")


def hyperparameters(epochs: int) -> dict[str, Any]:
    return {"epochs": epochs, "batch_size": BATCH, "hidden": HIDDEN, "learning_rate": LR}


def centralised(data: Path, work: Path, epochs: int, seed: int) -> tuple[float, float]:
    from modelhub.training.context import LocalContext
    from modelhub.training.trainers import tabular

    ctx = LocalContext(
        run_dir=Path(tempfile.mkdtemp(dir=work)),
        hyperparameters=hyperparameters(epochs),
        datasets={"d": data},
        seed=seed,
    )
    start = time.perf_counter()
    result = tabular.train(ctx)
    ctx.close()
    return result.metrics["val_accuracy"], time.perf_counter() - start


def federated(
    data: Path, work: Path, seed: int, rounds: int, local_epochs: int, strategy: str, partition: str
) -> tuple[float, float]:
    """One run through `python -m modelhub.training.worker`, as the scheduler starts it."""
    from modelhub.training.context import LocalContext

    ctx = LocalContext(
        run_dir=Path(tempfile.mkdtemp(dir=work)),
        hyperparameters=hyperparameters(1),
        datasets={"d": data},
        seed=seed,
    )
    spec = {
        "clients": CLIENTS,
        "rounds": rounds,
        "local_epochs": local_epochs,
        "strategy": strategy,
        "proximal_mu": MU,
        "fraction_evaluate": 0.0,
    }
    job = ctx.write_job(
        trainer="tabular_classifier",
        run_id=0,
        threads=os.cpu_count() or 1,
        federated=spec,
        partitioning={"partition": partition},
    )
    start = time.perf_counter()
    with open(ctx.run_dir / "logs.txt", "wb") as out:
        subprocess.run(
            [sys.executable, "-m", "modelhub.training.worker", str(job)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            check=False,
            env={**os.environ, "MODELHUB_WORKER_PARENT": str(os.getpid())},
        )
    elapsed = time.perf_counter() - start
    result = json.loads((ctx.run_dir / "result.json").read_text())
    if "metrics" not in result:
        raise RuntimeError(f"federated run failed: {result.get('error')}")
    return float(result["metrics"]["val_accuracy"]), elapsed


def run_one(
    name: str, data: Path, work: Path, seed: int, rounds: int, local_epochs: int
) -> tuple[float, float]:
    if name == "central":
        return centralised(data, work, rounds * local_epochs, seed)
    strategy = "fedprox" if name.endswith("fedprox") else "fedavg"
    partition = f"dirichlet({ALPHA})" if name.startswith("noniid") else "iid"
    return federated(data, work, seed, rounds, local_epochs, strategy, partition)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--local-epochs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--quick", action="store_true", help="one repeat, 2 rounds, 2,000 rows")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.rounds, args.rows = 1, 2, 2000
    isolate_from_user_env()
    import torch

    torch.set_num_threads(1)
    epochs = args.rounds * args.local_epochs
    figures: dict[str, list[float]] = {
        k: [] for k in ("central", "fedavg", "noniid_fedavg", "noniid_fedprox")
    }
    seconds: dict[str, list[float]] = {k: [] for k in figures}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for seed in range(args.repeats):
            data = work / f"data-{seed}.csv"
            make_dataset(data, args.rows, seed)
            for name in figures:
                accuracy, took = run_one(name, data, work, seed, args.rounds, args.local_epochs)
                figures[name].append(accuracy)
                seconds[name].append(took)
                log(f"seed {seed} {name}: val_accuracy {accuracy:.4f} in {took:.1f}s")
    central, fedavg = median(figures["central"]), median(figures["fedavg"])
    ratio = fedavg / central
    emit(
        {
            "bench": "federated",
            "centralised_val_accuracy": rounded(central, 4),
            "fedavg_iid_val_accuracy": rounded(fedavg, 4),
            "ratio": rounded(ratio, 4),
            "goal_ratio": 0.95,
            "goal_met": ratio >= 0.95,
            "noniid_dirichlet_alpha": ALPHA,
            "noniid_fedavg_val_accuracy": rounded(median(figures["noniid_fedavg"]), 4),
            "noniid_fedprox_val_accuracy": rounded(median(figures["noniid_fedprox"]), 4),
            "proximal_mu": MU,
            "clients": CLIENTS,
            "rounds": args.rounds,
            "local_epochs": args.local_epochs,
            "centralised_epochs": epochs,
            "rows": args.rows,
            "repeats": args.repeats,
            "median_seconds": {k: rounded(median(v), 2) for k, v in seconds.items()},
            "per_repeat": {k: [rounded(v, 4) for v in vs] for k, vs in figures.items()},
            "ray_cpus": os.cpu_count(),
        }
    )


if __name__ == "__main__":
    main()
