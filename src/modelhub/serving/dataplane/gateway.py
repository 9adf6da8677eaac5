"""The data-plane listener: one address and port where every deployment answers by name.

No proxy sits in the request path. The listener accepts a connection, looks at its
first request without reading it (MSG_PEEK: the bytes stay in the socket) to find the
deployment it names (`/v2/models/{deployment}/...`, or the `model` of a
`/v1/embeddings` or `/v1/completions` body), and hands the connection itself to that
deployment's replicas (SCM_RIGHTS over a Unix socket every replica of the deployment
reads, as the launcher hands endpoint sockets to spares). From there the replica
speaks with the client directly, through its token gate (gate.py): every request on
the connection is authenticated there, and a request naming another deployment is
not found there. The listener answers only what it cannot hand over (an unknown
deployment, a request it cannot read), always after checking the token, and closes.

With TLS the bytes must be decrypted before they can be read, and a TLS session
cannot move to another process: the listener then terminates TLS and pumps the
plaintext through a socket pair whose other end it hands to the replica, one copy
each way (slower than plain HTTP; see docs).

The same thread serves the replicas' token questions (gate.py) on a Unix socket:
`verify` (the deployment service's, injected) answers them on a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from modelhub.serving.dataplane.gate import Question, Verdict

MAX_HEAD_BYTES = 65536  # the first request's head, and a body's start, must fit here
HEAD_SECONDS = 10.0  # to send the first request's head (and the routed body's start)
PEEK_PAUSE_SECONDS = 0.002
OPENAI_PATHS = ("/v1/embeddings", "/v1/completions")
MODEL_FIELD = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')

FORGET = b'{"forget":true}\n'  # to the replicas: drop every verified token
HandOver = Callable[[socket.socket], None]  # raises OSError when it cannot


class Unroutable(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_head(data: bytes) -> tuple[str, str, dict[bytes, bytes], int] | None:
    """(method, path, headers, head length) of a complete request head, else None."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise Unroutable(400, "invalid_input", "not an HTTP/1.x request")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            raise Unroutable(400, "invalid_input", "a malformed header line")
        headers[name.strip().lower()] = value.strip()
    path = parts[1].decode("latin-1").split("?", 1)[0]
    return parts[0].decode("latin-1"), path, headers, end + 4


def deployment_of(method: str, path: str, headers: dict[bytes, bytes], body: bytes) -> str | None:
    """The deployment a request names, None when it needs more of the body to tell."""
    if path.startswith("/v2/models/"):
        name = unquote(path[len("/v2/models/") :].split("/", 1)[0])
        if not name:
            raise Unroutable(404, "not_found", f"no route {method} {path}")
        return name
    if method == "POST" and path in OPENAI_PATHS:
        try:
            length = int(headers.get(b"content-length", b"0"))
        except ValueError:
            raise Unroutable(400, "invalid_input", "a bad content-length") from None
        if len(body) >= length or len(body) >= MAX_HEAD_BYTES // 2:
            found = MODEL_FIELD.search(body)
            if found is None:
                raise Unroutable(
                    400, "invalid_input", "model is required in the body's first 32 KiB"
                )
            return found.group(1).decode()
        return None
    raise Unroutable(
        404,
        "not_found",
        f"no route {method} {path}: this listener serves /v2/models/{{deployment}}/..., "
        "/v1/embeddings and /v1/completions",
    )


