"""The artifact store interface: immutable blobs addressed by their sha256 digest."""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from modelhub.errors import InvalidInput
from modelhub.stores.artifacts._hashing import check_expected, materialize_chunks

DIGEST = re.compile(r"^[0-9a-f]{64}\Z")


def check_digest(digest: str) -> str:
    if not DIGEST.match(digest):
        raise InvalidInput(f"invalid sha256 digest {digest!r}", {"field": "digest"})
    return digest


def required_digest(expected_digest: str | None, known_digest: str | None) -> str | None:
    """The digest a put's bytes must hash to: a known digest is checked, never trusted."""
    for given in (expected_digest, known_digest):
        if given is not None:
            check_digest(given)
    if expected_digest is not None and known_digest is not None:
        check_expected(known_digest, expected_digest)
    return expected_digest or known_digest


@dataclass(frozen=True)
class BlobInfo:
    """A stored blob. `created` is True only on the put that wrote it into the store.

    A put of bytes that were already stored answers created=False, so a caller can
    undo exactly the blobs it added and leave blobs that others may be using.
    """

    digest: str
    size: int
    created_at: datetime
    created: bool = False


class ArtifactStore(abc.ABC):
    """Blobs are written once (temp name, fsync, rename), stored once, verified on read.

    Every method that takes a digest raises InvalidInput for a malformed one and
    NotFound when the blob is absent. Reads raise IntegrityError when the bytes no
    longer hash to their name.
    """

    url: str

    @abc.abstractmethod
    def put_stream(
        self, source: BinaryIO | Iterable[bytes], expected_digest: str | None = None
    ) -> BlobInfo:
        """Store bytes from a file object or chunk iterator, hashing as they stream.

        Raises IntegrityError (and stores nothing) when expected_digest is given and differs.
        """

    @abc.abstractmethod
    def put_file(
        self,
        path: Path,
        expected_digest: str | None = None,
        move: bool = False,
        known_digest: str | None = None,
    ) -> BlobInfo:
        """Store a local file. With move=True the store may take the file over (rename).

        The store hashes the bytes it stores, whatever the caller says: a blob's
        bytes always hash to its name. `expected_digest` and `known_digest` (what a
        caller saw while writing the file, e.g. a staged upload) are both checked:
        IntegrityError, and nothing stored, when the bytes differ.
        """

    @abc.abstractmethod
    def open_chunks(self, digest: str, chunk_size: int | None = None) -> Iterator[bytes]:
        """Yield the blob's bytes; raise IntegrityError at the end if they do not match."""

    @abc.abstractmethod
    def local_path(self, digest: str) -> AbstractContextManager[Path]:
        """A readable local file with the blob's bytes, for as long as the context lasts."""

    def materialize(self, digest: str, target: Path) -> BlobInfo:
        """Write the blob's bytes to a new file at `target` (replacing it), hashed as copied.

        For inputs handed to code that must not touch the store (a run's datasets,
        script, checkpoints): the file is a private copy, never a link to the blob,
        and appears only once its bytes hash to `digest`. Raises NotFound, or
        IntegrityError naming the digest (nothing is left at target) for a blob
        whose bytes no longer match.
        """
        materialize_chunks(self.open_chunks(digest), target)
        return self.info(digest)

    @abc.abstractmethod
    def exists(self, digest: str) -> bool: ...

    @abc.abstractmethod
    def info(self, digest: str) -> BlobInfo: ...

    @abc.abstractmethod
    def delete(self, digest: str) -> None:
        """Remove a blob; deleting an absent blob is not an error."""

    @abc.abstractmethod
    def list_blobs(self) -> Iterator[BlobInfo]: ...

    @abc.abstractmethod
    def clean_temporary(self) -> int:
        """Remove temp files left by writes that never finished (a crash); return how many."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections or pools; the default store holds none."""
