"""Artifact store in a local folder: root/blobs/ab/abcdef..., in-progress writes in root/tmp."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from modelhub.errors import InvalidInput, NotFound
from modelhub.stores.artifacts._hashing import (
    COPY_BUFFER_SIZE,
    DEFAULT_CHUNK_SIZE,
    OverlappedHasher,
    advise_sequential,
    check_expected,
    corrupted,
    iter_file_views,
    iter_source,
    open_regular_file,
    sha256_file,
    verified_chunks,
)
from modelhub.stores.artifacts.base import DIGEST, ArtifactStore, BlobInfo, check_digest

BLOB_MODE = 0o444
WRITEBACK_BYTES = 64 * 1024 * 1024


class LocalArtifactStore(ArtifactStore):
    """Blobs in a folder, written to root/tmp, fsynced, then renamed into root/blobs.

    Reads through `open_chunks` are verified. `local_path` hands out the blob file
    itself without hashing it (that would cost a full read of a possibly huge file
    on every model load); use `verify` when the bytes must be checked first.
    """

    def __init__(self, root: Path, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        if chunk_size <= 0:
            raise InvalidInput(f"chunk_size must be positive, got {chunk_size}")
        self.root = Path(root)
        self.chunk_size = chunk_size
        self.url = self.root.as_uri() if self.root.is_absolute() else str(self.root)
        self._blobs = self.root / "blobs"
        self._tmp = self.root / "tmp"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._make_shards()

    def _make_shards(self) -> None:
        """Create all 256 shard folders once, so no write pays for a folder fsync."""
        if (self._blobs / "ff").is_dir():
            return
        for shard in range(256):
            (self._blobs / f"{shard:02x}").mkdir(exist_ok=True)
        _fsync_dir(self._blobs)

    # -- writes ---------------------------------------------------------------

    def put_stream(
        self, source: BinaryIO | Iterable[bytes], expected_digest: str | None = None
    ) -> BlobInfo:
        if expected_digest is not None:
            check_digest(expected_digest)
        with self._temp_file() as (tmp_path, fd), OverlappedHasher() as hasher:
            _hash_and_write(iter_source(source, self.chunk_size), hasher, fd)
            digest = hasher.hexdigest()
            check_expected(digest, expected_digest)
            os.fsync(fd)
            return self._commit(tmp_path, digest)

    def put_file(
        self,
        path: Path,
        expected_digest: str | None = None,
        move: bool = False,
        known_digest: str | None = None,
    ) -> BlobInfo:
        """Store a local file.

        move=False copies the file, hashing the very bytes it writes (one read).
        move=True hashes the file in place (one read), then renames it into the
        store when it is a plain file with one link on the same filesystem (else it
        is copied); on success the source path is gone (renamed, or removed when
        the blob was already stored). The caller must not modify the file during
        the call. On IntegrityError the source is left untouched, nothing stored.
        """
        if expected_digest is not None:
            check_digest(expected_digest)
        path = Path(path)
        if move:
            return self._move_file(path, expected_digest, known_digest)
        with open_regular_file(path) as src:
            _check_regular(path, src.fileno())
            advise_sequential(src.fileno())
            small = os.fstat(src.fileno()).st_size <= COPY_BUFFER_SIZE
            with self._temp_file() as (tmp_path, fd), OverlappedHasher(inline=small) as hasher:
                _hash_and_write(iter_file_views(src, COPY_BUFFER_SIZE), hasher, fd)
                digest = hasher.hexdigest()
                check_expected(digest, expected_digest)
                os.fsync(fd)
                return self._commit(tmp_path, digest)

    def _move_file(
        self, path: Path, expected_digest: str | None, known_digest: str | None = None
    ) -> BlobInfo:
        try:
            st = os.lstat(path)
        except FileNotFoundError as exc:
            raise NotFound(f"file {str(path)!r} does not exist", {"path": str(path)}) from exc
        renamable = (
            stat.S_ISREG(st.st_mode)
            and st.st_nlink == 1
            and st.st_dev == os.stat(self._blobs).st_dev
        )
        if not renamable:  # a symlink, a hard-linked file or another filesystem: copy
            info = self.put_file(path, expected_digest)
            path.unlink()
            return info
        digest = check_digest(known_digest) if known_digest else sha256_file(path)[0]
        check_expected(digest, expected_digest)
        blob = self._blob_path(digest)
        if blob.exists():
            info = self._touch(digest)
            path.unlink()
            return info
        if known_digest is None:  # a caller with a known digest wrote and synced the file
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        self._ensure_shard(blob.parent)
        original_mode = stat.S_IMODE(os.stat(path).st_mode)
        os.chmod(path, BLOB_MODE)
        try:
            os.replace(path, blob)
        except OSError as exc:
            with suppress(OSError):
                os.chmod(path, original_mode)
            if exc.errno != errno.EXDEV:
                raise
            info = self.put_file(path, digest)
            path.unlink()
            return info
        return self._finish(blob, digest)

    @contextmanager
    def _temp_file(self) -> Iterator[tuple[Path, int]]:
        """A fresh file in root/tmp; removed on exit unless _commit renamed it away."""
        tmp_path = self._tmp / f"{uuid.uuid4().hex}.part"
        fd = os.open(
            tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        try:
            yield tmp_path, fd
        finally:
            os.close(fd)
            with suppress(FileNotFoundError):
                tmp_path.unlink()

    def _commit(self, tmp_path: Path, digest: str) -> BlobInfo:
        blob = self._blob_path(digest)
        if blob.exists():
            return self._touch(digest)  # stored once; the temp file is removed by _temp_file
        self._ensure_shard(blob.parent)
        os.chmod(tmp_path, BLOB_MODE)
        os.replace(tmp_path, blob)
        return self._finish(blob, digest)

    def _finish(self, blob: Path, digest: str) -> BlobInfo:
        # mtime is created_at: GC keeps young blobs, so a renamed old file must look new.
        os.utime(blob)
        _fsync_dir(blob.parent)
        return replace(self.info(digest), created=True)

    def _touch(self, digest: str) -> BlobInfo:
        """Refresh a deduplicated blob's mtime so GC's grace period covers the new upload."""
        with suppress(OSError):
            os.utime(self._blob_path(digest))
        return self.info(digest)

    def _ensure_shard(self, shard: Path) -> None:
        if not shard.is_dir():
            shard.mkdir(parents=True, exist_ok=True)
            _fsync_dir(self._blobs)

    # -- reads ----------------------------------------------------------------

    def open_chunks(self, digest: str, chunk_size: int | None = None) -> Iterator[bytes]:
        # Validate now, so a bad or absent digest fails at the call, not at first next().
        blob = self._existing_blob(digest)
        return _verified_chunks(blob, digest, chunk_size or self.chunk_size)

    def local_path(self, digest: str) -> AbstractContextManager[Path]:
        return _yield_path(self._existing_blob(digest))

    def verify(self, digest: str) -> BlobInfo:
        """Read the whole blob and raise IntegrityError unless it hashes to its name."""
        actual, _ = sha256_file(self._existing_blob(digest))
        if actual != digest:
            raise corrupted(digest, actual)
        return self.info(digest)

    def exists(self, digest: str) -> bool:
        return self._blob_path(check_digest(digest)).is_file()

    def info(self, digest: str) -> BlobInfo:
        try:
            st = self._blob_path(check_digest(digest)).stat()
        except FileNotFoundError as exc:
            raise _missing(digest) from exc
        return _blob_info(digest, st)

    def delete(self, digest: str) -> None:
        with suppress(FileNotFoundError):
            self._blob_path(check_digest(digest)).unlink()

    def list_blobs(self) -> Iterator[BlobInfo]:
        for shard in sorted(self._blobs.iterdir()):
            if len(shard.name) != 2 or not shard.is_dir():
                continue
            for entry in sorted(os.scandir(shard), key=lambda e: e.name):
                if DIGEST.match(entry.name) and entry.name[:2] == shard.name:
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # deleted while we walked
                    yield _blob_info(entry.name, st)

    def clean_temporary(self) -> int:
        """Remove everything in root/tmp. Call only when no write is in flight (server start)."""
        removed = 0
        for entry in self._tmp.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with suppress(FileNotFoundError):
                    entry.unlink()
            removed += 1
        return removed

    # -- paths ----------------------------------------------------------------

    def _blob_path(self, digest: str) -> Path:
        return self._blobs / digest[:2] / digest

    def _existing_blob(self, digest: str) -> Path:
        blob = self._blob_path(check_digest(digest))
        if not blob.is_file():
            raise _missing(digest)
        return blob


def _verified_chunks(blob: Path, digest: str, chunk_size: int) -> Iterator[bytes]:
    try:
        handle = open(blob, "rb", buffering=0)  # noqa: SIM115 - closed below
    except FileNotFoundError as exc:
        raise _missing(digest) from exc
    with handle:
        advise_sequential(handle.fileno())
        yield from verified_chunks(iter(lambda: handle.read(chunk_size), b""), digest)


@contextmanager
def _yield_path(path: Path) -> Iterator[Path]:
    yield path


def _blob_info(digest: str, st: os.stat_result) -> BlobInfo:
    return BlobInfo(
        digest=digest, size=st.st_size, created_at=datetime.fromtimestamp(st.st_mtime, UTC)
    )


def _missing(digest: str) -> NotFound:
    return NotFound(f"blob sha256:{digest} is not in the artifact store", {"digest": digest})


def _check_regular(path: Path, fd: int) -> None:
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        raise InvalidInput(f"{str(path)!r} is not a regular file", {"path": str(path)})


def _hash_and_write(
    chunks: Iterable[bytes | memoryview], hasher: OverlappedHasher, fd: int
) -> None:
    """Write chunks while the hasher hashes them, starting disk writeback as we go.

    Without early writeback the final fsync of a 1 GiB file waits for all of it
    (about half the total time); POSIX_FADV_DONTNEED on written ranges starts the
    writeback right away, so the fsync only waits for the tail.
    """
    written = flushed = 0
    for chunk in chunks:
        hasher.update(chunk)
        _write_all(fd, chunk)
        written += len(chunk)
        if written - flushed >= WRITEBACK_BYTES:
            _start_writeback(fd, flushed, written - flushed)
            flushed = written


def _start_writeback(fd: int, offset: int, length: int) -> None:
    if hasattr(os, "posix_fadvise"):
        with suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
