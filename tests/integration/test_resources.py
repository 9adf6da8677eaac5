"""A deployment's resources hold: checked at deploy, enforced on the real replica process.

This machine (and CI) has cgroup v1 only, so the fallback is what runs here: the
replica pins itself to its CPUs and limits its address space (see modelhub.limits).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelhub.client import Client, RegisterRequest
from modelhub.limits import count_gpus
from tests.integration.conftest import ServerProcess, make_server, running
from tests.integration.serving_helpers import FEATURES_A, deploy, oip_body, write_model_a


def _write_large_model(folder: Path) -> Path:
    """A 32 -> 4096 -> 2048 -> 10 MLP: 32 MiB of weights in its second layer."""
    import torch

    from modelhub.networks import tabular

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = tabular.build_model(32, [4096, 2048], 10)
    classes = [f"c{i}" for i in range(10)]
    tabular.write_output(
        folder, model, FEATURES_A, "label", classes, [4096, 2048], np.zeros(32), np.ones(32)
    )
    return folder


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("resources")
    small = write_model_a(root / "small")
    large = _write_large_model(root / "large")
    # One warm spare: the first replica takes it (its limits travel with its assignment),
    # the next may take the refilled one before its imports are done, or start fresh.
    server = make_server(root, MODELHUB_SERVE_WARM_IMPORTS="torch", MODELHUB_SERVE_WARM_SPARES="1")
    with running(server):
        with Client(server.url, server.token) as client:
            client.register(RegisterRequest(name="small", type="classification"), small)
            client.register(RegisterRequest(name="large", type="classification"), large)
        yield server


@pytest.fixture
def http(srv: ServerProcess) -> Iterator[httpx.Client]:
    with srv.http(timeout=60) as client:
        yield client


def _refused(http: httpx.Client, resources: Any) -> dict[str, Any]:
    reply = http.post(
        "/api/v1/deployments", json={"model": "small", "name": "refused", "resources": resources}
    )
    assert reply.status_code == 400, reply.text
    error: dict[str, Any] = reply.json()["error"]
    return error


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _address_space_limit(pid: int) -> str:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            return line.split()[3]
    raise AssertionError("no address space line")


def test_bad_resources_are_refused_naming_the_field_and_nothing_is_written(
    http: httpx.Client,
) -> None:
    cpus = len(os.sched_getaffinity(0))
    cases: list[tuple[Any, str, str]] = [
        ({"memroy": "1Gi"}, "resources.memroy", "unknown field"),
        ({"memory": "-5Mi"}, "resources.memory", "unreadable size"),
        ({"memory": 2**70}, "resources.memory", "at most"),
        ({"memory": "lots"}, "resources.memory", "unreadable size"),
        ({"cpus": -1}, "resources.cpus", "greater than 0"),
        ({"cpus": 2**64}, "resources.cpus", "less than or equal to 1024"),
        ({"cpus": cpus + 1}, "resources.cpus", f"this machine has {cpus}"),
        ({"gpus": -1}, "resources.gpus", "greater than or equal to 0"),
        ({"gpus": 2**63}, "resources.gpus", "less than or equal to 64"),
    ]
    if count_gpus() == 0:
        cases.append(({"gpus": 1}, "resources.gpus", "this machine has none"))
    for resources, field, words in cases:
        error = _refused(http, resources)
        assert error["details"]["field"] == field, (resources, error)
        assert words in error["message"], (resources, error)
    listed = http.get("/api/v1/deployments", params={"include_stopped": True}).json()
    assert all(d["name"] != "refused" for d in listed)


def test_a_replica_is_pinned_to_its_cpus_and_its_address_space_is_limited(
    http: httpx.Client,
) -> None:
    found = deploy(
        http, model="small", name="small-limited", resources={"memory": "256Mi", "cpus": 1}
    )
    assert found["status"] == "running", found
    assert found["resources"] == {"memory": 256 * 2**20, "cpus": 1.0}
    pid = found["health"][0]["pid"]
    allowed = _status(pid)["Cpus_allowed_list"]
    assert allowed.isdigit() and int(allowed) in os.sched_getaffinity(0), allowed
    # This machine has cgroup v1 only: the replica's health says the fallback holds it.
    assert found["health"][0]["limits"] == (
        "address-space limit and CPU affinity: memory 256 MiB (address space), "
        f"CPUs {allowed} (affinity)"
    )
    limit = _address_space_limit(pid)
    assert limit != "unlimited"
    # The ceiling is the replica's address space once its libraries were imported, plus
    # the limit: more than 256 MiB, yet bounded.
    assert 256 * 2**20 < int(limit) < 16 * 2**30
    rows = np.zeros((2, 32), dtype=np.float32)
    answer = httpx.post(f"{found['endpoint']}/v2/models/small-limited/infer", json=oip_body(rows))
    assert answer.status_code == 200, answer.text
    assert http.post("/api/v1/deployments/small-limited/stop").status_code == 200


def test_a_model_over_the_memory_limit_fails_the_deployment_naming_the_limit(
    http: httpx.Client,
) -> None:
    found = deploy(http, model="large", name="large-limited", resources={"memory": "32Mi"})
    assert found["status"] == "failed", found
    assert "memory limit of 32 MiB" in found["error"], found["error"]
    assert "resources.memory" in found["error"]
    assert found["health"] == []  # its replica was stopped: nothing serves, nothing hangs


def test_a_run_is_pinned_and_an_allocation_past_its_memory_limit_fails_it(
    tmp_path: Path,
) -> None:
    from modelhub.domain.runs import RunStatus
    from tests.integration.training_engine import ADMIN, engine, finished, tabular_spec, with_blobs

    with engine(tmp_path) as services:
        with_blobs(services, tmp_path)
        # 16384 x 16384 floats are 1 GiB in one layer: past the 512 MiB the run may take.
        spec = tabular_spec(
            "greedy",
            hyperparameters="{batch_size: 16, hidden: [16384, 16384]}",
            resources="{cpus: 1, memory: 512MiB}",
        )
        services.training.create_pipeline(ADMIN, spec)
        scheduler = services.training.build_scheduler()
        run = finished(services, services.training.start(ADMIN, "greedy").id, scheduler=scheduler)
        log = services.training.logs(ADMIN, run.id).decode()
    assert run.status is RunStatus.FAILED
    # The worker's own allocation failed (not the scheduler's sampled measure, which
    # says "used N MiB"), and the reason names the limit; a retry would not help.
    assert "out of memory: over its memory limit of 512 MiB" in (run.error or ""), run.error
    assert run.attempts == 1
    pinned = [line for line in log.splitlines() if line.startswith("limits: pinned to CPUs ")]
    assert pinned, log
    assert int(pinned[0].rsplit(" ", 1)[1]) in os.sched_getaffinity(0)
    assert "limits: address space limited to" in log
