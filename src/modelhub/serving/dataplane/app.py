"""The data plane: a bare ASGI app over a ModelHost, built for requests per second.

It speaks the Open Inference Protocol V2 (REST) and the OpenAI-style
`/v1/embeddings` and `/v1/completions`. No framework sits between the socket and
the model: routing is string work, bodies are parsed once, tensors go straight to
the batcher. The control plane (FastAPI, `/api/v1`) is elsewhere.

Replica administration (`/_replica/...`: what to serve, usage) answers only on the
replica's private port and only with the supervisor's secret.

Every request has an id: the client's `x-request-id` header when it is a plain
token, else one this replica makes (a random prefix per process and a counter);
an OIP body's `id` takes its place for that request. Every response carries it in
`x-request-id`, an OIP answer also as its `id`. The prediction log (when the
deployment has one) samples requests by that id.
"""

from __future__ import annotations

import hmac
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from modelhub.domain.bounded_json import MAX_JSON_DEPTH, loads
from modelhub.domain.context import REQUEST_ID
from modelhub.errors import InvalidInput, ModelhubError, NotFound, PayloadTooLarge
from modelhub.serving.codec import model_metadata
from modelhub.serving.dataplane import openai
from modelhub.serving.host import ModelHost, ServedModel, Slot, Tally
from modelhub.web.status import HTTP_STATUS

if TYPE_CHECKING:
    from modelhub.serving.predlog import PredictionLog

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
METRICS_HEADERS = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
MODELS_PREFIX = "/v2/models/"
SERVER_NAME = "modelhub"
REQUEST_ID_KEY = "modelhub.request_id"  # where a request's id lives in its ASGI scope
CALLER_KEY = "modelhub.caller"  # the caller a token gate verified (gate.py)


