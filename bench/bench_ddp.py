"""DDP with N workers (default 2) against 1 worker: wall time and final validation loss.

Both train the tabular MLP on the same CSV for the same epochs, as a run does: the
reference is one training worker process (`python -m modelhub.training.worker JOB`);
the DDP side is the launcher (`python -m modelhub.training.launcher JOB`), which starts
N workers (torch.multiprocessing), each training on its shard. The global batch is the same
(each rank takes batch/N), so both take the same optimizer steps and the losses are
comparable. Every worker, the reference included, trains on one thread (a worker's
`resources.cpus: 1`): the question is what N such workers buy over one. (Giving the
reference N threads instead measures the machine's load more than DDP: on a shared
host, intra-op threads that wait on each other slow down far more than processes.)

Per repeat (interleaved, each repeat its own seed): end-to-end wall time (process start
to exit: interpreter, torch import, rendezvous, reading the CSV), the training time
(from the first logged loss window to the last: the same steps on both sides, epoch
validation included) and the final validation loss. Out: medians, the speed-ups, and
whether the DDP loss matches the reference's within the noise the repeats show (the
spread of each side's losses over the seeds).

    python bench/bench_ddp.py [--workers 2] [--backend gloo|nccl] [--hidden 256,256]
                              [--repeats 3] [--quick]

With `--backend nccl` both sides train on GPUs (the reference on one, each rank on its
own); fewer visible GPUs than workers gives a line that says so instead of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import REPO_ROOT, emit, isolate_from_user_env, log, median

FEATURES = 20


def make_dataset(path: Path, rows: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, FEATURES))
    y = (x @ rng.normal(size=FEATURES) + 0.5 * rng.normal(size=rows) > 0).astype(int)
    header = ",".join([f"f{i}" for i in range(FEATURES)] + ["label"])
    lines = [
        ",".join(f"{v:.6f}" for v in row) + f",{label}" for row, label in zip(x, y, strict=True)
    ]
    path.write_text(header + "\n" + "\n".join(lines) + "\n")


def write_job(run_dir: Path, data: Path, args: argparse.Namespace, seed: int, workers: int) -> Path:
    from modelhub.training.context import LocalContext

    hp = {
        "epochs": args.epochs,
        "batch_size": args.batch // workers,
        "hidden": args.hidden,
        "log_every": 50,
    }
    gpu = args.backend == "nccl"
    ctx = LocalContext(
        run_dir=run_dir,
        hyperparameters=hp,
        datasets={"data": data},
        seed=seed,
        device="cuda" if gpu else "cpu",
        keep_checkpoints=1,
    )
    extra: dict[str, Any] = {
        "trainer": "tabular_classifier",
        "run_id": f"bench-{seed}-{workers}",
        "threads": 1,
        "gpus": list(range(workers)) if gpu else [],
    }
    if workers > 1:
        extra["distributed"] = {"workers": workers, "backend": args.backend}
    return ctx.write_job(**extra)


def train(job: Path, workers: int) -> dict[str, float]:
    """Run one job to its end; its wall time, training time and final validation loss."""
    module = "modelhub.training.launcher" if workers > 1 else "modelhub.training.worker"
    log_file = job.parent / "logs.txt"
    start = time.perf_counter()
    with open(log_file, "wb") as out:
        code = subprocess.run(
            [sys.executable, "-m", module, str(job)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            start_new_session=True,
        ).returncode
    wall = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"{module} exited with {code}; see {log_file}:\n{log_file.read_text()}")
    result = json.loads((job.parent / "result.json").read_text())
    lines = (job.parent / "metrics.jsonl").read_text().splitlines()
    losses = [m["at"] for m in map(json.loads, lines) if m["name"] == "loss"]
    return {
        "wall_s": wall,
        "train_s": losses[-1] - losses[0],
        "val_loss": float(result["metrics"]["val_loss"]),
        "val_accuracy": float(result["metrics"]["val_accuracy"]),
    }


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def gpus_visible() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["gloo", "nccl"], default="gloo")
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64, help="the global batch")
    parser.add_argument(
        "--hidden",
        type=lambda text: [int(width) for width in text.split(",")],
        default=[256, 256],
        help="the MLP's hidden widths, comma-separated (wider: more compute per all_reduce)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.epochs, args.repeats = 4_000, 2, 2
    isolate_from_user_env()
    base = {
        "bench": "ddp",
        "backend": args.backend,
        "workers": args.workers,
        "cpus": os.cpu_count(),
        "threads_per_worker": 1,
    }
    if args.backend == "nccl" and gpus_visible() < args.workers:
        emit(base | {"skipped": f"nccl needs {args.workers} GPUs, {gpus_visible()} visible"})
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data.csv"
        make_dataset(data, args.rows)
        runs: dict[int, list[dict[str, float]]] = {1: [], args.workers: []}
        for repeat in range(args.repeats):
            for workers in (1, args.workers):
                job = write_job(work / f"run-{repeat}-{workers}", data, args, repeat, workers)
                runs[workers].append(train(job, workers))
            one, many = runs[1][-1], runs[args.workers][-1]
            log(
                f"repeat {repeat}: 1 worker {one['wall_s']:.2f}s (train {one['train_s']:.2f}s) "
                f"val_loss {one['val_loss']:.4f}; {args.workers} workers {many['wall_s']:.2f}s "
                f"(train {many['train_s']:.2f}s) val_loss {many['val_loss']:.4f}"
            )

    def figure(workers: int, name: str) -> float:
        return median([run[name] for run in runs[workers]])

    losses = {w: [run["val_loss"] for run in runs[w]] for w in runs}
    gap = abs(figure(args.workers, "val_loss") - figure(1, "val_loss"))
    noise = max(spread(losses[1]), spread(losses[args.workers]))
    emit(
        base
        | {
            "rows": args.rows,
            "epochs": args.epochs,
            "global_batch": args.batch,
            "hidden": args.hidden,
            "repeats": args.repeats,
            "one_wall_s": round(figure(1, "wall_s"), 3),
            "ddp_wall_s": round(figure(args.workers, "wall_s"), 3),
            "wall_speedup": round(figure(1, "wall_s") / figure(args.workers, "wall_s"), 3),
            "one_train_s": round(figure(1, "train_s"), 3),
            "ddp_train_s": round(figure(args.workers, "train_s"), 3),
            "train_speedup": round(figure(1, "train_s") / figure(args.workers, "train_s"), 3),
            "one_val_loss": round(figure(1, "val_loss"), 4),
            "ddp_val_loss": round(figure(args.workers, "val_loss"), 4),
            "one_val_accuracy": round(figure(1, "val_accuracy"), 4),
            "ddp_val_accuracy": round(figure(args.workers, "val_accuracy"), 4),
            "val_loss_gap": round(gap, 4),
            "val_loss_noise": round(noise, 4),
            "loss_matches": gap <= max(2 * noise, 0.01),
            "one_val_losses": [round(v, 4) for v in losses[1]],
            "ddp_val_losses": [round(v, 4) for v in losses[args.workers]],
        }
    )


if __name__ == "__main__":
    main()
