"""The Ray engine against a real Ray head on this host: train, cancel, reattach, unreachable.

One head serves the module (starting one costs seconds on two cores); each test
uses its own modelhub home, so run ids repeat across tests while the actors'
installation tag keeps them apart. The scheduler is the server's own
(`build_scheduler`), ticked by hand or started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub.domain.runs import RunStatus
from modelhub.errors import Unavailable
from modelhub.services import Services
from modelhub.services.ray_engine import ray_executor
from modelhub.training.executor import Attempt
from modelhub.training.ray_engine import RayExecutor
from tests.integration.conftest import clean_env, free_port
from tests.integration.ray_cluster import RayHead, start_ray_head
from tests.integration.training_engine import (
    ADMIN,
    all_events,
    engine,
    finished,
    tabular_spec,
    wait_for,
    with_blobs,
)

LONG_RUN = {"max_epochs": 3, "hyperparameters": "{batch_size: 4}", "engine": "ray"}


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    head = start_ray_head(cpus=2)
    try:
        yield head
    finally:
        head.stop()
    assert head.group_members() == [], "the Ray head left processes behind"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _executor(services: Services) -> RayExecutor:
    """An executor of the settings' cluster, to look at the run's actor from the test."""
    executor = ray_executor(services.settings)
    assert executor is not None
    return executor


def _training_step(services: Services, run_id: int) -> int:
    run = services.training.get_run(ADMIN, run_id)
    return run.step if run.status is RunStatus.RUNNING else 0


def test_a_run_on_the_ray_engine_trains_and_registers_its_model(
    ray_head: RayHead, tmp_path: Path
) -> None:
    with engine(tmp_path, train_ray_address=ray_head.address) as services:
        with_blobs(services, tmp_path)
        created = services.training.create_pipeline(ADMIN, tabular_spec("on-ray", engine="ray"))
        assert created.estimate.engine == "ray"
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "on-ray")
        done = finished(services, run.id, scheduler=scheduler, timeout=120)
        assert done.status is RunStatus.COMPLETED, done.error
        assert done.engine == "ray" and done.result_version == 1 and done.attempts == 1
        assert done.step > 0 and done.metrics["val_accuracy"] > 0.9
        assert services.registry.get("on-ray-model@1").lineage.source_run == str(run.id)
        log = services.training.logs(ADMIN, run.id).decode()
        assert "submitted to the Ray cluster" in log and "training on cpu" in log
        (ray,) = [e for e in services.training.engines(ADMIN) if e.name == "ray"]
        assert ray.status == "online" and ray.address == ray_head.address
        assert ray.capacity.cpus == 2 and ray.capacity.nodes == 1
        assert _executor(services).find(run.id) is None  # the actor ended with its worker


def test_cancel_stops_the_ray_actor_and_a_server_stop_kills_it(
    ray_head: RayHead, tmp_path: Path
) -> None:
    with engine(tmp_path, train_ray_address=ray_head.address) as services:
        with_blobs(services, tmp_path, rows=20_000)
        services.training.create_pipeline(ADMIN, tabular_spec("cancel-ray", **LONG_RUN))
        executor = _executor(services)
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "cancel-ray")
        wait_for(lambda: _training_step(services, run.id) > 0, scheduler=scheduler, timeout=90)
        actor = executor.find(run.id)
        assert actor is not None and _alive(actor["pid"])

        services.training.cancel(ADMIN, run.id)
        done = finished(services, run.id, scheduler=scheduler, timeout=60)
        assert done.status is RunStatus.CANCELLED
        assert executor.find(run.id) is None
        assert not _alive(actor["pid"])

        # Resumed, it runs on a new actor; a server that stops kills it and requeues the run.
        services.training.resume(ADMIN, run.id)
        wait_for(lambda: executor.find(run.id) is not None, scheduler=scheduler, timeout=60)
        second = executor.find(run.id)
        assert second is not None and second["pid"] != actor["pid"]
        services.training.stop_scheduler(grace_seconds=0)
        assert services.training.get_run(ADMIN, run.id).status is RunStatus.QUEUED
        wait_for(lambda: not _alive(second["pid"]), timeout=15)
        assert executor.find(run.id) is None


def test_a_restarted_server_reattaches_to_the_actor_still_running(
    ray_head: RayHead, tmp_path: Path
) -> None:
    settings = {
        "train_ray_address": ray_head.address,
        "train_lease_seconds": 2.0,
        "train_heartbeat_seconds": 0.5,
    }
    with engine(tmp_path, **settings) as services:
        with_blobs(services, tmp_path, rows=20_000)
        services.training.create_pipeline(ADMIN, tabular_spec("reattach", **LONG_RUN))
        executor = _executor(services)
        # The first server: a process of its own, killed with SIGKILL while the run trains.
        env = clean_env(**{f"MODELHUB_{k.upper()}": str(v) for k, v in settings.items()})
        env["MODELHUB_HOME"] = str(services.settings.home)
        first = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.ray_cluster"],
            env=env,
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            run = services.training.start(ADMIN, "reattach")
            wait_for(lambda: _training_step(services, run.id) > 0, timeout=90)
            actor = executor.find(run.id)
            assert actor is not None and actor["attempt"] == 1
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        stopped_at = services.training.get_run(ADMIN, run.id).step
        assert executor.find(run.id) == actor  # detached: the actor outlives its server

        services.training.start_scheduler()  # the second server

        def taken_over() -> bool:
            current = services.training.get_run(ADMIN, run.id)
            return current.attempts == 2 and current.status is RunStatus.RUNNING

        wait_for(taken_over, timeout=60)
        following = executor.find(run.id)
        assert following is not None and following["pid"] == actor["pid"]
        assert following["code"] is None  # reattached to a worker still training
        done = finished(services, run.id, timeout=120)

        assert done.status is RunStatus.COMPLETED, done.error
        assert done.attempts == 2  # the restart's attempt followed the first one's actor
        assert done.step > stopped_at and not _alive(actor["pid"])
        log = services.training.logs(ADMIN, run.id).decode()
        assert log.count("training on cpu") == 1  # one worker, never started again
        assert "reattached to the run's Ray actor" in log
        requeued = [e for e in all_events(services, run.id) if e.data.get("status") == "queued"]
        assert any("interrupted" in str(e.data.get("reason")) for e in requeued)
        steps = [p.step for p in services.training.metrics(ADMIN, run.id, "loss")]
        assert steps == sorted(set(steps))  # no step trained (or recorded) twice


def test_a_distributed_run_trains_on_ray_train_with_two_workers(
    ray_head: RayHead, tmp_path: Path
) -> None:
    with engine(tmp_path, train_ray_address=ray_head.address) as services:
        with_blobs(services, tmp_path)
        spec = tabular_spec(
            "ray-train", engine="ray", distributed="{workers: 2, backend: gloo}", max_epochs=3
        )
        services.training.create_pipeline(ADMIN, spec)
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "ray-train")
        done = finished(services, run.id, scheduler=scheduler, timeout=180)
        log = services.training.logs(ADMIN, run.id).decode()
        assert done.status is RunStatus.COMPLETED, f"{done.error}\n{log[-3000:]}"
        assert "Ray Train: 2 workers (gloo)" in log
        assert "rank 0 of 2" in log and "rank 1 of 2" in log
        assert done.metrics["val_accuracy"] > 0.9
        assert services.registry.get("ray-train-model@1").lineage.source_run == str(run.id)


@pytest.mark.parametrize("policy", ["fail", "queue"])
def test_an_unreachable_cluster_fails_the_run_or_keeps_it_queued(
    tmp_path: Path, policy: str
) -> None:
    address = f"127.0.0.1:{free_port()}"  # bound and released: nothing listens there
    with engine(
        tmp_path,
        train_ray_address=address,
        train_ray_unreachable=policy,
        train_ray_connect_timeout_seconds=2,
    ) as services:
        with_blobs(services, tmp_path)
        services.training.create_pipeline(ADMIN, tabular_spec("nowhere", engine="ray"))
        scheduler = services.training.build_scheduler()
        run = services.training.start(ADMIN, "nowhere")
        for _ in range(3):
            scheduler.tick()
        (ray,) = [e for e in services.training.engines(ADMIN) if e.name == "ray"]
        assert ray.status == "offline" and ray.reason is not None
        assert f"Ray cluster at {address} cannot be reached" in ray.reason
        assert "refused" in ray.reason.lower()
        current = services.training.get_run(ADMIN, run.id)
        if policy == "fail":
            assert current.status is RunStatus.FAILED and current.error_code == "unavailable"
            assert current.error is not None and f"Ray cluster at {address}" in current.error
            resumed = services.training.resume(ADMIN, run.id)  # nothing lost: it can go again
            assert resumed.status is RunStatus.QUEUED
        else:
            assert current.status is RunStatus.QUEUED and current.attempts == 0
            attempt = Attempt(run.id, 1, tmp_path / "job.json", tmp_path / "logs.txt")
            with pytest.raises(Unavailable, match="cannot be reached"):
                _executor(services).start(attempt)  # what starting it anyway would say
