"""The platform server's inference service over real stores: its route cache, its
failover when no replica answers, and the bodies it refuses before any lookup."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import anyio
import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.deployments import Environment
from modelhub.errors import InvalidInput, NotFound, Unavailable
from modelhub.services import Services
from modelhub.services.inference import ROUTE_TTL_SECONDS, InferenceService
from modelhub.services.registry import RegisterRequest
from tests.stores import Stores
from tests.unit.services.test_deployment_names import live

ADMIN = Caller(name="admin", role=Role.ADMIN)
T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(scenario)


@pytest.fixture
def served(services: Services, safetensors_file: Path) -> Services:
    """Model `m` with a running deployment `m` whose endpoint (port 1) nobody listens on."""
    services.registry.register(
        RegisterRequest(name="m", type="classification"), safetensors_file, "alice"
    )
    live(services, "m", "m", Environment.PRODUCTION)
    return services


def test_a_route_is_remembered_for_its_ttl_then_looked_up_again(
    served: Services, stores: Stores
) -> None:
    clock = Clock()
    inference = InferenceService(served.deployments, clock=clock)

    async def scenario() -> None:
        first = await inference.route("m")
        assert (first.deployment, first.endpoint) == ("m", "http://127.0.0.1:1/m")
        stores.metadata.update_deployment("m", {"status": "stopped"})
        clock.now += ROUTE_TTL_SECONDS / 2
        assert await inference.route("m") == first  # remembered
        clock.now += ROUTE_TTL_SECONDS
        with pytest.raises(NotFound):
            await inference.route("m")
        await inference.close()

    run(scenario)


def test_a_request_no_replica_answers_is_unavailable_and_names_the_deployment(
    served: Services,
) -> None:
    inference = InferenceService(served.deployments)

    async def scenario() -> None:
        with pytest.raises(Unavailable, match="no replica of m answered") as caught:
            await inference.model(ADMIN, "m", "POST", "infer", b"{}")
        assert caught.value.details == {"deployment": "m"}
        await inference.close()

    run(scenario)


@pytest.mark.parametrize("payload", [{}, {"model": ""}, {"model": 3}, ["m"]])
def test_an_openai_body_without_a_model_name_is_refused_before_any_lookup(
    services: Services, payload: object
) -> None:
    inference = InferenceService(services.deployments)

    async def scenario() -> None:
        with pytest.raises(InvalidInput, match="model is required") as caught:
            await inference.openai(ADMIN, "/v1/embeddings", payload, b"")
        assert caught.value.details == {"field": "model"}
        await inference.close()

    run(scenario)
