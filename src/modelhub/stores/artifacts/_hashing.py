"""Streaming sha256 helpers shared by the artifact stores."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from modelhub.errors import IntegrityError, InvalidInput, NotFound

MiB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 8 * MiB
# Read buffers used when the store controls the reads (put_file, file objects).
COPY_BUFFER_SIZE = 16 * MiB
# Buffers in flight: one being read or written while the others are being hashed.
PIPELINE_BUFFERS = 3
# Files handed out of the store (a run's inputs) are read-only, like the blobs.
MATERIALIZED_MODE = 0o444


class OverlappedHasher:
    """sha256 computed on a worker thread, so hashing overlaps the caller's I/O.

    hashlib releases the GIL for large buffers, so a read/write loop in the caller
    and the hashing here run on two cores. A buffer passed to `update` must stay
    unchanged until `depth` further updates were made, or until `hexdigest`.
    """

    def __init__(self, depth: int = PIPELINE_BUFFERS - 1, inline: bool = False) -> None:
        self._hash = hashlib.sha256()
        self._depth = max(1, depth)
        self._pending: deque[Future[None]] = deque()
        # A file that fits one buffer has nothing to overlap with: a thread would
        # only add its start-up and hand-off to every small registration.
        self._executor = (
            None if inline else ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256")
        )
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        if self._executor is None:
            self._hash.update(data)
            self.size += len(data)
            return
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._executor.submit(self._hash.update, data))
        self.size += len(data)

    def hexdigest(self) -> str:
        self._drain()
        return self._hash.hexdigest()

    def close(self) -> None:
        try:
            self._drain()
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def __enter__(self) -> OverlappedHasher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_file_views(fileobj: BinaryIO | io.FileIO, buffer_size: int) -> Iterator[memoryview]:
    """Yield views on PIPELINE_BUFFERS rotating buffers filled with readinto.

    Safe with an OverlappedHasher of the default depth: a buffer is refilled only
    after PIPELINE_BUFFERS - 1 later views were handed out.
    """
    with suppress(OSError, AttributeError, io.UnsupportedOperation):
        # Zero-filling three full-size buffers costs more than hashing a small file.
        buffer_size = max(1, min(buffer_size, os.fstat(fileobj.fileno()).st_size))
    buffers = [memoryview(bytearray(buffer_size)) for _ in range(PIPELINE_BUFFERS)]
    readinto = getattr(fileobj, "readinto", None)
    index = 0
    while True:
        view = buffers[index % PIPELINE_BUFFERS]
        if readinto is not None:
            n = readinto(view)
        else:
            data = fileobj.read(buffer_size)
            n = len(data)
            view[:n] = data
        if not n:
            return
        yield view[:n]
        index += 1


def iter_source(
    source: BinaryIO | Iterable[bytes], buffer_size: int
) -> Iterator[memoryview | bytes]:
    """Chunks of a file object or a chunk iterator, without holding more than a few."""
    if hasattr(source, "read"):
        yield from iter_file_views(source, buffer_size)  # type: ignore[arg-type]
        return
    for chunk in source:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise InvalidInput(f"chunks must be bytes, got {type(chunk).__name__}")
        if chunk:
            # Chunk iterators may reuse their buffer; hash and write a private copy.
            yield bytes(chunk) if not isinstance(chunk, bytes) else chunk


def sha256_file(path: Path, buffer_size: int = COPY_BUFFER_SIZE) -> tuple[str, int]:
    """Digest and size of a local file, read once with a large buffer."""
    digest = hashlib.sha256()
    size = 0
    with open_regular_file(path) as handle:
        advise_sequential(handle.fileno())
        buffer = memoryview(bytearray(max(1, min(buffer_size, os.fstat(handle.fileno()).st_size))))
        while n := handle.readinto(buffer):
            digest.update(buffer[:n])
            size += n
    return digest.hexdigest(), size


def open_regular_file(path: Path) -> io.FileIO:
    try:
        handle = io.FileIO(path, "rb")
    except FileNotFoundError as exc:
        raise NotFound(f"file {str(path)!r} does not exist", {"path": str(path)}) from exc
    except IsADirectoryError as exc:
        raise InvalidInput(f"{str(path)!r} is a directory", {"path": str(path)}) from exc
    return handle


def advise_sequential(fd: int) -> None:
    if hasattr(os, "posix_fadvise"):
        with suppress(OSError):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)


def check_expected(actual: str, expected: str | None) -> None:
    if expected is not None and actual != expected:
        raise IntegrityError(
            f"content hashes to sha256:{actual}, expected sha256:{expected}",
            {"expected": expected, "actual": actual},
        )


def corrupted(digest: str, actual: str) -> IntegrityError:
    return IntegrityError(
        f"blob sha256:{digest} is corrupted: its bytes hash to sha256:{actual}",
        {"digest": digest, "actual": actual},
    )


def verified_chunks(chunks: Iterable[bytes], digest: str) -> Iterator[bytes]:
    """Pass chunks through, holding the last back until the whole blob hashes right.

    A reader that trusts Content-Length (curl, a browser) then gets a short body,
    which it reports as broken, never a complete-looking corrupt file.
    """
    hasher = hashlib.sha256()
    pending: bytes | None = None
    for chunk in chunks:
        hasher.update(chunk)
        if pending is not None:
            yield pending
        pending = chunk
    actual = hasher.hexdigest()
    if actual != digest:
        raise corrupted(digest, actual)
    if pending is not None:
        yield pending


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@contextmanager
def new_file_beside(target: Path) -> Iterator[tuple[Path, int]]:
    """A fresh hidden file in target's folder, for writing then renaming onto target.

    Removed on exit unless the caller renamed it away; the descriptor is closed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name[:64]}.", suffix=".part", dir=target.parent)
    try:
        yield Path(name), fd
    finally:
        os.close(fd)
        with suppress(FileNotFoundError):
            os.unlink(name)


def materialize_chunks(chunks: Iterable[bytes], target: Path) -> None:
    """Write verified chunks to target, which appears only once they all arrived.

    `chunks` must raise before its last chunk when the bytes do not match (as
    `verified_chunks` does): then nothing is left at target.
    """
    with new_file_beside(target) as (tmp, fd):
        for chunk in chunks:
            write_all(fd, chunk)
        put_in_place(fd, tmp, target)


def put_in_place(fd: int, tmp: Path, target: Path) -> None:
    """Rename a finished copy onto target, read-only like the blob it copies."""
    os.fchmod(fd, MATERIALIZED_MODE)
    os.replace(tmp, target)
