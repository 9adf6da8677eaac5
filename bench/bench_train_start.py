"""Training start latency: from the start request to the first optimizer step.

A tiny tabular_classifier pipeline (400 rows, 2 features, 1 epoch, batch 16,
`log_every: 1`) is started 20 times, one after another, each waiting for the last
to complete. With `log_every: 1` the trainer writes its first metric line (step 1)
right after the first optimizer step; the latency is that line's "at" (unix time,
written by the worker) minus the wall time just before `TrainingService.start`.

Mode "inproc" (the headline `median_s`): the services and the scheduler run in the
bench process (as `modelhub server` runs them), with one warm worker. Before each
start the bench waits until the warm worker has imported torch and blocks on its
stdin (/proc/PID/syscall), i.e. the steady state of an idle server. The same wait
is made for every warm pool (each target's) before every start and before every
torch import, so that no measurement competes with a pool refilling after the
previous run.

References measured in the same run, interleaved round by round:
- cold: the same with `train_warm_workers=0`, a fresh worker process per attempt;
- server_rest: a real `modelhub server` process on loopback runs the scheduler
  (one warm worker) and the bench starts each run with
  `POST /api/v1/pipelines/NAME/runs`, as a user would: HTTP, authentication,
  the store, the scheduler's wake-up and the worker all count;
- torch_import: `python -c "import torch"`, the floor of any cold start.

Goal: median under 1 s; the seed target was 30 s.

    python bench/bench_train_start.py [--runs 20] [--no-server] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchlib import (
    admin_token,
    emit,
    free_port,
    isolate_from_user_env,
    log,
    median,
    modelhub_server_argv,
    rounded,
    server_process,
)
from modelhub.domain.runs import RunStatus
from modelhub.services import Services, build_services
from modelhub.settings import Settings
from trainlib import (
    CALLER,
    first_metric_at,
    pipeline_yaml,
    wait_final,
    wait_warm_worker,
    write_blobs_csv,
)

GOAL_S = 1.0
SEED_TARGET_S = 30.0
ROWS = 400
PIPELINE = "start-latency"
SETTLE_S = 0.3  # after the warm worker is ready, let its last page-ins finish


@dataclass
class Target:
    label: str
    services: Services
    warm_parent: int | None  # whose warm worker must be idle before each start
    start: Callable[[], int] | None = None  # the start request; None: the service in-process
    first_step: list[float] = field(default_factory=list)
    start_call: list[float] = field(default_factory=list)
    launched: list[float] = field(default_factory=list)
    not_ready: int = 0


def prepare_home(home: Path, warm_workers: int) -> Services:
    services = build_services(Settings(home=home, train_warm_workers=warm_workers))
    data = home.parent / "blobs.csv"
    if not data.exists():
        write_blobs_csv(data, ROWS)
    services.datasets.register(CALLER, data, "blobs")
    services.training.create_pipeline(
        CALLER, pipeline_yaml(PIPELINE, "blobs", "start-latency-clf", log_every=1)
    )
    return services


def quiet(targets: list[Target]) -> None:
    """Wait until every warm pool is refilled, so no start competes with a refill."""
    for target in targets:
        if target.warm_parent is not None and not wait_warm_worker(target.warm_parent):
            target.not_ready += 1
    time.sleep(SETTLE_S)


def measure(target: Target) -> None:
    training = target.services.training
    t0 = time.time()
    run_id = target.start() if target.start else training.start(CALLER, PIPELINE).id
    called = time.time()
    (final,) = wait_final(target.services, [run_id], timeout=180)
    run = final
    if final.status is not RunStatus.COMPLETED:
        raise RuntimeError(f"{target.label} run {run.id} ended {final.status}: {final.error}")
    first = first_metric_at(training.run_dir(run.id))
    if first is None:
        raise RuntimeError(f"{target.label} run {run.id} wrote no metric line")
    launched = next(
        e.at.timestamp()
        for e in target.services.training.events(CALLER, run.id)
        if e.kind == "status" and e.data.get("status") == RunStatus.RUNNING.value
    )
    target.first_step.append(first - t0)
    target.start_call.append(called - t0)
    target.launched.append(launched - t0)
    log(
        f"{target.label:>6} run {run.id}: first step {first - t0:.3f}s "
        f"(start() {called - t0:.3f}s, launched {launched - t0:.3f}s)"
    )


def torch_import_s() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    return time.perf_counter() - start


@contextmanager
def in_process(home: Path, warm_workers: int, label: str) -> Iterator[Target]:
    services = prepare_home(home, warm_workers)
    services.training.start_scheduler()
    try:
        # its warm worker is a child of this process
        yield Target(label, services, warm_parent=os.getpid() if warm_workers else None)
    finally:
        services.training.stop_scheduler()
        services.close()


@contextmanager
def shared_db_server(home: Path) -> Iterator[Target]:
    services = prepare_home(home, warm_workers=1)
    port = free_port()
    env = {"MODELHUB_HOME": str(home), "MODELHUB_TRAIN_WARM_WORKERS": "1"}
    argv = modelhub_server_argv(port)
    try:
        with server_process(
            argv, f"http://127.0.0.1:{port}/healthz", env, home / "server.log"
        ) as proc:
            client = httpx.Client(
                base_url=f"http://127.0.0.1:{port}",
                headers={"authorization": f"Bearer {admin_token(home)}"},
            )

            def start_over_rest() -> int:
                response = client.post(f"/api/v1/pipelines/{PIPELINE}/runs", json={})
                response.raise_for_status()
                return int(response.json()["id"])

            try:
                yield Target("server", services, warm_parent=proc.pid, start=start_over_rest)
            finally:
                client.close()
    finally:
        services.close()


def spread(values: list[float], prefix: str) -> dict[str, float | None]:
    p90 = statistics.quantiles(values, n=10, method="inclusive")[8] if len(values) > 1 else None
    return {
        f"{prefix}median_s": rounded(median(values)),
        f"{prefix}p90_s": rounded(p90) if p90 is not None else rounded(values[0]),
        f"{prefix}min_s": rounded(min(values)),
        f"{prefix}max_s": rounded(max(values)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-server", action="store_true", help="skip the server reference")
    parser.add_argument("--quick", action="store_true", help="3 runs each")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    isolate_from_user_env()
    torch_samples: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-train-start-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        warm = stack.enter_context(in_process(root / "warm", 1, "warm"))
        cold = stack.enter_context(in_process(root / "cold", 0, "cold"))
        targets = [warm, cold]
        if not args.no_server:
            targets.append(stack.enter_context(shared_db_server(root / "server")))
        for i in range(runs):
            log(f"round {i + 1}/{runs}")
            for target in targets:
                quiet(targets)
                measure(target)
            quiet(targets)
            torch_samples.append(torch_import_s())
            log(f"  python -c 'import torch': {torch_samples[-1]:.3f}s")
        result_targets = {t.label: t for t in targets}
    server = result_targets.get("server")
    emit(
        {
            "bench": "train_start",
            "mode": "inproc",
            "mode_note": "median_s: TrainingService.start in the process that runs the "
            "scheduler (1 warm worker); server_rest_*: POST /api/v1/pipelines/NAME/runs "
            "to a real modelhub server on loopback, whose scheduler starts the run",
            **spread(warm.first_step, ""),
            "goal_s": GOAL_S,
            "goal_met": median(warm.first_step) < GOAL_S,
            "seed_target_s": SEED_TARGET_S,
            "breakdown_median_s": {
                "start_call": rounded(median(warm.start_call)),
                "until_launch": rounded(median(warm.launched)),
                "launch_to_first_step": rounded(
                    median([f - la for f, la in zip(warm.first_step, warm.launched, strict=True)])
                ),
            },
            **spread(cold.first_step, "cold_"),
            **(spread(server.first_step, "server_rest_") if server else {}),
            **({"server_rest_goal_met": median(server.first_step) < GOAL_S} if server else {}),
            "torch_import_median_s": rounded(median(torch_samples)),
            "torch_import_min_s": rounded(min(torch_samples)),
            "warm_not_ready": warm.not_ready + (server.not_ready if server else 0),
            "runs": runs,
            "rows": ROWS,
            "samples_s": {t.label: [rounded(v) for v in t.first_step] for t in targets},
        }
    )


if __name__ == "__main__":
    main()
