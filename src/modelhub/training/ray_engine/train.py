"""A distributed job on Ray Train: `python -m modelhub.training.ray_engine.train JOB GCS_ADDRESS`.

The attempt's actor starts this for a job with `distributed.workers` N > 1, as the
local executor starts torchrun's launcher. It joins the cluster as a driver and
runs Ray Train's `TorchTrainer`: N workers, each with the run's per-worker
resources (`resources_per_worker`), in a process group Ray Train initialises
(gloo, or nccl on GPUs). Each worker runs the training worker's `run_job` on the
run's job, which adopts that group: rank 0 writes metrics, checkpoints and the
result into the run folder, as under torchrun. Ranks print into the run's log.

Failures are the scheduler's to retry (`FailureConfig(max_failures=0)`): when a rank
dies, `fit` fails and this process exits non-zero. Exit codes are a worker's: 0 when
the result holds metrics, FAILED (3) when it holds a trainer's error, 1 otherwise.
When this process dies (its actor was killed), Ray ends the workers it owns.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from modelhub.processes import die_with_parent
from modelhub.training.worker import FAILED

CRASHED = 1
RAY_TRAIN_FOLDER = "ray-train"


def rank_main(config: dict[str, Any]) -> None:
    """One Ray Train worker: the run's job, with this rank's GPUs, on the adopted group."""
    import ray
    import ray.train

    from modelhub.training.worker import redirect_output, run_job

    job_file = Path(config["job_file"])
    rank = ray.train.get_context().get_world_rank()
    job = json.loads(job_file.read_text())
    job["gpus"] = [str(gpu) for gpu in ray.get_gpu_ids()]
    own = job_file.with_name(f"job.ray-rank-{rank}.json")
    tmp = own.with_suffix(".tmp")
    tmp.write_text(json.dumps(job, indent=2))
    tmp.replace(own)
    redirect_output(job_file.parent / "logs.txt")
    code = run_job(own)
    if code != 0:
        raise RuntimeError(f"rank {rank}: the training worker ended with exit code {code}")


def launch(job_file: Path, address: str) -> int:
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    job = json.loads(job_file.read_text())
    section = job["distributed"]
    workers, backend = int(section["workers"]), str(section.get("backend") or "gloo")
    resources = job.get("resources") or {"cpus": job.get("threads", 1), "gpus": 0}  # per worker
    per_worker: dict[str, float] = {"CPU": float(resources["cpus"])}
    if resources.get("gpus"):
        per_worker["GPU"] = float(resources["gpus"])
    if resources.get("memory"):
        per_worker["memory"] = float(resources["memory"])
    run_dir = job_file.parent
    print(f"Ray Train: {workers} workers ({backend}), each {per_worker}", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # Ray's notes on its next versions
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    trainer = TorchTrainer(
        rank_main,
        train_loop_config={"job_file": str(job_file)},
        torch_config=TorchConfig(backend=backend),
        scaling_config=ScalingConfig(
            num_workers=workers,
            use_gpu=bool(resources.get("gpus")),
            resources_per_worker=per_worker,
        ),
        run_config=RunConfig(
            name=f"run-{job.get('run_id', 'local')}",
            storage_path=str(run_dir / RAY_TRAIN_FOLDER),
            failure_config=FailureConfig(max_failures=0),
        ),
    )
    failed = False
    try:
        trainer.fit()
    except Exception as exc:  # a rank failed: its reason is in the log, maybe in the result
        print(f"Ray Train: the workers failed: {exc}", file=sys.stderr, flush=True)
        failed = True
    result = _result(run_dir)
    if "metrics" in result and not failed:
        return 0
    return FAILED if "error" in result else CRASHED


def _result(run_dir: Path) -> dict[str, Any]:
    try:
        found = json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def main(argv: list[str]) -> int:
    parent = int(os.environ.get("MODELHUB_WORKER_PARENT", os.getppid()))
    die_with_parent(parent)
    if len(argv) != 2:
        print("usage: python -m modelhub.training.ray_engine.train JOB_FILE GCS_ADDRESS")
        return 2
    return launch(Path(argv[0]), argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
