"""Tuning: a study with pruning on the scheduler against the same trials run to the end, one
after another.

A tabular classifier on a generated table (four features, three overlapping classes,
`--rows` rows) is tuned over learning rate (log, 1e-5 to 1), hidden width (8, 32,
128) and batch size (16, 64), `--epochs` epochs a trial. The study asks `--trials`
trials, `--parallel` at a time, with the median pruner (3 startup trials) and a fixed
sampler seed, through `TuningService` with the scheduler and the tuning driver in
this process, as `modelhub server` runs them (`train_max_running` = `--parallel`).

Reference, in the same run: the study's own trials (the same parameters, in the same
order) each run to completion, one at a time, as runs of the same pipeline on the same
scheduler. That is what tuning without pruning or parallel trials costs for the same
search; the best validation loss of each side says what pruning gave up.

Out: `study_wall_s`, `sequential_wall_s`, `speedup`, `pruned` (trials), the best
validation loss and accuracy of each side, per-round figures; medians over `--rounds`.

    python bench/bench_tune.py [--trials 20] [--parallel 2] [--rows 20000] [--epochs 20]
                               [--rounds 1] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchlib import emit, isolate_from_user_env, log, median, rounded
from modelhub.domain.auth import Caller, Role
from modelhub.domain.runs import FINAL, RunStatus
from modelhub.domain.tuning import StudyStatus, TrialState, TuneRequest
from modelhub.services import Services, build_services
from modelhub.settings import Settings

ADMIN = Caller(name="bench", role=Role.ADMIN)
SEARCH = (
    "{params: {learning_rate: {type: float, low: 1.0e-5, high: 1.0, log: true}, "
    "hidden: {type: categorical, choices: [8, 32, 128]}, "
    "batch_size: {type: categorical, choices: [16, 64]}}, startup_trials: 3, seed: 0}"
)


def write_table(path: Path, rows: int, seed: int = 0) -> Path:
    """Three overlapping Gaussian classes in four features: hard enough that rates matter."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.2, size=(3, 4))
    with open(path, "w") as out:
        out.write("a,b,c,d,label\n")
        for i in range(rows):
            label = i % 3
            x = centres[label] + rng.normal(0, 1, size=4)
            out.write(",".join(f"{v:.4f}" for v in x) + f",{label}\n")
    return path


def spec(name: str, epochs: int) -> str:
    return (
        f"name: {name}\ntype: pre_training\ntrainer: tabular_classifier\ndatasets: [table]\n"
        f"max_epochs: {epochs}\nresources: {{cpus: 1, memory: 2GiB}}\n"
        f"result_model: {{name: {name}-model}}\nsearch: {SEARCH}\n"
    )


def tuned(services: Services, name: str, trials: int, parallel: int, epochs: int) -> dict[str, Any]:
    began = time.monotonic()
    services.tuning.tune(
        ADMIN, TuneRequest(spec=spec(name, epochs), trials=trials, parallel=parallel)
    )
    while (study := services.tuning.status(ADMIN, name)).status is StudyStatus.RUNNING:
        time.sleep(0.2)
    wall = time.monotonic() - began
    if study.status is not StudyStatus.COMPLETED:
        raise SystemExit(f"study {name} {study.status.value}: {study.reason}")
    best_run = services.training.metadata.get_run(int(study.best_run or 0))
    counted = [t for t in study.trial_list if not (t.reason or "").startswith("lost")]
    return {
        "wall_s": wall,
        "pruned": sum(1 for t in counted if t.state is TrialState.PRUNED),
        "failed": sum(1 for t in counted if t.state is TrialState.FAIL),
        "best_val_loss": study.best_value,
        "best_val_accuracy": best_run.metrics.get("val_accuracy"),
        "params": [t.params for t in counted],
    }


def sequential(services: Services, name: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    """The same trials as plain runs, each to its end before the next starts."""
    pipeline = services.training.get_pipeline(ADMIN, name)
    began = time.monotonic()
    losses, accuracies = [], []
    for number, chosen in enumerate(params):
        mark = {"study": f"{name}-reference", "key": "reference", "number": number}
        run = services.training.start_trial(pipeline, chosen, mark)
        while (run := services.training.metadata.get_run(run.id)).status not in FINAL:
            time.sleep(0.1)
        if run.status is RunStatus.COMPLETED:
            losses.append(run.metrics["val_loss"])
            accuracies.append(run.metrics.get("val_accuracy", float("nan")))
    wall = time.monotonic() - began
    best = int(np.argmin(losses)) if losses else None
    return {
        "wall_s": wall,
        "completed": len(losses),
        "best_val_loss": losses[best] if best is not None else None,
        "best_val_accuracy": accuracies[best] if best is not None else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="6 trials, 400 rows, 5 epochs")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.rows, args.epochs, args.rounds = 6, 400, 5, 1
    isolate_from_user_env()
    rounds = []
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        home = Path(tmp) / "home"
        settings = Settings(
            home=home,
            train_cpus=float(args.parallel),
            train_max_running=args.parallel,
            train_gpus=0,
            train_memory="8GiB",
            train_warm_workers=args.parallel,
            tune_poll_seconds=0.2,
        )
        services = build_services(settings)
        try:
            services.datasets.register(ADMIN, write_table(Path(tmp) / "t.csv", args.rows), "table")
            services.training.start_scheduler()
            services.tuning.start()
            for index in range(args.rounds):
                name = f"tuned-{index}"
                log(f"round {index + 1}: study of {args.trials} trials, {args.parallel} at once")
                study = tuned(services, name, args.trials, args.parallel, args.epochs)
                log(f"  {study['wall_s']:.1f} s, {study['pruned']} pruned; now one by one")
                reference = sequential(services, name, study["params"])
                log(f"  {reference['wall_s']:.1f} s")
                rounds.append({"study": study, "sequential": reference})
        finally:
            services.tuning.stop()
            services.training.stop_scheduler(grace_seconds=1)
            services.close()
    study_wall = median([r["study"]["wall_s"] for r in rounds])
    sequential_wall = median([r["sequential"]["wall_s"] for r in rounds])
    emit(
        {
            "bench": "tune",
            "trials": args.trials,
            "parallel": args.parallel,
            "rows": args.rows,
            "epochs": args.epochs,
            "rounds": args.rounds,
            "study_wall_s": rounded(study_wall, 2),
            "sequential_wall_s": rounded(sequential_wall, 2),
            "speedup": rounded(sequential_wall / study_wall, 2),
            "pruned": median([r["study"]["pruned"] for r in rounds]),
            "study_best_val_loss": rounded(
                median([r["study"]["best_val_loss"] for r in rounds]), 4
            ),
            "sequential_best_val_loss": rounded(
                median([r["sequential"]["best_val_loss"] for r in rounds]), 4
            ),
            "study_best_val_accuracy": rounded(
                median([r["study"]["best_val_accuracy"] for r in rounds]), 4
            ),
            "sequential_best_val_accuracy": rounded(
                median([r["sequential"]["best_val_accuracy"] for r in rounds]), 4
            ),
            "per_round": [
                {
                    "study_wall_s": rounded(r["study"]["wall_s"], 2),
                    "sequential_wall_s": rounded(r["sequential"]["wall_s"], 2),
                    "pruned": r["study"]["pruned"],
                    "failed": r["study"]["failed"],
                }
                for r in rounds
            ],
        }
    )


if __name__ == "__main__":
    main()