class Gateway:
    def __init__(
        self,
        host: str,
        port: int,
        lookup: Callable[[str], HandOver | None],
        verify: Callable[[Question], Verdict],
        verify_socket: Path,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.lookup = lookup
        self.verify = verify
        self.verify_socket = verify_socket
        self.ssl_context = ssl_context
        self._listener = socket.create_server((host, port), backlog=4096, reuse_port=False)
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self._workers = ThreadPoolExecutor(4, thread_name_prefix="dataplane-verify")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._askers: set[asyncio.StreamWriter] = set()  # replicas' verify connections

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(work)
        self._tasks.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="dataplane-gateway", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._listener.close()
        self._workers.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(OSError):
            self.verify_socket.unlink()

    def _run(self) -> None:
        try:
            import uvloop

            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            with contextlib.suppress(OSError):
                self.verify_socket.unlink()
            # Held: a server nobody references is collected, and closed with it.
            self._servers.append(
                loop.run_until_complete(
                    asyncio.start_unix_server(self._answer_questions, str(self.verify_socket))
                )
            )
            self.verify_socket.chmod(0o600)
            if self.ssl_context is None:
                self._spawn(self._accept_plain())
            else:
                self._servers.append(
                    loop.run_until_complete(
                        asyncio.start_server(
                            self._serve_tls,
                            sock=self._listener,
                            ssl=self.ssl_context,
                            limit=MAX_HEAD_BYTES,
                        )
                    )
                )
        except BaseException as exc:  # reported by start()
            self._failure = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            with contextlib.suppress(Exception):
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    # -- the replicas' token questions ---------------------------------------------

    async def _answer_questions(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        loop = asyncio.get_running_loop()

        async def answer(number: object, question: Question) -> None:
            verdict = await loop.run_in_executor(self._workers, self.verify, question)
            writer.write(json.dumps({"id": number, **verdict.to_json()}).encode() + b"\n")

        self._askers.add(writer)
        # Cancelled: the listener is stopping (the stream's callback would report it).
        with contextlib.suppress(ConnectionError, ValueError, asyncio.CancelledError):
            while line := await reader.readline():
                data = json.loads(line)
                self._spawn(answer(data["id"], Question.from_json(data)))
        self._askers.discard(writer)
        writer.close()

    def forget(self) -> None:
        """Tell every replica to drop the tokens it verified (one was revoked); safe
        from any thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # stopping
                loop.call_soon_threadsafe(self._tell_forget)

    def _tell_forget(self) -> None:
        for writer in list(self._askers):
            with contextlib.suppress(Exception):
                writer.write(FORGET)

    async def _check(
        self, headers: dict[bytes, bytes], method: str, path: str, peer: str
    ) -> Verdict:
        """The token's verdict where the listener answers itself (refusals audited)."""
        authorization = headers.get(b"authorization")
        too_long = authorization is not None and len(authorization) > 4096
        question = Question(
            None if authorization is None or too_long else authorization.decode("latin-1"),
            "",
            f"{method} {path}"[:300],
            peer,
            too_long,
        )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._workers, self.verify, question)

    # -- plain HTTP: the connection itself goes to a replica --------------------------

    async def _accept_plain(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, address = await loop.sock_accept(self._listener)
            except OSError:
                await asyncio.sleep(0.05)  # out of descriptors: let some close
                continue
            self._spawn(self._route_plain(connection, str(address[0])))

    async def _route_plain(self, connection: socket.socket, peer: str) -> None:
        loop = asyncio.get_running_loop()
        try:
            with connection:
                deadline = loop.time() + HEAD_SECONDS
                while True:
                    data = await self._peek(connection, deadline)
                    if not data:
                        return  # closed before asking anything
                    try:
                        name = self._name(data, peer)
                    except Unroutable as refusal:
                        verdict = await self._refusal_verdict(data, peer)
                        await _answer(connection, verdict or refusal)
                        return
                    if name is not None:
                        break
                    if len(data) >= MAX_HEAD_BYTES or loop.time() > deadline:
                        await _answer(
                            connection,
                            Unroutable(431, "invalid_input", "the request head is too large"),
                        )
                        return
                    await asyncio.sleep(PEEK_PAUSE_SECONDS)
                hand_over = self.lookup(name)
                if hand_over is None:
                    verdict = await self._refusal_verdict(data, peer)
                    await _answer(
                        connection,
                        verdict or Unroutable(404, "not_found", f"no deployment {name} is serving"),
                    )
                    return
                try:
                    hand_over(connection)
                except OSError:
                    await _answer(
                        connection, Unroutable(503, "unavailable", f"{name} cannot take it now")
                    )
        except (TimeoutError, OSError):
            return

    def _name(self, data: bytes, peer: str) -> str | None:
        head = parse_head(data)
        if head is None:
            return None
        method, path, headers, length = head
        return deployment_of(method, path, headers, data[length:])

    async def _refusal_verdict(self, data: bytes, peer: str) -> Verdict | None:
        """The token's refusal, when the request's token is refused (audited)."""
        try:
            head = parse_head(data)
        except Unroutable:
            head = None
        if head is None:
            return None
        method, path, headers, _ = head
        verdict = await self._check(headers, method, path, peer)
        return None if verdict.status == 200 else verdict

    async def _peek(self, connection: socket.socket, deadline: float) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            try:
                return connection.recv(MAX_HEAD_BYTES, socket.MSG_PEEK)
            except BlockingIOError:
                pass
            readable: asyncio.Future[None] = loop.create_future()
            loop.add_reader(connection.fileno(), _settle, readable)
            try:
                await asyncio.wait_for(readable, max(0.0, deadline - loop.time()))
            finally:
                loop.remove_reader(connection.fileno())

    # -- TLS: decrypted here, pumped to the replica ------------------------------------

    async def _serve_tls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if peername else "unknown"
        try:
            data = await asyncio.wait_for(self._read_routable(reader), HEAD_SECONDS)
            head = parse_head(data)
            assert head is not None
            method, path, headers, length = head
            name = deployment_of(method, path, headers, data[length:]) or ""
            hand_over = self.lookup(name)
            if hand_over is None:
                verdict = await self._check(headers, method, path, peer)
                refusal: Verdict | Unroutable = (
                    verdict
                    if verdict.status != 200
                    else Unroutable(404, "not_found", f"no deployment {name} is serving")
                )
                writer.write(_response(refusal))
                await writer.drain()
                return
            ours, theirs = socket.socketpair()
            with theirs:
                hand_over(theirs)
            inner_reader, inner_writer = await asyncio.open_connection(sock=ours)
            inner_writer.write(data)
            await asyncio.gather(_pump(reader, inner_writer), _pump(inner_reader, writer))
        except Unroutable as refusal:
            with contextlib.suppress(Exception):
                writer.write(_response(refusal))
                await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _read_routable(self, reader: asyncio.StreamReader) -> bytes:
        data = await reader.readuntil(b"\r\n\r\n")
        head = parse_head(data)
        assert head is not None
        method, path, headers, length = head
        while deployment_of(method, path, headers, data[length:]) is None:
            chunk = await reader.read(MAX_HEAD_BYTES)
            if not chunk:
                raise asyncio.IncompleteReadError(data, None)
            data += chunk
        return data


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():  # a level-triggered reader may fire again before it is removed
        future.set_result(None)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.close()


REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           431: "Request Header Fields Too Large", 503: "Service Unavailable"}  # fmt: skip


def _response(refusal: Verdict | Unroutable) -> bytes:
    body = json.dumps(
        {"error": {"code": refusal.code, "message": refusal.message, "details": {}}},
        separators=(",", ":"),
    ).encode()
    status = refusal.status
    extra = "www-authenticate: Bearer\r\n" if status == 401 else ""
    head = (
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n"
    )
    return head.encode() + body


async def _answer(connection: socket.socket, refusal: Verdict | Unroutable) -> None:
    # Read what was only peeked: closing with unread bytes would reset the connection
    # and the client could lose the answer.
    with contextlib.suppress(OSError):
        connection.recv(MAX_HEAD_BYTES)
    await asyncio.get_running_loop().sock_sendall(connection, _response(refusal))
    with contextlib.suppress(OSError):
        connection.shutdown(socket.SHUT_WR)
