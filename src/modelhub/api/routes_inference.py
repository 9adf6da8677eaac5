"""Inference through the platform server: `/v2/...`, `/v1/embeddings`, `/v1/completions`.

These routes authenticate the caller, find the deployment (by its name, or by a
model's name), pick one of its replicas by the deployment's load-balancing strategy
and forward the request untouched, trying the next replica when one is gone. The
deployment's own endpoint serves the same protocol without this hop, and faster;
this route is the one with auth, per-request balancing and failover.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from modelhub import __version__
from modelhub.api.deps import ServicesDep
from modelhub.api.forwarder import Forwarder, ReplicaGone
from modelhub.api.security import InferenceCaller, Public
from modelhub.domain.auth import Caller
from modelhub.domain.bounded_json import MAX_JSON_DEPTH, loads
from modelhub.errors import InvalidInput, PayloadTooLarge, Unavailable
from modelhub.services import Services
from modelhub.services.deployments import Route
from modelhub.serving.balancer import Balancer

router = APIRouter(tags=["inference"])
JSON = "application/json"


@router.get("/v2/health/live")
def live(_: Public) -> dict[str, bool]:
    return {"live": True}


@router.get("/v2/health/ready")
def ready(services: ServicesDep, _: Public) -> dict[str, bool]:
    services.platform.ping()
    return {"ready": True}


@router.get("/v2")
def server_metadata(_: Public) -> dict[str, Any]:
    return {"name": "modelhub", "version": __version__, "extensions": []}


@router.get("/v2/models/{name}")
async def model_metadata(name: str, request: Request, caller: InferenceCaller) -> Response:
    return await _forward_model(request, caller, name, "")


@router.api_route("/v2/models/{name}/{rest:path}", methods=["GET", "POST"])
async def model_call(name: str, rest: str, request: Request, caller: InferenceCaller) -> Response:
    return await _forward_model(request, caller, name, rest)


@router.post("/v1/embeddings")
async def embeddings(request: Request, caller: InferenceCaller) -> Response:
    return await _forward_openai(request, caller, "/v1/embeddings")


@router.post("/v1/completions")
async def completions(request: Request, caller: InferenceCaller) -> Response:
    return await _forward_openai(request, caller, "/v1/completions")


async def _forward_model(request: Request, caller: Caller, name: str, rest: str) -> Response:
    route = await _route(request, name)
    path = f"/v2/models/{route.deployment}" + (f"/{rest}" if rest else "")
    body = await _body(request) if request.method == "POST" else None
    return await _send(request, caller, route, request.method, path, body)


async def _forward_openai(request: Request, caller: Caller, path: str) -> Response:
    raw = await _body(request)
    # bounded depth: the body may be encoded again below, which recurses
    data = loads(raw, max_depth=MAX_JSON_DEPTH)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, str) or not model:
        raise InvalidInput("model is required: the name of a served model", {"field": "model"})
    route = await _route(request, model)
    if route.deployment != model:
        data["model"] = route.deployment
        raw = json.dumps(data).encode()
    return await _send(request, caller, route, "POST", path, raw)


async def _body(request: Request) -> bytes:
    """The request body, refused with 413 before it is held when it is over the limit."""
    services: Services = request.app.state.services
    limit = services.settings.serve_max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body is larger than the {limit} bytes this server accepts", {"limit": limit}
    )


ROUTE_TTL_SECONDS = 1.0


async def _route(request: Request, target: str) -> Route:
    """Where `target` goes, remembered for a second: a replica that went meanwhile is
    skipped by the failover in `_send`, and a change of version happens inside the
    replicas, so a slightly old route still reaches the right model."""
    cache: dict[str, tuple[float, Route]] | None = getattr(request.app.state, "routes", None)
    if cache is None:
        cache = request.app.state.routes = {}
    now = time.monotonic()
    hit = cache.get(target)
    if hit is not None and hit[0] > now:
        return hit[1]
    services: Services = request.app.state.services
    route = await run_in_threadpool(services.deployments.route, target)
    cache[target] = (now + ROUTE_TTL_SECONDS, route)
    return route


def _forwarder(request: Request) -> Forwarder:
    forwarder: Forwarder | None = getattr(request.app.state, "forwarder", None)
    if forwarder is None:
        forwarder = request.app.state.forwarder = Forwarder()
    return forwarder


def _balancer(request: Request) -> Balancer:
    balancer: Balancer | None = getattr(request.app.state, "balancer", None)
    if balancer is None:
        balancer = Balancer()
        request.app.state.balancer = balancer
    return balancer


async def _send(
    request: Request, caller: Caller, route: Route, method: str, path: str, body: bytes | None
) -> Response:
    balancer = _balancer(request)
    candidates = balancer.order(route.deployment, route.replicas, route.load_balancing)
    candidates.append(route.endpoint)  # the shared endpoint: any live replica answers
    headers = {"content-type": JSON, "x-modelhub-caller": caller.name}
    target = quote(path, safe="/")
    last_error: Exception | None = None
    for base in candidates:
        balancer.begin(base)
        try:
            status, content = await _forwarder(request).send(base, method, target, body, headers)
        except ReplicaGone as exc:
            last_error = exc  # that replica is gone; the request never ran there
            continue
        finally:
            balancer.end(base)
        return Response(content, status, media_type=JSON)
    raise Unavailable(
        f"no replica of {route.deployment} answered: {last_error}",
        {"deployment": route.deployment},
    )
