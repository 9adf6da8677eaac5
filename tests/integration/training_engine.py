"""A training engine in the test's own process: real store, real scheduler, real workers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from modelhub.domain.auth import Caller, Role
from modelhub.domain.runs import FINAL, Run, RunEvent
from modelhub.services import Services, build_services
from modelhub.settings import Settings
from modelhub.training.scheduler import Scheduler

ADMIN = Caller(name="alice", role=Role.ADMIN)


def write_blobs(path: Path, rows: int = 400, seed: int = 0) -> Path:
    """Two separable clusters: a tabular classifier learns them in a few epochs."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        out.write("a,b,label\n")
        for i in range(rows):
            label = i % 2
            out.write(f"{rng.normal(label * 3, 1):.4f},{rng.normal(-label * 3, 1):.4f},{label}\n")
    return path


def tabular_spec(name: str, **fields: Any) -> str:
    """A pipeline.yaml for the blobs dataset; `fields` override top-level keys (as YAML)."""
    parts = {
        "name": name,
        "type": "pre_training",
        "trainer": "tabular_classifier",
        "datasets": "[blobs]",
        "max_epochs": "2",
        "hyperparameters": "{batch_size: 16}",
        "resources": "{cpus: 1, memory: 2GiB}",
        "result_model": f"{{name: {name}-model}}",
    }
    parts |= {key: str(value) for key, value in fields.items()}
    return "\n".join(f"{key}: {value}" for key, value in parts.items()) + "\n"


@contextmanager
def engine(tmp_path: Path, **settings: Any) -> Iterator[Services]:
    defaults: dict[str, Any] = {
        "home": tmp_path / "home",
        "train_warm_workers": 0,
        "train_retry_backoff_seconds": 0.1,
        "train_cpus": 2.0,
        "train_memory": "8GiB",
        "train_gpus": 0,
    }
    services = build_services(Settings(**(defaults | settings)))
    try:
        yield services
    finally:
        services.training.stop_scheduler(grace_seconds=1)
        services.close()


def with_blobs(services: Services, tmp_path: Path, rows: int = 400) -> None:
    services.datasets.register(ADMIN, write_blobs(tmp_path / "blobs.csv", rows), "blobs")


def wait_for(
    check: Callable[[], bool], timeout: float = 90.0, scheduler: Scheduler | None = None
) -> None:
    """Poll `check`, ticking `scheduler` by hand when one is given (not started), and
    finishing what its ticks left `finishing` as its finisher thread would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scheduler is not None:
            scheduler.tick()
            scheduler.finish_pending()
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout} s")


def finished(services: Services, run_id: int, **kwargs: Any) -> Run:
    def done() -> bool:
        return services.training.get_run(ADMIN, run_id).status in FINAL

    wait_for(done, **kwargs)
    return services.training.get_run(ADMIN, run_id)


def all_events(services: Services, run_id: int) -> list[RunEvent]:
    """Every event of the run, read page by page as a client would."""
    events: list[RunEvent] = []
    while page := services.training.events(ADMIN, run_id, events[-1].id if events else 0):
        events.extend(page)
    return events
