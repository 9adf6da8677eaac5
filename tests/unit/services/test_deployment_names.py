"""A model's name reaches only that model's deployments, whatever deployments are called."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelhub.domain.deployments import Deployment, DeploymentStatus, Environment, TrafficShare
from modelhub.errors import Conflict, NotFound
from modelhub.services import Services
from modelhub.services.registry import RegisterRequest
from modelhub.stores.metadata.base import AuditDraft
from tests.stores import stores_of

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def live(services: Services, name: str, model: str, environment: Environment) -> None:
    """A running deployment as the store holds it (no replicas are needed to route)."""
    with stores_of(services) as stores:
        stores.metadata.create_deployment(
            Deployment(
                name=name,
                model=model,
                environment=environment,
                traffic=[TrafficShare(version=1, percent=100)],
                replicas=1,
                status=DeploymentStatus.RUNNING,
                endpoint=f"http://127.0.0.1:1/{name}",
                created_by="someone",
                created_at=NOW,
                updated_at=NOW,
            ),
            AuditDraft("someone", "deployments.create", name, {}),
        )


@pytest.fixture
def two_models(services: Services, safetensors_file: Path) -> Services:
    for name, owner in (("victim", "alice"), ("squatter", "bob")):
        services.registry.register(
            RegisterRequest(name=name, type="classification"), safetensors_file, owner
        )
    return services


def test_a_deployment_named_after_another_model_never_gets_its_traffic(
    two_models: Services,
) -> None:
    # Made while "victim" had no model yet, or written around the deploy check.
    live(two_models, "victim", "squatter", Environment.PRODUCTION)
    with pytest.raises(NotFound, match="nothing named 'victim' is deployed"):
        two_models.deployments.route("victim")
    live(two_models, "victim-staging", "victim", Environment.STAGING)
    route = two_models.deployments.route("victim")
    assert route.deployment == "victim-staging"
    assert two_models.deployments.resolve("victim").model == "victim"


def test_deployments_are_still_found_by_their_own_names(two_models: Services) -> None:
    live(two_models, "squatter-prod", "squatter", Environment.PRODUCTION)
    live(two_models, "victim", "victim", Environment.DEVELOPMENT)
    assert two_models.deployments.resolve("squatter-prod").model == "squatter"
    assert two_models.deployments.resolve("squatter").name == "squatter-prod"
    assert two_models.deployments.resolve("victim").name == "victim"


def test_a_new_model_cannot_take_a_live_deployments_name(
    two_models: Services, safetensors_file: Path
) -> None:
    live(two_models, "embedder", "squatter", Environment.PRODUCTION)
    with pytest.raises(Conflict, match="'embedder' is the name of a live deployment of squatter"):
        two_models.registry.register(
            RegisterRequest(name="embedder", type="classification"), safetensors_file, "carol"
        )
    assert two_models.registry.model_owner("embedder") is None
    assert two_models.deployments.resolve("embedder").model == "squatter"
