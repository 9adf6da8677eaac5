from __future__ import annotations

import json
import threading
from pathlib import Path

from modelhub.services import build_services
from modelhub.settings import Settings
from modelhub.training.executor import Attempt, LocalExecutor


def test_on_exit_is_called_when_the_attempt_process_ends(tmp_path: Path) -> None:
    ended = threading.Event()
    executor = LocalExecutor(warm=0, on_exit=ended.set)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"trainer": "no-such-trainer"}))  # the worker fails at once
    try:
        handle = executor.start(Attempt(1, 1, job, tmp_path / "logs.txt"))
        assert ended.wait(timeout=60)
        code = handle.poll()
        assert code is not None and code != 0  # the thread that waited left the code to poll
    finally:
        executor.close()


def test_the_training_service_wires_exits_to_the_scheduler(tmp_path: Path) -> None:
    services = build_services(Settings(home=tmp_path, train_warm_workers=0))
    try:
        scheduler = services.training.build_scheduler()
        local = scheduler.engines["local"].executor
        assert isinstance(local, LocalExecutor)
        assert local.on_exit == scheduler.wake
        local.close()
    finally:
        services.close()
