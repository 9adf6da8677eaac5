"""The token gate of a replica: what stands before the data plane on connections that
came through the data-plane listener (see gateway.py), never on the loopback endpoint.

Every request on such a connection shows a token. The gate keeps the SHA-256 of the
`Authorization` headers the server verified for this replica's deployment, each for
`ttl` seconds (1 s by default): a request whose header is in that cache costs one
hash and one dictionary lookup. Past half its time a header in use is asked about
again in the background, so that busy callers do not all wait on one question each
`ttl`; none is trusted past `ttl` from its last answer. Any other header is asked of
the server over a Unix socket (one question per header at a time, however many
requests wait on it); the server authenticates, authorizes `inference` and audits a
refusal, as on the platform route.
Refusals are never cached, so each one is audited. When a token is revoked (or a
user changed) the server tells every replica to drop its cache; a revoked token
stops working here at once, and within `ttl` whatever happens. Usage is counted
under the caller's name as the server verified it (in the request's scope); an
`x-modelhub-caller` header the client sent is ignored.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelhub.serving.dataplane.app import (
    CALLER_KEY,
    JSON_HEADERS,
    DataPlane,
    Receive,
    Scope,
    Send,
)

MAX_AUTHORIZATION_BYTES = 4096  # longer headers are refused without a lookup
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Verdict:
    """The server's answer on one token for one deployment: 200 with the caller's name,
    else 401 or 403 with the reason (already audited by the server)."""

    status: int
    caller: str = ""
    code: str = ""
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "caller": self.caller,
            "code": self.code,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Verdict:
        return cls(int(data["status"]), data["caller"], data["code"], data["message"])


@dataclass(frozen=True)
class Question:
    """What a replica asks the server about one request's token."""

    authorization: str | None  # the header as sent; None when absent
    deployment: str
    target: str  # "POST /v2/models/x/infer", for the audit record
    client: str
    too_long: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "authorization": self.authorization,
            "deployment": self.deployment,
            "target": self.target,
            "client": self.client,
            "too_long": self.too_long,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Question:
        authorization = data.get("authorization")
        return cls(
            authorization if isinstance(authorization, str) else None,
            str(data["deployment"]),
            str(data["target"])[:300],
            str(data["client"])[:100],
            bool(data.get("too_long")),
        )


class VerifyClient:
    """One persistent connection to the server's verification socket; answers come
    back in order, each matched to its question by id."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._waiting: dict[int, asyncio.Future[Verdict]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()
        self.on_forget: Callable[[], None] = lambda: None

    async def ask(self, question: Question) -> Verdict:
        writer = await self._connect()
        number = next(self._ids)
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        writer.write(json.dumps({"id": number, **question.to_json()}).encode() + b"\n")
        try:
            return await asyncio.wait_for(future, 30.0)
        finally:
            self._waiting.pop(number, None)

    async def _connect(self) -> asyncio.StreamWriter:
        async with self._lock:
            if self._connection is None or self._connection[1].is_closing():
                reader, writer = await asyncio.open_unix_connection(str(self.path))
                self._connection = (reader, writer)
                asyncio.get_running_loop().create_task(self._read(reader))
            return self._connection[1]

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                data = json.loads(line)
                if data.get("forget"):  # a token was revoked: trust none until asked again
                    self.on_forget()
                    continue
                future = self._waiting.get(int(data["id"]))
                if future is not None and not future.done():
                    future.set_result(Verdict.from_json(data))
        finally:
            self._connection = None
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ConnectionError("the server's verifier went away"))


class TokenCache:
    """Verified `Authorization` headers (their SHA-256) for `ttl` seconds."""

    def __init__(
        self,
        ask: Callable[[Question], Any],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask = ask
        self.ttl = ttl
        self._clock = clock
        self._verified: dict[bytes, tuple[float, str]] = {}  # digest -> (until, caller)
        self._asking: dict[bytes, asyncio.Future[Verdict]] = {}

    def cached(self, authorization: bytes | None) -> tuple[str | None, bool]:
        """(the caller's name when this header was verified within `ttl`, else None;
        whether to ask again now, in the background: past half its time, so that busy
        callers never wait on the question while the answer still holds)."""
        if authorization is None:
            return None, False
        digest = hashlib.sha256(authorization).digest()
        hit = self._verified.get(digest)
        if hit is None:
            return None, False
        left = hit[0] - self._clock()
        if left <= 0:
            return None, False
        return hit[1], left < self.ttl / 2 and digest not in self._asking

    async def check(self, authorization: bytes | None, question: Question) -> Verdict | str:
        """The caller's name when the server verifies the header, else its refusal."""
        digest = hashlib.sha256(authorization).digest() if authorization is not None else b""
        asking = self._asking.get(digest)
        if asking is None:
            asking = asyncio.ensure_future(self._ask(question))
            self._asking[digest] = asking
            try:
                verdict: Verdict = await asyncio.shield(asking)
            finally:
                self._asking.pop(digest, None)
            if verdict.status == 200 and authorization is not None:
                self._remember(digest, verdict.caller)
            else:
                self._verified.pop(digest, None)  # refused on a refresh: trusted no more
        else:
            verdict = await asyncio.shield(asking)
        if verdict.status == 200:
            return verdict.caller
        return verdict

    def clear(self) -> None:
        self._verified.clear()

    def _remember(self, digest: bytes, caller: str) -> None:
        now = self._clock()
        if len(self._verified) >= MAX_CACHED:
            self._verified = {k: v for k, v in self._verified.items() if v[0] > now}
            if len(self._verified) >= MAX_CACHED:
                self._verified.clear()
        self._verified[digest] = (now + self.ttl, caller)


class Gate:
    """The data plane behind a token check, for one deployment's connections."""

    def __init__(self, plane: DataPlane, deployment: str, tokens: TokenCache) -> None:
        self.plane = plane
        self.deployment = deployment
        self.tokens = tokens
        self._refreshing: set[asyncio.Task[Verdict | str]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        authorization: bytes | None = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                authorization = value
                break
        caller, refresh = self.tokens.cached(authorization)
        if refresh:
            task = asyncio.get_running_loop().create_task(self._ask(scope, authorization))
            self._refreshing.add(task)
            task.add_done_callback(self._refreshing.discard)
        if caller is None:
            answer = await self._ask(scope, authorization)
            if isinstance(answer, Verdict):
                await _refuse(send, answer)
                return
            caller = answer
        scope[CALLER_KEY] = caller  # what the server verified, not a header the client sent
        await self.plane(scope, receive, send)

    async def _ask(self, scope: Scope, authorization: bytes | None) -> Verdict | str:
        too_long = authorization is not None and len(authorization) > MAX_AUTHORIZATION_BYTES
        question = Question(
            None if authorization is None or too_long else authorization.decode("latin-1"),
            self.deployment,
            f"{scope['method']} {scope['path']}"[:300],
            _client(scope),
            too_long,
        )
        try:
            return await self.tokens.check(b"" if too_long else authorization, question)
        except (TimeoutError, OSError):
            return Verdict(503, code="unavailable", message="the token verifier is unreachable")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}" if client else "unknown"


async def _refuse(send: Send, verdict: Verdict) -> None:
    body = json.dumps(
        {"error": {"code": verdict.code, "message": verdict.message, "details": {}}},
        separators=(",", ":"),
    ).encode()
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    if verdict.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": verdict.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
