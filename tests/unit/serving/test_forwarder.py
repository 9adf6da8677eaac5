"""The platform's hop to a replica, against real sockets on 127.0.0.1 under uvloop (the
loop the server runs): answers pass through, a kept connection is reused, and a peer
that resets the connection is ReplicaGone, never another exception (a 500 upstream)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from modelhub.serving.forwarder import Forwarder, ReplicaGone

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def _answer_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length)
        reply = b'{"echo":' + str(len(body)).encode() + b"}"
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: " + str(len(reply)).encode() + b"\r\n\r\n" + reply
        )
        await writer.drain()


async def _reset_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # RST, as a killed replica's kernel sends


def _run(main: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


def test_an_answer_passes_through_and_its_connection_is_reused() -> None:
    accepted = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        try:
            await _answer_ok(reader, writer)
        except asyncio.IncompleteReadError:
            writer.close()

    async def main() -> None:
        server, base = await _serve(counting)
        forwarder = Forwarder(timeout=5)
        try:
            for _ in range(3):
                status, body = await forwarder.send(
                    base, "POST", "/v2/models/m/infer", b"abcd", {"content-type": "x"}
                )
                assert (status, body) == (200, b'{"echo":4}')
        finally:
            await forwarder.close()
            server.close()
            await server.wait_closed()
        assert accepted == 1

    _run(main)


def test_a_peer_that_resets_every_connection_is_replica_gone_every_time() -> None:
    async def main() -> None:
        server, base = await _serve(_reset_at_once)
        forwarder = Forwarder(timeout=5)

        async def one() -> BaseException | None:
            try:
                await forwarder.send(base, "POST", "/v2/models/m/infer", b"{}", {})
            except ReplicaGone as exc:
                return exc
            return None

        try:
            outcomes = await asyncio.gather(*(one() for _ in range(64)))
        finally:
            await forwarder.close()
            server.close()
            await server.wait_closed()
        assert all(isinstance(o, ReplicaGone) for o in outcomes), outcomes

    _run(main)


def test_a_closed_port_is_replica_gone() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        forwarder = Forwarder(timeout=5)
        with pytest.raises(ReplicaGone):
            await forwarder.send(f"http://127.0.0.1:{port}", "GET", "/v2", None, {})

    _run(main)


def test_a_kept_connection_the_peer_closed_while_idle_gives_way_to_a_fresh_one() -> None:
    accepted = 0

    async def one_answer_then_close(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        nonlocal accepted
        accepted += 1
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"content-length: 0" in head
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # as a replica does when it drains for a restart

    async def main() -> None:
        server, base = await _serve(one_answer_then_close)
        forwarder = Forwarder(timeout=5)
        try:
            for _ in range(3):
                assert await forwarder.send(base, "GET", "/v2", None, {}) == (200, b"ok")
        finally:
            await forwarder.close()
            server.close()
            await server.wait_closed()
        assert accepted == 3

    _run(main)
