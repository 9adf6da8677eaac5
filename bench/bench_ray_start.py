"""Start latency on the Ray engine against the local one: start request to first step.

A tiny tabular_classifier pipeline (400 rows, 2 features, 1 epoch, batch 16,
`log_every: 1`) is started `--runs` times on each target, round-robin, each run
waiting for the last to complete. The latency is the first metric line's "at"
(unix time, written by the worker right after its first optimizer step) minus the
wall time just before `TrainingService.start`, as in bench_train_start.py.

Targets, each a home of its own with the scheduler running in this process:
- ray: `engine: ray` on a Ray head this bench starts on 127.0.0.1 (2 CPUs), through
  `RayExecutor`: a new detached actor per attempt, which starts a fresh worker
  process (torch imported cold);
- local_warm: `engine: local` with one warm worker (the server's default), the
  reference the issue names;
- local_cold: `engine: local` without warm workers, a fresh worker process per
  attempt: what the Ray engine adds on top of a cold start.

    python bench/bench_ray_start.py [--runs 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import REPO_ROOT, emit, isolate_from_user_env, log, median, rounded
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

sys.path.insert(0, str(REPO_ROOT))  # the Ray head the engine's tests start
from tests.integration.ray_cluster import start_ray_head

ROWS = 400
PIPELINE = "ray-start-latency"
SETTLE_S = 0.3  # after the warm worker is ready, let its last page-ins finish


@dataclass
class Target:
    label: str
    services: Services
    warm_parent: int | None
    first_step: list[float] = field(default_factory=list)
    launched: list[float] = field(default_factory=list)


@contextmanager
def target(root: Path, label: str, engine: str, **settings: object) -> Iterator[Target]:
    home = root / label
    services = build_services(Settings(home=home, **settings))  # type: ignore[arg-type]
    data = root / "blobs.csv"
    if not data.exists():
        write_blobs_csv(data, ROWS)
    services.datasets.register(CALLER, data, "blobs")
    spec = pipeline_yaml(PIPELINE, "blobs", f"{label}-clf", log_every=1) + f"engine: {engine}\n"
    services.training.create_pipeline(CALLER, spec)
    services.training.start_scheduler()
    warm = bool(settings.get("train_warm_workers"))
    try:
        yield Target(label, services, warm_parent=os.getpid() if warm else None)
    finally:
        services.training.stop_scheduler()
        services.close()


def wait_engine_online(services: Services, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(e.name == name and e.status == "online" for e in services.training.engines(CALLER)):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the {name} engine is not online after {timeout:.0f} s")


def quiet(targets: list[Target]) -> None:
    for each in targets:
        if each.warm_parent is not None:
            wait_warm_worker(each.warm_parent)
    time.sleep(SETTLE_S)


def measure(each: Target) -> None:
    training = each.services.training
    t0 = time.time()
    run_id = training.start(CALLER, PIPELINE).id
    (run,) = wait_final(each.services, [run_id], timeout=300)
    if run.status is not RunStatus.COMPLETED:
        raise RuntimeError(f"{each.label} run {run.id} ended {run.status}: {run.error}")
    first = first_metric_at(training.run_dir(run.id))
    if first is None:
        raise RuntimeError(f"{each.label} run {run.id} wrote no metric line")
    launched = next(
        e.at.timestamp()
        for e in training.events(CALLER, run.id)
        if e.kind == "status" and e.data.get("status") == RunStatus.RUNNING.value
    )
    each.first_step.append(first - t0)
    each.launched.append(launched - t0)
    log(
        f"{each.label:>10} run {run.id}: first step {first - t0:.3f}s, "
        f"launched {launched - t0:.3f}s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 runs each")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    isolate_from_user_env()
    with tempfile.TemporaryDirectory(prefix="bench-ray-start-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        log("starting a Ray head on 127.0.0.1")
        head = start_ray_head(cpus=2)
        stack.callback(head.stop)
        ray = stack.enter_context(
            target(root, "ray", "ray", train_ray_address=head.address, train_warm_workers=0)
        )
        warm = stack.enter_context(target(root, "local_warm", "local", train_warm_workers=1))
        cold = stack.enter_context(target(root, "local_cold", "local", train_warm_workers=0))
        wait_engine_online(ray.services, "ray")
        targets = [ray, warm, cold]
        for i in range(runs):
            log(f"round {i + 1}/{runs}")
            for each in targets:
                quiet(targets)
                measure(each)
    ray_s, warm_s, cold_s = (median(t.first_step) for t in targets)
    emit(
        {
            "bench": "ray_start",
            "metric": "seconds from TrainingService.start to the first optimizer step",
            "ray_median_s": rounded(ray_s),
            "local_warm_median_s": rounded(warm_s),
            "local_cold_median_s": rounded(cold_s),
            "ray_over_local_warm_s": rounded(ray_s - warm_s),
            "ray_over_local_cold_s": rounded(ray_s - cold_s),
            "launched_median_s": {t.label: rounded(median(t.launched)) for t in targets},
            "runs": runs,
            "rows": ROWS,
            "cluster": "one Ray head on 127.0.0.1, 2 CPUs, on this host",
            "samples_s": {t.label: [rounded(v) for v in t.first_step] for t in targets},
        }
    )


if __name__ == "__main__":
    main()
