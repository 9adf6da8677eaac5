"""Forward one inference request to a replica over a pooled keep-alive connection.

The platform's inference routes used httpx for this hop, and httpx took most of each
forwarded request's time. Replicas always answer HTTP/1.1 with a Content-Length (the
data plane never streams), so the hop needs only this: write the request, read the
status line, the headers and exactly that many bytes, and keep the connection for the
next request. Responses are parsed by httptools, the parser uvicorn itself uses.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

MAX_IDLE_PER_REPLICA = 64


class ReplicaGone(Exception):
    """The replica could not be reached: the request never ran there."""


@dataclass
class _Reply:
    status: int = 0
    body: list[bytes] = field(default_factory=list)
    done: bool = False
    keep_alive: bool = False
    parser: httptools.HttpResponseParser | None = None

    # httptools callbacks
    def on_headers_complete(self) -> None:
        # llhttp answers should_keep_alive() only until the message completes
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.done = True


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Forwarder:
    def __init__(self, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, int], list[Connection]] = {}

    async def send(
        self, base: str, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """The replica's status and body. Raises ReplicaGone when it cannot be reached."""
        address = _address(base)
        request = _encode(method, path, address, body, headers)
        reused = self._take(address)
        if reused is not None:
            try:
                return await self._exchange(address, reused, request)
            except (ConnectionError, asyncio.IncompleteReadError, httptools.HttpParserError):
                _close(reused)  # the replica closed it while idle: try a fresh one
        try:
            fresh = await asyncio.wait_for(asyncio.open_connection(*address), self.timeout)
        except OSError as exc:
            raise ReplicaGone(str(exc)) from exc
        try:
            return await self._exchange(address, fresh, request)
        except (ConnectionError, asyncio.IncompleteReadError, httptools.HttpParserError) as exc:
            _close(fresh)
            raise ReplicaGone(str(exc) or type(exc).__name__) from exc

    async def _exchange(
        self, address: tuple[str, int], connection: Connection, request: bytes
    ) -> tuple[int, bytes]:
        reader, writer = connection
        try:
            writer.write(request)
        except RuntimeError as exc:  # uvloop: the peer closed it before this write
            raise ConnectionResetError(str(exc)) from exc
        await writer.drain()
        reply = _Reply()
        parser = reply.parser = httptools.HttpResponseParser(reply)
        while not reply.done:
            chunk = await asyncio.wait_for(reader.read(65536), self.timeout)
            if not chunk:
                raise asyncio.IncompleteReadError(b"", None)
            parser.feed_data(chunk)
        reply.status = parser.get_status_code()
        if reply.keep_alive:
            self._give_back(address, connection)
        else:
            _close(connection)
        return reply.status, b"".join(reply.body)

    def _take(self, address: tuple[str, int]) -> Connection | None:
        idle = self._idle.get(address)
        while idle:
            connection = idle.pop()
            if not connection[1].is_closing() and not connection[0].at_eof():
                return connection
            _close(connection)
        return None

    def _give_back(self, address: tuple[str, int], connection: Connection) -> None:
        idle = self._idle.setdefault(address, [])
        if len(idle) < MAX_IDLE_PER_REPLICA:
            idle.append(connection)
        else:
            _close(connection)

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                _close(connection)
        self._idle.clear()


def _address(base: str) -> tuple[str, int]:
    parts = urlsplit(base)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _encode(
    method: str, path: str, address: tuple[str, int], body: bytes | None, headers: dict[str, str]
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"host: {address[0]}:{address[1]}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    lines.append(f"content-length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (body or b"")


def _close(connection: Connection) -> None:
    with contextlib.suppress(Exception):
        connection[1].close()
