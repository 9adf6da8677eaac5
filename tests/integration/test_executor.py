"""The local executor: warm workers that stay warm, cold ones, logs and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from modelhub.training.context import LocalContext
from modelhub.training.executor import Attempt, LocalExecutor, tree_memory
from tests.integration.training_engine import write_blobs


def _attempt(tmp_path: Path, name: str, trainer: str = "tabular_classifier") -> Attempt:
    data = write_blobs(tmp_path / "blobs.csv", rows=100)
    ctx = LocalContext(
        run_dir=tmp_path / name, hyperparameters={"epochs": 1}, datasets={"blobs": data}
    )
    job = ctx.write_job(trainer=trainer, threads=1)
    return Attempt(run_id=1, number=1, job_file=job, log_file=ctx.run_dir / "logs.txt")


def _wait(handle: object, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while (code := handle.poll()) is None:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "attempt did not end"
        time.sleep(0.05)
    return int(code)


def wait_for_warm_workers(executor: LocalExecutor, timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while not (workers := executor.warm_workers()):
        assert time.monotonic() < deadline, "no warm worker alive"
        time.sleep(0.01)
    return workers


def test_warm_workers_run_jobs_and_the_pool_refills_with_live_ones(tmp_path: Path) -> None:
    executor = LocalExecutor(warm=1)
    try:
        [warm_pid] = wait_for_warm_workers(executor)
        first = executor.start(_attempt(tmp_path, "a"))
        assert first.pid == warm_pid  # the job went to the waiting worker
        assert _wait(first) == 0
        assert json.loads((tmp_path / "a" / "result.json").read_text())["metrics"]
        assert "training on cpu" in (tmp_path / "a" / "logs.txt").read_text()

        # The replacement was forked from a thread that lives on, so it is still alive
        # now that the first job has trained (a worker forked from a short-lived thread
        # dies with that thread, and nothing would refill the pool).
        [refill_pid] = wait_for_warm_workers(executor)
        assert refill_pid != warm_pid
        second = executor.start(_attempt(tmp_path, "b"))
        assert second.pid == refill_pid and _wait(second) == 0
    finally:
        executor.close()


def test_a_warm_worker_imports_the_extra_modules_it_is_given(tmp_path: Path) -> None:
    """MODELHUB_TRAIN_WARM_IMPORTS: imported while the worker waits; a name that does
    not import is logged to the pool's log and the job still runs."""
    log = tmp_path / "workers.log"
    executor = LocalExecutor(warm=1, pool_log=log, warm_imports=("colorsys", "no_such_mod_x"))
    try:
        [pid] = wait_for_warm_workers(executor)
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert args[-4:-1] == [b"--warm", b"colorsys", b"no_such_mod_x"]
        handle = executor.start(_attempt(tmp_path, "w"))
        assert handle.pid == pid and _wait(handle) == 0
        assert "cannot import no_such_mod_x" in log.read_text()
    finally:
        executor.close()


def test_a_cold_worker_reports_a_trainer_error_with_exit_code_3(tmp_path: Path) -> None:
    executor = LocalExecutor(warm=0)
    try:
        attempt = _attempt(tmp_path, "bad")
        job = json.loads(attempt.job_file.read_text())
        attempt.job_file.write_text(json.dumps(job | {"hyperparameters": {"label": "nope"}}))
        handle = executor.start(attempt)
        assert _wait(handle) == 3
        error = json.loads((tmp_path / "bad" / "result.json").read_text())["error"]
        assert error["code"] == "invalid_input" and "nope" in error["message"]
        assert "error: " in attempt.log_file.read_text()
    finally:
        executor.close()


def test_memory_counts_what_the_process_tree_holds_not_its_libraries(tmp_path: Path) -> None:
    before = tree_memory(os.getpid())
    ballast = bytearray(64 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page
    assert tree_memory(os.getpid()) - before >= 60 * 2**20
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "b = bytearray(48 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
            "import time; time.sleep(30)",
        ]
    )
    try:
        deadline = time.monotonic() + 10
        while tree_memory(os.getpid()) - before < 100 * 2**20:  # the child's pages count too
            assert time.monotonic() < deadline, "the child's memory was never counted"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    del ballast
    assert tree_memory(2**22 + 12345) == 0  # no such process
