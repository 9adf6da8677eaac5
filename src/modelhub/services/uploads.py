"""Uploads staged on the server's disk, so a version is registered only once whole.

A client opens an upload, streams each file into it, then registers it. The staged
files are inspected exactly like a local folder and then moved into the artifact
store. An upload that never completes (a dropped client, a killed server) leaves
only its staging folder, which `clean_stale` removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from modelhub.domain.names import check_relative_path
from modelhub.domain.records import FileEntry, ModelVersion
from modelhub.errors import InvalidInput, NotFound
from modelhub.services.registry import RegisterRequest, RegistryService

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}\Z")


class StagedFile:
    """One file being written into an upload; hashed as the bytes arrive."""

    def __init__(
        self, path: Path, relative: str, on_finish: Callable[[Path, str], None] | None = None
    ) -> None:
        self.path = path
        self.relative = relative
        self._on_finish = on_finish
        self._hash = hashlib.sha256()
        self._size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed in finish/abort

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._out.write(chunk)
        self._size += len(chunk)

    def finish(self, expected_digest: str | None = None) -> FileEntry:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        digest = self._hash.hexdigest()
        if expected_digest and expected_digest != digest:
            self.path.unlink(missing_ok=True)
            raise InvalidInput(
                f"upload of {self.relative!r} arrived damaged: "
                f"digest {digest} != {expected_digest}",
                {"path": self.relative},
            )
        if self._on_finish:
            self._on_finish(self.path, digest)
        return FileEntry(path=self.relative, digest=digest, size=self._size)

    def abort(self) -> None:
        self._out.close()
        self.path.unlink(missing_ok=True)


class UploadService:
    def __init__(self, staging_dir: Path, registry: RegistryService) -> None:
        self.staging_dir = staging_dir
        self.registry = registry
        # Digests computed while files streamed in, so registering them needs no
        # second read. In memory: staging does not survive a restart either.
        self._digests: dict[str, dict[Path, str]] = {}
        staging_dir.mkdir(parents=True, exist_ok=True)

    def start(self, owner: str) -> str:
        upload_id = uuid.uuid4().hex
        folder = self.staging_dir / upload_id
        folder.mkdir()
        (folder / "owner").write_text(owner)
        return upload_id

    def _folder(self, upload_id: str, owner: str) -> Path:
        if not UPLOAD_ID.match(upload_id):
            raise InvalidInput(f"invalid upload id {upload_id!r}", {"field": "upload_id"})
        folder = self.staging_dir / upload_id
        try:
            stored_owner: str | None = (folder / "owner").read_text()
        except OSError:
            stored_owner = None
        # Someone else's upload answers exactly like a missing one.
        if stored_owner != owner:
            raise NotFound(f"upload {upload_id} does not exist (finished or expired)")
        return folder

    def open_file(self, upload_id: str, relative: str, owner: str) -> StagedFile:
        folder = self._folder(upload_id, owner)
        relative = check_relative_path(relative)
        known = self._digests.setdefault(upload_id, {})
        return StagedFile(folder / "files" / relative, relative, known.__setitem__)

    @contextmanager
    def consume(self, upload_id: str, owner: str) -> Iterator[tuple[Path, dict[Path, str]]]:
        """What the upload holds (one file, or its folder) and the digests seen arriving.

        The staging folder is gone afterwards, whether the caller succeeded or not.
        """
        folder = self._folder(upload_id, owner)
        try:
            files = folder / "files"
            entries = list(files.iterdir()) if files.is_dir() else []
            if not entries:
                raise InvalidInput(f"upload {upload_id} holds no files")
            source = entries[0] if len(entries) == 1 and entries[0].is_file() else files
            yield source, self._digests.get(upload_id, {})
        finally:
            self._digests.pop(upload_id, None)
            shutil.rmtree(folder, ignore_errors=True)

    def register(self, upload_id: str, request: RegisterRequest, actor: str) -> ModelVersion:
        """Register what the upload holds as a model version."""
        with self.consume(upload_id, actor) as (source, known):
            return self.registry.register(request, source, actor, move=True, known_digests=known)

    def discard(self, upload_id: str, owner: str) -> None:
        shutil.rmtree(self._folder(upload_id, owner), ignore_errors=True)
        self._digests.pop(upload_id, None)

    def clean_stale(self, max_age_seconds: float = 0) -> int:
        """Remove uploads older than max_age_seconds (all of them at start-up)."""
        removed = 0
        cutoff = time.time() - max_age_seconds
        for folder in self.staging_dir.iterdir():
            if folder.stat().st_mtime <= cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                self._digests.pop(folder.name, None)
                removed += 1
        return removed
