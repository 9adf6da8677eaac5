"""The deployments half of `modelhub.Client`: /api/v1/deployments and inference over /v2."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from modelhub.client.deployment_wait import poll_until_settled
from modelhub.client.http_connection import HttpConnection, request_body
from modelhub.domain.canary import CanaryStatus
from modelhub.domain.deployments import Deployment, UsageRecord
from modelhub.domain.names import check_model_name
from modelhub.domain.optimisation import DeploymentReply
from modelhub.domain.pools import Pool
from modelhub.services.deployments import DeployRequest, RolloutRequest

JSON_HEADERS = {"content-type": "application/json"}


class DeploymentCalls(HttpConnection):
    """The deployment and inference calls of `Client`."""

    # The server runs the replicas of what it is asked to deploy.
    serves_deployments = True

    def deploy(self, request: DeployRequest) -> DeploymentReply:
        body = {"model": request.ref, **request_body(request, "ref")}
        return DeploymentReply.model_validate(
            self._request("POST", "/api/v1/deployments", json=body)
        )

    def list_deployments(
        self,
        environment: str | None = None,
        model: str | None = None,
        include_stopped: bool = False,
    ) -> list[Deployment]:
        params: dict[str, str | bool] = {"all": include_stopped}
        if environment:
            params["environment"] = environment
        if model:
            params["model"] = model
        data = self._request("GET", "/api/v1/deployments", params=params)
        return [Deployment.model_validate(d) for d in data]

    def get_deployment(self, name: str) -> tuple[Deployment, list[UsageRecord]]:
        data = self._request("GET", _deployment_path(name))
        usage = [UsageRecord.model_validate(u) for u in data["usage"]]
        return Deployment.model_validate(data["deployment"]), usage

    def list_pools(self) -> list[Pool]:
        return [Pool.model_validate(p) for p in self._request("GET", "/api/v1/pools")]

    def get_pool(self, name: str) -> Pool:
        return Pool.model_validate(self._request("GET", f"/api/v1/pools/{quote(name, safe='')}"))

    def canary_status(self, name: str) -> CanaryStatus:
        data = self._request("GET", _deployment_path(name) + "/canary")
        return CanaryStatus.model_validate(data)

    def scale_deployment(self, name: str, replicas: int) -> Deployment:
        body = {"replicas": replicas}
        return self._change(name, "scale", body)

    def update_deployment(self, request: RolloutRequest) -> Deployment:
        return self._change(request.deployment, "update", request_body(request, "deployment"))

    def promote_deployment(self, name: str) -> Deployment:
        return self._change(name, "promote")

    def rollback_deployment(self, name: str) -> Deployment:
        return self._change(name, "rollback")

    def stop_deployment(self, name: str) -> Deployment:
        return self._change(name, "stop")

    def wait_deployment(self, name: str, timeout: float, canary_settles: bool = True) -> Deployment:
        return poll_until_settled(
            lambda: self.get_deployment(name)[0], timeout, canary_settles=canary_settles
        )

    def predict(
        self, target: str, body: bytes | dict[str, Any], version: int | None = None
    ) -> dict[str, Any]:
        path = f"/v2/models/{quote(check_model_name(target), safe='')}"
        if version is not None:
            path += f"/versions/{int(version)}"
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer: dict[str, Any] = self._request(
            "POST", f"{path}/infer", content=content, headers=JSON_HEADERS
        )
        return answer

    def _change(self, name: str, verb: str, body: dict[str, Any] | None = None) -> Deployment:
        data = self._request("POST", f"{_deployment_path(name)}/{verb}", json=body or {})
        return Deployment.model_validate(data)


def _deployment_path(name: str) -> str:
    # Checked here too: an encoded '/' in a name would reach a different route.
    return f"/api/v1/deployments/{quote(check_model_name(name), safe='')}"
