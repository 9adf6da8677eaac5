"""A federated attempt's worker, started and killed by the real executor.

Flower's simulation starts a Ray instance inside the worker. While it trains, every
socket the worker's process tree listens on is bound to the loopback address; when the
executor SIGKILLs the worker's process group (as a cancel past its grace does), no Ray
process outlives it. The next attempt continues from the newest round's checkpoint,
and a stop request ends it after the round in progress, with the model so far (or,
with keep_best, the best round's).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from modelhub.training.context import LocalContext
from modelhub.training.executor import Attempt, AttemptHandle, LocalExecutor
from modelhub.training.federated.runner import ray_temp_dir
from modelhub.training.trainers import tabular
from tests.integration.training_engine import write_blobs

ROUNDS = 200  # more than either attempt trains: the first is killed, the second stopped
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def wait_until(check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met in {timeout} s")


def tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    def running(process: psutil.Process) -> bool:
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    return [p for p in processes if running(p)]


def listening(processes: list[psutil.Process]) -> set[str]:
    addresses = set()
    for process in alive(processes):
        try:
            sockets = process.net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        addresses |= {s.laddr.ip for s in sockets if s.status == psutil.CONN_LISTEN}
    return addresses


def checkpointed(ctx: LocalContext) -> int:
    return len(list(ctx.checkpoint_dir.glob("step-*.pt")))


def test_a_killed_attempt_leaves_no_ray_behind_and_the_next_resumes_then_stops(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    ctx = LocalContext(
        run_dir=run_dir,
        hyperparameters={"batch_size": 16, "learning_rate": 0.05},
        datasets={"blobs": write_blobs(tmp_path / "blobs.csv", rows=200)},
        keep_checkpoints=2,
        keep_best=("val_accuracy", "max"),
    )
    job_file = ctx.write_job(
        trainer="tabular_classifier",
        run_id=1,
        threads=1,
        federated={"clients": 2, "rounds": ROUNDS, "fraction_evaluate": 0.0},
        partitioning={"partition": "iid"},
    )
    log_file = run_dir / "logs.txt"
    executor = LocalExecutor(warm=0)
    handle: AttemptHandle | None = None
    try:
        handle = executor.start(Attempt(1, 1, job_file, log_file))
        wait_until(lambda: checkpointed(ctx) > 0)
        processes = tree(handle.pid)
        names = {p.name() for p in alive(processes)}
        assert {"raylet", "gcs_server"} <= names, names
        addresses = listening(processes)
        assert addresses and addresses <= LOOPBACK, addresses
        handle.kill()
        assert handle.poll() is not None
        wait_until(lambda: not alive(processes), timeout=30)

        saved = ctx.latest_checkpoint()
        assert saved is not None
        resumed_from = saved[0]
        lines_before = len(ctx.metrics())
        handle = executor.start(Attempt(1, 2, job_file, log_file))
        wait_until(lambda: f"resumed after round {resumed_from} " in log_file.read_text())
        processes = tree(handle.pid)
        wait_until(lambda: len(ctx.metrics()) > lines_before)
        (run_dir / "STOP").touch()
        wait_until(lambda: handle is not None and handle.poll() is not None, timeout=60)
        assert handle.poll() == 0, log_file.read_text()[-2000:]
        wait_until(lambda: not alive(processes), timeout=30)
    finally:
        if handle is not None and handle.poll() is None:
            handle.kill()
        executor.close()

    assert not ray_temp_dir(run_dir).exists()  # the killed attempt's, removed by the next
    result = json.loads((run_dir / "result.json").read_text())
    stopped = int(result["metrics"]["stopped_at_round"])
    assert resumed_from < stopped < ROUNDS
    assert result["metrics"]["rounds"] == stopped
    best = json.loads((run_dir / "best.json").read_text())  # keep_best: the best round's model
    assert result["metrics"]["best_step"] == best["step"] <= stopped
    assert result["metrics"]["val_accuracy"] == best["value"]
    second = ctx.metrics()[lines_before:]
    accuracy_rounds = [m["step"] for m in second if m["name"] == "val_accuracy"]
    assert accuracy_rounds == list(range(resumed_from + 1, stopped + 1))
    saved = ctx.latest_checkpoint()
    assert saved is not None and saved[0] == stopped
    assert len(list(ctx.checkpoint_dir.glob("step-*.pt"))) == 2  # keep_last
    model = tabular.load(run_dir / "output")
    assert model.predict([{"a": 3.0, "b": -3.0}, {"a": 0.0, "b": 0.0}]) == [1, 0]
