"""Pipeline optimisation: samples/s of a slow pipeline before and after its proposal, same run.

The pipeline is the integration test's: a tabular classifier on 400 generated rows
(320 to train), batch_size 1 and a checkpoint after every step. Each repeat is one
`optimize` on the scheduler (in process, real worker processes): the profiling run
of the pipeline as it is (the **reference**) and the run of the changed spec over the
same number of samples. Figures are the profiles' samples/s (training time only:
the budget's steps, their checkpoints and logging; not the worker's start), median
over the repeats, and the validation accuracy of both runs.

    python bench/bench_pipeline_optimize.py [--repeats 3] [--budget-steps 320] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import emit, isolate_from_user_env, log, median

SPEC = """name: slow
type: pre_training
trainer: tabular_classifier
datasets: [blobs]
max_epochs: 3
hyperparameters: {batch_size: 1}
checkpoint: {every_steps: 1, keep_last: 1}
result_model: {name: slow-model}
"""


def write_blobs(path: Path, rows: int) -> Path:
    rng = np.random.default_rng(0)
    lines = ["a,b,label"]
    for i in range(rows):
        label = i % 2
        lines.append(f"{rng.normal(label * 3, 1):.4f},{rng.normal(-label * 3, 1):.4f},{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--budget-steps", type=int, default=320)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    isolate_from_user_env()
    from modelhub.domain.auth import Caller, Role
    from modelhub.services import build_services
    from modelhub.settings import Settings

    admin = Caller(name="bench", role=Role.ADMIN)
    before, after, gains, changes, validation = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(home=Path(tmp) / "home", train_warm_workers=1, train_gpus=0)
        services = build_services(settings)
        try:
            services.datasets.register(admin, write_blobs(Path(tmp) / "blobs.csv", 400), "blobs")
            services.training.create_pipeline(admin, SPEC)
            services.training.start_scheduler()
            optimizations = services.pipeline_optimizations
            for i in range(repeats):
                found = optimizations.optimize(admin, "slow", args.budget_steps, 0.05)
                started = time.monotonic()
                while found.status.value in ("profiling", "measuring"):
                    if time.monotonic() - started > 600:
                        raise SystemExit(f"optimisation {found.id} took over 600 s")
                    time.sleep(0.1)
                    found = optimizations.get(admin, "slow", found.id)
                if found.before is None or found.after is None:
                    raise SystemExit(f"optimisation {found.id}: {found.message}")
                before.append(found.before.samples_per_s)
                after.append(found.after.samples_per_s)
                gains.append(found.after.samples_per_s / found.before.samples_per_s)
                changes.append({c.field: [c.old, c.new] for c in found.changes})
                check = found.validation
                validation.append([check.before, check.after] if check else None)
                log(f"repeat {i}: {found.status.value}, {found.message}")
        finally:
            services.training.stop_scheduler(grace_seconds=1)
            services.close()
    emit(
        {
            "bench": "pipeline_optimize",
            "before_samples_per_s": round(median(before), 1),
            "after_samples_per_s": round(median(after), 1),
            "gain": round(median(after) / median(before), 2),
            "median_pair_gain": round(median(gains), 2),
            "changes": changes[-1],
            "val_accuracy_before_after": validation,
            "budget_steps": args.budget_steps,
            "repeats": repeats,
        }
    )


if __name__ == "__main__":
    main()
