"""Faults around a real `modelhub server`: its scheduler killed with runs queued and running."""

from __future__ import annotations

import os
import time
from pathlib import Path

from modelhub.domain.runs import RunStatus
from modelhub.services import build_services
from modelhub.settings import Settings
from tests.integration.conftest import make_server
from tests.integration.training_engine import (
    ADMIN,
    all_events,
    tabular_spec,
    wait_for,
    write_blobs,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_kill_9_of_the_server_loses_no_run_and_every_run_finishes(tmp_path: Path) -> None:
    server = make_server(
        tmp_path, MODELHUB_TRAIN_MAX_RUNNING="2", MODELHUB_TRAIN_CPUS="2", MODELHUB_TRAIN_GPUS="0"
    )
    server.start()
    # A second client of the same home: runs started here land in the server's queue.
    services = build_services(Settings(home=server.home))
    try:
        services.datasets.register(ADMIN, write_blobs(tmp_path / "blobs.csv", 8_000), "blobs")
        spec = tabular_spec(
            "durable",
            max_epochs=2,
            hyperparameters="{batch_size: 8}",
            checkpoint="{every_steps: 100}",
            resources="{cpus: 1}",
        )
        services.training.create_pipeline(ADMIN, spec)
        runs = [services.training.start(ADMIN, "durable") for _ in range(4)]

        def two_training() -> bool:
            current = [services.training.get_run(ADMIN, r.id) for r in runs]
            return sum(r.status is RunStatus.RUNNING and r.step > 0 for r in current) == 2

        wait_for(two_training, timeout=120)
        workers = [
            r.worker_pid
            for r in services.training.list_runs(ADMIN, RunStatus.RUNNING)
            if r.worker_pid
        ]
        assert len(workers) == 2
        server.kill9()
        # Workers die with the server (PDEATHSIG): nothing trains unseen.
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)
        statuses = sorted(services.training.get_run(ADMIN, r.id).status for r in runs)
        assert statuses == [RunStatus.QUEUED] * 2 + [RunStatus.RUNNING] * 2

        server.start()

        def all_completed() -> bool:
            return all(
                services.training.get_run(ADMIN, r.id).status is RunStatus.COMPLETED for r in runs
            )

        wait_for(all_completed, timeout=300)
        done = [services.training.get_run(ADMIN, r.id) for r in runs]
        assert sorted(r.result_version for r in done if r.result_version) == [1, 2, 3, 4]
        assert sorted(r.attempts for r in done) == [1, 1, 2, 2]
        for run in done:
            events = all_events(services, run.id)
            reasons = [e.data.get("reason", "") for e in events if e.kind == "status"]
            assert any("interrupted" in reason for reason in reasons) == (run.attempts == 2)
    finally:
        services.close()
        server.stop()
