"""The training worker: one process per attempt, started by an executor.

    python -m modelhub.training.worker JOB_FILE     run the job now
    python -m modelhub.training.worker --warm [MODULE ...]
                                                    import torch, the trainers and the
                                                    MODULEs (MODELHUB_TRAIN_WARM_IMPORTS),
                                                    then wait for a job path on stdin

A warm worker has paid Python's and torch's start-up before a run asks for it,
which is what brings start latency under a second. Either way the job runs in
this process, with stdout and stderr going to the run's log.

Exit codes tell the scheduler what happened: 0 the trainer finished and
`result.json` holds its metrics; FAILED (3) the trainer refused or failed for a
reason retrying will not change (`result.json` holds the error); anything else,
a signal included, is a crash that a retry may survive.

A distributed job (`job["distributed"]`) runs one worker per rank, started by
`modelhub.training.launcher`: each joins the process group before its trainer starts
(or adopts the group already initialised, as under Ray Train) and leaves it at the
end. Rank 0 writes result.json; any rank that fails writes its error there; each
rank writes its own usage figure.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from modelhub.processes import die_with_parent
from modelhub.training.distributed import Group, join, leave
from modelhub.training.usage import usage_name

T = TypeVar("T")

FAILED = 3


def warm_up(modules: list[str] | None = None) -> None:
    """Pay, before a job arrives, what a run would otherwise pay before its first step.

    Besides the imports, one throwaway optimizer step on a 2x2 layer: building the
    first torch optimizer imports torch._dynamo (over a second, more than `import
    torch` itself) and the first backward starts autograd. The global RNG state is
    put back, so a warm worker draws the same numbers as a fresh process.
    """
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file  # noqa: F401

    from modelhub.training.trainers import char_lm, tabular  # noqa: F401

    for module in modules or []:  # MODELHUB_TRAIN_WARM_IMPORTS
        try:
            importlib.import_module(module)
        except ImportError as exc:  # the run imports what it needs anyway: only time lost
            print(f"warm worker: cannot import {module}: {exc}", file=sys.stderr)
    rng = torch.get_rng_state()
    layer = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(layer.parameters())
    loss = F.cross_entropy(layer(torch.zeros(2, 2)), torch.zeros(2, dtype=torch.long))
    loss.backward()  # type: ignore[no-untyped-call]
    optimizer.step()
    torch.set_rng_state(rng)


def write_result(run_dir: Path, payload: dict[str, Any]) -> None:
    tmp = run_dir / f"result.{os.getpid()}.tmp"  # ranks of one run share the folder
    tmp.write_text(json.dumps(payload, default=float))
    tmp.replace(run_dir / "result.json")


def run_job(job_file: Path) -> int:
    from modelhub.training.usage import process_cpu_seconds, write_usage

    job = json.loads(job_file.read_text())
    run_dir = Path(job["run_dir"])
    gpus = job.get("gpus") or []
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in gpus)  # before CUDA starts
    _limit(job)
    began_cpu, began = process_cpu_seconds(), time.monotonic()
    group: Group | None = None
    if job.get("distributed"):
        group = _failing_as_result(run_dir, lambda: join(job["distributed"]))
        if group is None:
            return FAILED
    rank, world_size = (group.rank, group.world_size) if group is not None else (None, 1)
    (run_dir / usage_name(rank)).unlink(missing_ok=True)
    try:
        code = _run(job, job_file, run_dir, group)
    finally:
        used, wall = process_cpu_seconds() - began_cpu, time.monotonic() - began
        write_usage(run_dir, used, wall, rank, world_size)
        leave(group)
    return code


def _limit(job: dict[str, Any]) -> None:
    """Hold this attempt to its limits (modelhub.limits), torch and the trainers imported
    first so that a cold worker and a warm one count the same."""
    from modelhub.limits import Limits, limit_self

    limits = Limits.from_json(job.get("limits"))
    if limits.empty:
        return
    if limits.memory is not None:
        warm_up()  # done already in a warm worker; a cold one imports here, not after
    for note in limit_self(limits):
        print(f"limits: {note}", flush=True)


def _memory_message(job: dict[str, Any]) -> str:
    memory = (job.get("limits") or {}).get("memory")
    if memory is None:
        return "out of memory"
    return (
        f"out of memory: over its memory limit of {memory / 2**20:.0f} MiB; raise resources.memory"
    )


def _failing_as_result(run_dir: Path, step: Callable[[], T]) -> T | None:
    """`step`'s value; None when it raised a modelhub error, which goes into result.json."""
    from modelhub.errors import ModelhubError

    try:
        return step()
    except ModelhubError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        write_result(run_dir, {"error": exc.to_dict()})
        return None


def _run(job: dict[str, Any], job_file: Path, run_dir: Path, group: Group | None) -> int:
    from modelhub.errors import ModelhubError
    from modelhub.training.context import LocalContext
    from modelhub.training.trainers import trainer_module

    try:
        import torch

        torch.set_num_threads(max(1, int(job.get("threads", 1))))
        ctx = LocalContext.from_job(job_file)
        where = ctx.device
        if where.startswith("cuda") and torch.cuda.is_available():
            where += f" ({torch.cuda.get_device_name()})"
        if group is not None:
            where += f", rank {group.rank} of {group.world_size} ({group.backend})"
        print(f"training on {where}", flush=True)
        try:
            if job.get("federated"):  # Flower's simulation instead of the trainer's loop
                from modelhub.training.federated import runner

                result = runner.train(ctx, job)
            else:
                result = trainer_module(job["trainer"]).train(ctx)
        finally:
            ctx.close()  # every metric line on disk before result.json says the run ended
    except ModelhubError as exc:
        print(f"error: {exc.message}", file=sys.stderr, flush=True)
        write_result(run_dir, {"error": exc.to_dict()})
        return FAILED
    except MemoryError:
        traceback.print_exc()
        message = _memory_message(job)
        write_result(run_dir, {"error": {"code": "invalid_input", "message": message}})
        return FAILED
    except RuntimeError as exc:  # torch's allocator says so in its own words
        from modelhub.limits import memory_failure

        if not memory_failure(str(exc)):
            raise
        traceback.print_exc()
        message = _memory_message(job)
        write_result(run_dir, {"error": {"code": "invalid_input", "message": message}})
        return FAILED
    if group is None or group.writer:
        metrics = {**result.metrics, **ctx.profile}  # a profiling run's phase figures
        write_result(run_dir, {"metrics": metrics, "output_dir": str(result.output_dir)})
    return 0


def redirect_output(log_file: Path) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: list[str]) -> int:
    parent = int(os.environ.get("MODELHUB_WORKER_PARENT", os.getppid()))
    die_with_parent(parent)
    if argv[:1] == ["--warm"]:
        warm_up(argv[1:])
        line = sys.stdin.readline().strip()
        if not line:
            return 0  # the pool closed without a job for us
        job_file = Path(line)
        redirect_output(job_file.parent / "logs.txt")
    else:
        job_file = Path(argv[0])
    return run_job(job_file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
