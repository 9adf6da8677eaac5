"""Artifact store in a local folder: root/blobs/ab/abcdef..., in-progress writes in root/tmp."""

from __future__ import annotations

import errno
import io
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

from modelhub.errors import IntegrityError, InvalidInput, NotFound
from modelhub.stores.artifacts._hashing import (
    COPY_BUFFER_SIZE,
    DEFAULT_CHUNK_SIZE,
    OverlappedHasher,
    advise_sequential,
    check_expected,
    corrupted,
    iter_file_views,
    iter_source,
    new_file_beside,
    open_regular_file,
    put_in_place,
    sha256_file,
    verified_chunks,
    write_all,
)
from modelhub.stores.artifacts.base import (
    DIGEST,
    ArtifactStore,
    BlobInfo,
    check_digest,
    required_digest,
)

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
        """Store a local file, hashing exactly the bytes that become the blob.

        move=False copies the file, hashing the very bytes it writes (one read).
        move=True first renames the file into root/tmp, so no later open of `path`
        reaches it, then hashes it there (one read) and renames it into the store;
        a symlink, a hard-linked file or another filesystem is copied instead. On
        success the source path is gone. A file written to while it was hashed, or
        whose bytes do not match `expected_digest` or `known_digest`, raises
        IntegrityError: nothing is stored and the source is put back.
        """
        expected = required_digest(expected_digest, known_digest)
        path = Path(path)
        if move:
            return self._move_file(path, expected)
        with open_regular_file(path) as src:
            _check_regular(path, src.fileno())
            advise_sequential(src.fileno())
            small = os.fstat(src.fileno()).st_size <= COPY_BUFFER_SIZE
            with self._temp_file() as (tmp_path, fd), OverlappedHasher(inline=small) as hasher:
                _hash_and_write(iter_file_views(src, COPY_BUFFER_SIZE), hasher, fd)
                digest = hasher.hexdigest()
                check_expected(digest, expected)
                os.fsync(fd)
                return self._commit(tmp_path, digest)

    def _move_file(self, path: Path, expected: str | None) -> BlobInfo:
        try:
            st = os.lstat(path)
        except FileNotFoundError as exc:
            raise NotFound(f"file {str(path)!r} does not exist", {"path": str(path)}) from exc
        if not (_single_regular(st) and st.st_dev == os.stat(self._blobs).st_dev):
            return self._copy_and_remove(path, path, expected)
        claimed = self._tmp / f"{uuid.uuid4().hex}.part"
        try:
            os.rename(path, claimed)  # from here on, nobody opening `path` reaches these bytes
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            return self._copy_and_remove(path, path, expected)
        try:
            digest = _hash_in_place(claimed, path)
            check_expected(digest, expected)
            blob = self._blob_path(digest)
            if blob.exists():
                claimed.unlink()
                return self._touch(digest)
            self._ensure_shard(blob.parent)
            os.chmod(claimed, BLOB_MODE)
            os.replace(claimed, blob)
        except _NotMovable:  # replaced by a link between the lstat and the rename
            return self._copy_and_remove(claimed, path, expected)
        except BaseException:
            _put_back(claimed, path)
            raise
        return self._finish(blob, digest)

    def _copy_and_remove(self, source: Path, original: Path, expected: str | None) -> BlobInfo:
        try:
            info = self.put_file(source, expected)
        except BaseException:
            if source != original:
                _put_back(source, original)
            raise
        source.unlink()
        return info

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

    def materialize(self, digest: str, target: Path) -> BlobInfo:
        """Copy the blob to `target`, hashing while copying (one read, one write)."""
        with open_regular_file(self._existing_blob(digest)) as src:
            advise_sequential(src.fileno())
            small = os.fstat(src.fileno()).st_size <= COPY_BUFFER_SIZE
            with new_file_beside(target) as (tmp, fd), OverlappedHasher(inline=small) as hasher:
                for view in iter_file_views(src, COPY_BUFFER_SIZE):
                    hasher.update(view)
                    write_all(fd, view)
                actual = hasher.hexdigest()
                if actual != digest:
                    raise corrupted(digest, actual)
                put_in_place(fd, tmp, target)
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


class _NotMovable(Exception):
    """The claimed file is not one plain file with one name: copy it instead."""


def _single_regular(st: os.stat_result) -> bool:
    return stat.S_ISREG(st.st_mode) and st.st_nlink == 1


def _hash_in_place(claimed: Path, original: Path) -> str:
    """Digest of a claimed file; IntegrityError when it changed while being read.

    Changes through a descriptor opened before the claim show in its size or times.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(claimed, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink
            raise _NotMovable from exc
        raise
    with io.FileIO(fd, "rb") as handle:
        before = os.fstat(fd)
        if not _single_regular(before):
            raise _NotMovable
        advise_sequential(fd)
        with OverlappedHasher(inline=before.st_size <= COPY_BUFFER_SIZE) as hasher:
            for view in iter_file_views(handle, COPY_BUFFER_SIZE):
                hasher.update(view)
            digest = hasher.hexdigest()
            size = hasher.size
        os.fsync(fd)
        after = os.fstat(fd)
    if size != after.st_size or _change_marks(before) != _change_marks(after):
        raise IntegrityError(
            f"{str(original)!r} was written to while it was being stored; nothing was stored",
            {"path": str(original)},
        )
    return digest


def _change_marks(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink


def _put_back(claimed: Path, original: Path) -> None:
    """Return a claimed file to its name, unless something new took the name meanwhile."""
    # When the name is taken again, or its folder is gone, the claimed bytes go.
    with suppress(OSError):
        os.link(claimed, original, follow_symlinks=False)
    claimed.unlink(missing_ok=True)


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
        write_all(fd, chunk)
        written += len(chunk)
        if written - flushed >= WRITEBACK_BYTES:
            _start_writeback(fd, flushed, written - flushed)
            flushed = written


def _start_writeback(fd: int, offset: int, length: int) -> None:
    if hasattr(os, "posix_fadvise"):
        with suppress(OSError):
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