def _json(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def error_payload(exc: ModelhubError) -> bytes:
    return _json({"error": exc.to_dict()})


class DataPlane:
    def __init__(
        self,
        host: ModelHost,
        max_body_bytes: int,
        private_port: int | None = None,
        secret: str | None = None,
        version: str = "",
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self.host = host
        self.max_body = max_body_bytes
        self.private_port = private_port
        self.secret = secret.encode() if secret else None
        self.version = version
        self.prediction_log = prediction_log
        self._id_prefix = secrets.token_hex(6) + "-"
        self._ids = itertools.count(1)

    def configure_log(self, models: list[ServedModel]) -> None:
        """Have the prediction log sample what `models` ask for (nothing when absent)."""
        if self.prediction_log is not None:
            self.prediction_log.configure([m.log for m in models if m.log is not None])

    def request_id(self, scope: Scope) -> str:
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                text = value.decode("latin-1")
                if REQUEST_ID.fullmatch(text):
                    return str(text)
                break
        return f"{self._id_prefix}{next(self._ids):x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        scope[REQUEST_ID_KEY] = self.request_id(scope)
        headers = JSON_HEADERS
        try:
            if scope["path"] == "/metrics" and scope["method"] == "GET":
                from modelhub.serving.dataplane.metrics import render_metrics

                status, payload, headers = (
                    200,
                    render_metrics(self.host, self.prediction_log),
                    METRICS_HEADERS,
                )
            else:
                status, payload = await self._route(scope, receive)
        except ModelhubError as exc:
            status, payload = HTTP_STATUS.get(exc.code, 500), error_payload(exc)
        request_id: str = scope[REQUEST_ID_KEY]
        if not REQUEST_ID.fullmatch(request_id):  # a body's id that is no header token
            request_id = f"{self._id_prefix}{next(self._ids):x}"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    *headers,
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _route(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith(MODELS_PREFIX):
            return await self._model_route(scope, receive, path[len(MODELS_PREFIX) :], method)
        if method == "POST" and path == "/v1/embeddings":
            return 200, await openai.embeddings(self, scope, await self.body(scope, receive))
        if method == "POST" and path == "/v1/completions":
            return 200, await openai.completions(self, scope, await self.body(scope, receive))
        if method == "GET":
            if path == "/v2/health/live":
                return 200, b'{"live":true}'
            if path == "/v2/health/ready":
                ready = self.host.ready
                return (200 if ready else 503), _json({"ready": ready})
            if path == "/v2":
                return 200, _json({"name": SERVER_NAME, "version": self.version, "extensions": []})
        if path.startswith("/_replica/"):
            return await self._admin(scope, receive, path, method)
        raise NotFound(f"no route {method} {path}", {"path": path})

    # -- /v2/models/... ---------------------------------------------------------

    async def _model_route(
        self, scope: Scope, receive: Receive, rest: str, method: str
    ) -> tuple[int, bytes]:
        parts = rest.split("/")
        name = parts[0]
        version: int | None = None
        action = ""
        if len(parts) >= 3 and parts[1] == "versions":
            version = _version_number(parts[2])
            action = "/".join(parts[3:])
        else:
            action = "/".join(parts[1:])
        if action == "infer" and method == "POST":
            body = await self.body(scope, receive)
            return 200, await self.infer(scope, name, version, body)
        if method != "GET" or action not in ("", "ready"):
            raise NotFound(f"no route {method} {scope['path']}", {"path": scope["path"]})
        if action == "ready":
            slot = self.host.pick(name, version)
            ready = slot.runtime is not None
            return (200 if ready else 503), _json({"name": name, "ready": ready})
        return 200, await self._metadata(name, version)

    async def _metadata(self, name: str, version: int | None) -> bytes:
        slots = self.host.versions(name)
        slot = self.host.pick(name, version) if version is not None else slots[0]
        runtime = await self.host.runtime(slot)
        served = [str(s.version) for s in slots]
        return _json(model_metadata(name, served, runtime.info.runtime, runtime.info.signature))

    async def infer(self, scope: Scope, name: str, version: int | None, body: bytes) -> bytes:
        slot = self.host.pick(name, version)
        log = self.prediction_log
        keep = log is not None and log.sample(name, slot.version)
        started = time.perf_counter() if keep else 0.0
        with self.host.counted(slot, caller_of(scope)) as tally:
            tally.request_id = scope[REQUEST_ID_KEY]
            tally.keep = keep
            payload = await self.host.answer(slot, body, tally)
        scope[REQUEST_ID_KEY] = tally.request_id
        if keep:
            self._log(slot, tally, started)
        return payload

    def _log(self, slot: Slot, tally: Tally, started: float) -> None:
        from modelhub.serving.predlog import Entry

        assert self.prediction_log is not None and tally.request_id is not None
        self.prediction_log.offer(
            Entry(
                slot.name,
                slot.version,
                tally.request_id,
                time.time(),
                (time.perf_counter() - started) * 1000.0,
                tally.rows,
                tally.inputs or {},
                tally.outputs or {},
            )
        )

    async def run_rows(
        self,
        scope: Scope,
        slot: Slot,
        inputs: dict[str, Any],
        rows: int,
        parameters: dict[str, Any],
    ) -> dict[str, Any]:
        """Run already-decoded rows through a slot, counted (and sampled for the
        prediction log) like an infer request."""
        log = self.prediction_log
        keep = log is not None and log.sample(slot.name, slot.version)
        started = time.perf_counter() if keep else 0.0
        with self.host.counted(slot, caller_of(scope)) as tally:
            tally.rows = rows
            tally.request_id = scope[REQUEST_ID_KEY]
            outputs = await self.host.infer(slot, inputs, rows, parameters)
        if keep:
            tally.inputs = inputs
            tally.outputs = {k: v for k, v in outputs.items() if hasattr(v, "shape")}
            self._log(slot, tally, started)
        return outputs

    # -- bodies -----------------------------------------------------------------

    async def body(self, scope: Scope, receive: Receive) -> bytes:
        for key, value in scope["headers"]:
            if key == b"content-length" and int(value) > self.max_body:
                raise self._too_large()
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            if len(body) > self.max_body:
                raise self._too_large()
            return body
        chunks = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise self._too_large()
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body is larger than the {self.max_body} bytes this server accepts",
            {"limit": self.max_body},
        )

    # -- replica administration -------------------------------------------------

    async def _admin(
        self, scope: Scope, receive: Receive, path: str, method: str
    ) -> tuple[int, bytes]:
        if not self._is_admin(scope):
            raise NotFound(f"no route {method} {path}", {"path": path})
        if path == "/_replica/load" and method == "GET":
            host = self.host
            return 200, _json(
                {"in_flight": host.in_flight, "ready": host.ready, "draining": host.draining}
            )
        if path == "/_replica/stats" and method == "GET":
            return 200, _json(self.stats())
        if path == "/_replica/models" and method == "PUT":
            wanted = loads(await self.body(scope, receive), max_depth=MAX_JSON_DEPTH)
            try:
                models = [ServedModel.from_json(item) for item in wanted["models"]]
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"bad model list: {exc}") from exc
            self.host.apply(models)
            self.configure_log(models)
            await self.host.preload()
            return 200, _json(self.stats())
        raise NotFound(f"no route {method} {path}", {"path": path})

    def stats(self) -> dict[str, Any]:
        """The host's stats and the prediction log's counters (sampled, dropped ...)."""
        stats = self.host.stats()
        if self.prediction_log is not None:
            stats["prediction_log"] = self.prediction_log.stats()
        return stats

    def _is_admin(self, scope: Scope) -> bool:
        server = scope.get("server")
        if self.secret is None or server is None or server[1] != self.private_port:
            return False
        for key, value in scope["headers"]:
            if key == b"x-replica-secret":
                return hmac.compare_digest(value, self.secret)
        return False


def caller_of(scope: Scope) -> str | None:
    """Who asked: the token gate's verified caller; else the caller the control plane
    authenticated; else the client host."""
    verified = scope.get(CALLER_KEY)
    if verified is not None:
        return str(verified)
    for key, value in scope["headers"]:
        if key == b"x-modelhub-caller":
            return str(value.decode("latin-1"))
    client = scope.get("client")
    return f"host:{client[0]}" if client else None


def _version_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(
            f"version must be a number, not {text!r}", {"field": "version", "value": text}
        ) from None
