"""Inference through the platform server: find the deployment a request names, pick one
of its replicas by the deployment's load-balancing strategy, and forward the request
untouched, trying the next replica when one is gone.

The deployment's own endpoint serves the same protocol without this hop, and faster;
this path is the one with auth (done by the transport), per-request balancing and
failover. One service per server holds the route cache, the balancer's counts and the
forwarder's pooled connections; `close` releases the connections.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import anyio.to_thread

from modelhub.domain import context
from modelhub.domain.auth import Caller
from modelhub.errors import InvalidInput, Unavailable
from modelhub.services.deployments import DeploymentService, Route
from modelhub.serving.balancer import Balancer
from modelhub.serving.forwarder import Forwarder, ReplicaGone

ROUTE_TTL_SECONDS = 1.0
JSON = "application/json"


@dataclass(frozen=True)
class Reply:
    """What the replica answered, to be passed on as it is."""

    status: int
    body: bytes


class InferenceService:
    def __init__(
        self,
        deployments: DeploymentService,
        forwarder: Forwarder | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.deployments = deployments
        self._forwarder = forwarder or Forwarder()
        self._balancer = Balancer()
        self._routes: dict[str, tuple[float, Route]] = {}
        self._clock = clock

    async def model(
        self, caller: Caller, name: str, method: str, rest: str, body: bytes | None
    ) -> Reply:
        """An Open Inference Protocol call (`/v2/models/{name}/{rest}`) for deployment
        or model `name`."""
        route = await self.route(name)
        path = f"/v2/models/{route.deployment}" + (f"/{rest}" if rest else "")
        return await self._send(caller, route, method, path, body)

    async def openai(self, caller: Caller, path: str, payload: Any, raw: bytes) -> Reply:
        """An OpenAI-style call (`/v1/embeddings`, `/v1/completions`): `payload` is the
        parsed body, `raw` its bytes; its `model` names a deployment or a model."""
        model = payload.get("model") if isinstance(payload, dict) else None
        if not isinstance(model, str) or not model:
            raise InvalidInput("model is required: the name of a served model", {"field": "model"})
        route = await self.route(model)
        if route.deployment != model:
            payload["model"] = route.deployment
            raw = json.dumps(payload).encode()
        return await self._send(caller, route, "POST", path, raw)

    async def route(self, target: str) -> Route:
        """Where `target` goes, remembered for a second: a replica that went meanwhile is
        skipped by the failover in `_send`, and a change of version happens inside the
        replicas, so a slightly old route still reaches the right model."""
        now = self._clock()
        hit = self._routes.get(target)
        if hit is not None and hit[0] > now:
            return hit[1]
        route = await anyio.to_thread.run_sync(self.deployments.route, target)
        self._routes[target] = (now + ROUTE_TTL_SECONDS, route)
        return route

    async def close(self) -> None:
        await self._forwarder.close()

    async def _send(
        self, caller: Caller, route: Route, method: str, path: str, body: bytes | None
    ) -> Reply:
        balancer = self._balancer
        candidates = balancer.order(route.deployment, route.replicas, route.load_balancing)
        candidates.append(route.endpoint)  # the shared endpoint: any live replica answers
        headers = {"content-type": JSON, "x-modelhub-caller": caller.name}
        request_id = context.request_id.get()
        if request_id is not None:  # the replica logs this request under the platform's id
            headers["x-request-id"] = request_id
        target = quote(path, safe="/")
        last_error: Exception | None = None
        for base in candidates:
            balancer.begin(base)
            try:
                status, content = await self._forwarder.send(base, method, target, body, headers)
            except ReplicaGone as exc:
                last_error = exc  # that replica is gone; the request never ran there
                continue
            finally:
                balancer.end(base)
            return Reply(status, content)
        raise Unavailable(
            f"no replica of {route.deployment} answered: {last_error}",
            {"deployment": route.deployment},
        )
