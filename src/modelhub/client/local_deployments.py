"""The deployments half of `LocalClient`: deployment records on the local home.

Local mode runs no replica processes: `deploy`, `scale`, `update` and the rest
record the change, and a `modelhub server` on the same home serves it when it
starts (`serves_deployments` tells the CLI to say so). `predict` answers in this
process: it loads the deployed version, runs one request and unloads it.
"""

from __future__ import annotations

import json
from typing import Any

from modelhub.client.local_home import LocalHome
from modelhub.domain.canary import CanaryStatus
from modelhub.domain.deployments import Deployment, Environment, UsageRecord
from modelhub.domain.enums import parse_enum
from modelhub.domain.optimisation import DeploymentReply
from modelhub.domain.pools import Pool
from modelhub.services.deployments import DeployRequest, RolloutRequest


class LocalDeploymentCalls(LocalHome):
    """The deployment calls of `LocalClient`."""

    serves_deployments = False

    def deploy(self, request: DeployRequest) -> DeploymentReply:
        return self.services.deployments.deploy(self.caller, request)

    def list_deployments(
        self,
        environment: str | None = None,
        model: str | None = None,
        include_stopped: bool = False,
    ) -> list[Deployment]:
        chosen = parse_enum(Environment, environment, "environment") if environment else None
        return self.services.deployments.list_all(self.caller, chosen, model, include_stopped)

    def get_deployment(self, name: str) -> tuple[Deployment, list[UsageRecord]]:
        deployments = self.services.deployments
        return deployments.get(self.caller, name), deployments.usage(self.caller, name)

    def list_pools(self) -> list[Pool]:
        return self.services.deployments.pools(self.caller)

    def get_pool(self, name: str) -> Pool:
        return self.services.deployments.pool(self.caller, name)

    def canary_status(self, name: str) -> CanaryStatus:
        return self.services.canary.status(self.caller, name)

    def scale_deployment(self, name: str, replicas: int) -> Deployment:
        return self.services.deployments.scale(self.caller, name, replicas)

    def update_deployment(self, request: RolloutRequest) -> Deployment:
        return self.services.deployments.update(self.caller, request)

    def promote_deployment(self, name: str) -> Deployment:
        return self.services.deployments.promote(self.caller, name)

    def rollback_deployment(self, name: str) -> Deployment:
        return self.services.deployments.rollback(self.caller, name)

    def stop_deployment(self, name: str) -> Deployment:
        return self.services.deployments.stop(self.caller, name)

    def wait_deployment(self, name: str, timeout: float, canary_settles: bool = True) -> Deployment:
        """At once: nothing in local mode changes a deployment after the call returns."""
        return self.services.deployments.get(self.caller, name)

    def predict(
        self, target: str, body: bytes | dict[str, Any], version: int | None = None
    ) -> dict[str, Any]:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = self.services.deployments.predict_here(self.caller, target, content, version)
        decoded: dict[str, Any] = json.loads(answer)
        return decoded
