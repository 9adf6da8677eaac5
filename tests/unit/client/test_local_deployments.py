"""LocalClient's deployment calls on a real home: recorded, never waited on, gated alike."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelhub.client import DeployRequest, RegisterRequest
from modelhub.client.local import LocalClient
from modelhub.domain.deployments import Autoscale, DeploymentStatus
from modelhub.errors import IllegalTransition, InvalidInput, NotFound
from modelhub.samples import write_mlp_safetensors
from modelhub.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[LocalClient]:
    local = LocalClient(Settings(home=tmp_path / "home"), actor="ada")
    local.register(
        RegisterRequest(name="intents", type="custom"),
        write_mlp_safetensors(tmp_path / "w.safetensors"),
    )
    yield local
    local.close()


def test_deploy_records_and_nothing_runs_it(client: LocalClient) -> None:
    assert client.serves_deployments is False
    created = client.deploy(
        DeployRequest(
            ref="intents@1",
            environment="staging",
            autoscale=Autoscale(min_replicas=1, max_replicas=3),
        )
    )
    assert (created.name, created.model, created.versions) == ("intents-staging", "intents", [1])
    assert created.status is DeploymentStatus.DEPLOYING and created.created_by == "ada"
    assert created.autoscale == Autoscale(min_replicas=1, max_replicas=3)
    started = time.monotonic()
    assert client.wait_deployment("intents-staging", 60).status is DeploymentStatus.DEPLOYING
    assert time.monotonic() - started < 5  # local mode never waits for replicas
    deployment, usage = client.get_deployment("intents-staging")
    assert deployment == created.deployment() and usage == []
    assert [d.name for d in client.list_deployments(environment="staging")] == ["intents-staging"]
    assert client.list_deployments(environment="production") == []
    assert [d.name for d in client.list_deployments(model="intents")] == ["intents-staging"]


def test_scale_and_stop(client: LocalClient) -> None:
    client.deploy(
        DeployRequest(
            ref="intents", name="ranker", autoscale=Autoscale(min_replicas=1, max_replicas=4)
        )
    )
    scaled = client.scale_deployment("ranker", 3)
    assert scaled.replicas == 3 and scaled.autoscale is None
    assert client.stop_deployment("ranker").status is DeploymentStatus.STOPPED
    assert client.list_deployments() == []
    assert [d.name for d in client.list_deployments(include_stopped=True)] == ["ranker"]
    with pytest.raises(IllegalTransition):
        client.scale_deployment("ranker", 2)


def test_bad_requests(client: LocalClient) -> None:
    with pytest.raises(NotFound):
        client.get_deployment("nothing-here")
    with pytest.raises(InvalidInput, match="unknown environment"):
        client.deploy(DeployRequest(ref="intents", environment="moon"))
    with pytest.raises(InvalidInput, match="unknown load_balancing"):
        client.deploy(DeployRequest(ref="intents", load_balancing="random"))


def test_production_gate_and_its_override(client: LocalClient) -> None:
    with pytest.raises(IllegalTransition, match="not approved"):
        client.deploy(DeployRequest(ref="intents@1", environment="production"))
    forced = client.deploy(
        DeployRequest(ref="intents@1", environment="production", override_approval=True)
    )
    assert forced.approval_override and forced.name == "intents"
    events = client.audit_events(action="deployments.create")
    assert events[0].details["approval_override"] == "pending"


def test_the_canary_status_of_a_deployment_without_one_is_empty(client: LocalClient) -> None:
    client.deploy(DeployRequest(ref="intents@1"))
    status = client.canary_status("intents-development")
    assert status.deployment == "intents-development"
    assert (status.analysis, status.latest, status.decisions) == (None, None, [])
    with pytest.raises(NotFound):
        client.canary_status("nowhere")
