"""Inference through the platform server: `/v2/...`, `/v1/embeddings`, `/v1/completions`.

These routes authenticate the caller, read the body within the server's limit and
hand the request to the inference service, which routes, balances and fails over
(see services/inference.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from modelhub import __version__
from modelhub.api.deps import InferenceDep, ServicesDep
from modelhub.api.security import InferenceCaller, Public
from modelhub.domain.bounded_json import MAX_JSON_DEPTH, loads
from modelhub.errors import PayloadTooLarge
from modelhub.services import Services
from modelhub.services.inference import Reply

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
async def model_metadata(name: str, caller: InferenceCaller, inference: InferenceDep) -> Response:
    return _render(await inference.model(caller, name, "GET", "", None))


@router.api_route("/v2/models/{name}/{rest:path}", methods=["GET", "POST"])
async def model_call(
    name: str, rest: str, request: Request, caller: InferenceCaller, inference: InferenceDep
) -> Response:
    body = await _body(request) if request.method == "POST" else None
    return _render(await inference.model(caller, name, request.method, rest, body))


@router.post("/v1/embeddings")
async def embeddings(
    request: Request, caller: InferenceCaller, inference: InferenceDep
) -> Response:
    raw = await _body(request)
    # bounded depth: the body may be encoded again by the service, which recurses
    payload = loads(raw, max_depth=MAX_JSON_DEPTH)
    return _render(await inference.openai(caller, "/v1/embeddings", payload, raw))


@router.post("/v1/completions")
async def completions(
    request: Request, caller: InferenceCaller, inference: InferenceDep
) -> Response:
    raw = await _body(request)
    payload = loads(raw, max_depth=MAX_JSON_DEPTH)
    return _render(await inference.openai(caller, "/v1/completions", payload, raw))


def _render(reply: Reply) -> Response:
    return Response(reply.body, reply.status, media_type=JSON)


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
