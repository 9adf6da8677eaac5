"""A real `modelhub server` killed with SIGKILL while a run trains and a deployment
serves, and started again at once, the old process not yet reaped (a zombie whose
pid still answers kill(pid, 0)). One kill for the module; each test reads one part of
what was observed while the new server came back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.domain.runs import Run, RunStatus
from modelhub.services import build_services
from modelhub.settings import Settings
from tests.integration.conftest import make_server
from tests.integration.serving_helpers import deploy, oip_body, write_model_a
from tests.integration.training_engine import (
    ADMIN,
    all_events,
    tabular_spec,
    wait_for,
    write_blobs,
)

LEASE_SECONDS = 3.0
HANG_SECONDS = 1.5  # an answer slower than this, while nothing serves, is a hang


@dataclass
class Observed:
    old_replicas: set[int]
    checkpoint_step: int
    run: Run | None = None  # the run once it finished
    start_seconds: float = 0.0  # how long the new server took to answer /readyz
    resumed_after: float = 0.0  # seconds from the kill until the run was taken over
    requeued_for: str = ""  # the reason the run was queued again
    resumed_steps: list[int] = field(default_factory=list)  # steps logged after that
    health: list[list[dict[str, Any]]] = field(default_factory=list)
    endpoint: list[str] = field(default_factory=list)  # "refused", "hung" or a status
    platform: list[str] = field(default_factory=list)  # the same through the server


def _watch(url: str, seen: list[str], stop: threading.Event, token: str = "") -> None:
    timeout = httpx.Timeout(HANG_SECONDS, connect=HANG_SECONDS)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    while not stop.is_set():
        try:
            reply = httpx.post(
                url, json=oip_body(np.ones((1, 32))), headers=headers, timeout=timeout
            )
            retry = "+retry-after" if reply.headers.get("retry-after") else ""
            seen.append(f"{reply.status_code}{retry}")
            if reply.status_code == 200:
                return
        except httpx.ConnectError:
            seen.append("refused")
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # The connection was taken and then cut (a replica of the killed server
            # closing as it goes): refused after the fact, answered at once, not held.
            seen.append("reset")
        except httpx.TimeoutException:
            seen.append("hung")
        time.sleep(0.02)


def _polled(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    root = tmp_path_factory.mktemp("server-kill")
    server = make_server(
        root,
        MODELHUB_TRAIN_LEASE_SECONDS=str(LEASE_SECONDS),
        MODELHUB_TRAIN_HEARTBEAT_SECONDS="0.5",
        MODELHUB_TRAIN_MAX_RUNNING="1",
        MODELHUB_TRAIN_CPUS="1",
        MODELHUB_TRAIN_GPUS="0",
        MODELHUB_SERVE_HEALTH_SECONDS="0.2",
    )
    server.start()
    services = build_services(Settings(home=server.home))
    old = server.proc
    try:
        with Client(server.url, server.token) as client:
            client.register(
                RegisterRequest(name="kept", type="classification"), write_model_a(root / "a1")
            )
        with server.http(timeout=60) as http:
            served = deploy(http, model="kept@1", name="kept", replicas=2)
        assert served["status"] == "running", served
        services.datasets.register(ADMIN, write_blobs(root / "blobs.csv", 2_400), "blobs")
        spec = tabular_spec(
            "interrupted",
            # Long enough that the kill, at the first stored checkpoint, lands mid-run
            # even when a loaded machine stores that checkpoint late.
            max_epochs=8,
            hyperparameters="{batch_size: 8}",
            checkpoint="{every_steps: 50}",
        )
        services.training.create_pipeline(ADMIN, spec)
        with server.http() as http:
            health = http.get("/api/v1/deployments/kept").json()["deployment"]["health"]
        run = services.training.start(ADMIN, "interrupted")
        wait_for(lambda: bool(services.training.checkpoints(ADMIN, run.id)), timeout=120)
        seen = Observed(
            old_replicas={h["pid"] for h in health},
            checkpoint_step=max(c.step for c in services.training.checkpoints(ADMIN, run.id)),
        )
        stop = threading.Event()
        watchers = [
            threading.Thread(
                target=_watch,
                args=(f"{served['endpoint']}/v2/models/kept/infer", seen.endpoint, stop),
            ),
            threading.Thread(
                target=_watch,
                args=(f"{server.url}/v2/models/kept/infer", seen.platform, stop, server.token),
            ),
        ]

        assert old is not None
        assert services.training.get_run(ADMIN, run.id).status is RunStatus.RUNNING
        killed = datetime.now(UTC)
        old.kill()  # not reaped: the pid stays taken (a zombie) through the restart
        for watcher in watchers:
            watcher.start()
        server.start()
        seen.start_seconds = (datetime.now(UTC) - killed).total_seconds()
        with server.http() as http:

            def a_replica_ready() -> bool:
                deployment = http.get("/api/v1/deployments/kept").json()["deployment"]
                seen.health.append(deployment["health"])
                return any(h["ready"] for h in deployment["health"])

            # Each test below asserts its own part: record, do not fail, here.
            _polled(a_replica_ready, timeout=60)
        for watcher in watchers:
            watcher.join(timeout=30)
        stop.set()

        def next_attempt() -> bool:
            return services.training.get_run(ADMIN, run.id).attempts >= 2

        final = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
        if _polled(next_attempt, timeout=LEASE_SECONDS + 20):
            _polled(lambda: services.training.get_run(ADMIN, run.id).status in final, timeout=180)
        seen.run = services.training.get_run(ADMIN, run.id)
        events = all_events(services, run.id)
        requeued = [i for i, e in enumerate(events) if e.data.get("status") == "queued"][-1]
        seen.requeued_for = str(events[requeued].data.get("reason"))
        seen.resumed_after = (events[requeued].at - killed).total_seconds()
        seen.resumed_steps = [
            point["step"]
            for event in events[requeued:]
            if event.kind == "metrics"
            for point in event.data["points"]
        ]
        yield seen
    finally:
        services.close()
        server.stop()
        if old is not None and old.poll() is None:
            old.kill()
        if old is not None:
            old.wait()


def test_a_run_training_at_the_kill_resumes_from_its_checkpoint_within_the_lease(
    observed: Observed,
) -> None:
    run = observed.run
    assert run is not None and run.status is RunStatus.COMPLETED, run
    assert run.attempts == 2 and run.result_version == 1
    # Taken over once its lease ran out: the lease, or the new server's start when
    # that took longer, and one heartbeat on top (slack for a loaded machine).
    assert observed.resumed_after < max(LEASE_SECONDS, observed.start_seconds) + 2
    assert "lease" in observed.requeued_for
    # It went on from its checkpoint rather than from step 0.
    assert observed.resumed_steps and min(observed.resumed_steps) > observed.checkpoint_step


def test_health_after_a_restart_never_shows_the_killed_servers_replicas(
    observed: Observed,
) -> None:
    assert observed.old_replicas and observed.health
    for health in observed.health:
        stale = [h for h in health if h["pid"] in observed.old_replicas]
        assert stale == [], health
        assert all(h["live"] for h in health if h["ready"])


def test_the_endpoint_refuses_or_answers_but_never_holds_a_request_after_a_restart(
    observed: Observed,
) -> None:
    assert observed.endpoint and observed.endpoint[-1] == "200", observed.endpoint
    assert "hung" not in observed.endpoint, observed.endpoint
    assert set(observed.endpoint) <= {"refused", "reset", "503+retry-after", "200"}, (
        observed.endpoint
    )


def test_the_platform_route_answers_503_with_retry_after_until_a_replica_is_ready(
    observed: Observed,
) -> None:
    assert observed.platform and observed.platform[-1] == "200", observed.platform
    # Refused while the server itself starts; then 503 + Retry-After, never a hang.
    assert set(observed.platform) <= {"refused", "503+retry-after", "200"}, observed.platform
