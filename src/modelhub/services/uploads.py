"""Uploads staged on the server's disk, so a version is registered only once whole.

A client opens an upload, streams each file into it, then registers it. Each file
is written to a private part file, hashed as it arrives, and renamed into the
upload's tree only once whole: a second upload of the same path replaces the file
and never writes into one that a registration may be storing. Opening a path again
forgets the digest remembered for it, registering waits for no writer (it refuses
while any file is still arriving), and the artifact store hashes what it moves in
any case. The staged files are inspected exactly like a local folder and then moved
into the artifact store. An upload that never completes (a dropped client, a killed
server) leaves only its staging folder, which `clean_stale` removes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from modelhub.domain.names import check_relative_path
from modelhub.domain.records import FileEntry, ModelVersion
from modelhub.errors import Conflict, InvalidInput, NotFound
from modelhub.services.registry import RegisterRequest, RegistryService

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}\Z")


class StagedFile:
    """One file being written into an upload; hashed as the bytes arrive.

    The bytes go to `part` (a name nobody else is given) and replace `path` only
    when `finish` has checked them, so `path` always holds a whole file.
    """

    def __init__(
        self,
        path: Path,
        relative: str,
        part: Path,
        on_close: Callable[[str | None], None] | None = None,
    ) -> None:
        self.path = path
        self.relative = relative
        self._part = part
        self._on_close = on_close
        self._hash = hashlib.sha256()
        self._size = 0
        self._out: BinaryIO = open(part, "xb")  # noqa: SIM115 - closed in finish/abort

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._out.write(chunk)
        self._size += len(chunk)

    def finish(self, expected_digest: str | None = None) -> FileEntry:
        digest = self._hash.hexdigest()
        placed = False
        try:
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            if expected_digest and expected_digest != digest:
                raise InvalidInput(
                    f"upload of {self.relative!r} arrived damaged: "
                    f"digest {digest} != {expected_digest}",
                    {"path": self.relative},
                )
            self._put_in_place()
            placed = True
        finally:
            self._out.close()
            if not placed:
                self._part.unlink(missing_ok=True)
            if self._on_close:
                self._on_close(digest if placed else None)
        return FileEntry(path=self.relative, digest=digest, size=self._size)

    def abort(self) -> None:
        try:
            self._out.close()
            self._part.unlink(missing_ok=True)
        finally:
            if self._on_close:
                self._on_close(None)

    def _put_in_place(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._part, self.path)
        except FileNotFoundError as exc:  # the upload was discarded meanwhile
            raise NotFound("the upload does not exist (finished or expired)") from exc
        except OSError as exc:  # a file where a folder should be, or the reverse
            raise Conflict(
                f"cannot store {self.relative!r}: it clashes with another file of the upload",
                {"path": self.relative},
            ) from exc


@dataclass
class _Staging:
    """What the service knows of one upload while it lives (in memory, like staging)."""

    known: dict[Path, str] = field(default_factory=dict)
    writing: set[str] = field(default_factory=set)
    registering: bool = False


class UploadService:
    def __init__(self, staging_dir: Path, registry: RegistryService) -> None:
        self.staging_dir = staging_dir
        self.registry = registry
        # Digests computed while files streamed in, checked again by the store when it
        # moves them. In memory: staging does not survive a restart either.
        self._uploads: dict[str, _Staging] = {}
        # Files stream on the event loop and finish in worker threads.
        self._lock = threading.Lock()
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
        """Start writing one file. Raises Conflict when the path clashes with another
        file of the upload (`d` and `d/x`), is being written already, or the upload
        is being registered."""
        folder = self._folder(upload_id, owner)
        relative = check_relative_path(relative)
        target = folder / "files" / relative
        with self._lock:
            state = self._uploads.setdefault(upload_id, _Staging())
            if state.registering:
                raise Conflict(
                    f"upload {upload_id} is being registered and takes no more files",
                    {"path": relative},
                )
            _check_free(folder / "files", relative, state.writing)
            state.known.pop(target, None)  # what was known of the old bytes no longer holds
            state.writing.add(relative)
        on_close = partial(self._closed, upload_id, relative, target)
        try:
            parts = folder / "parts"
            parts.mkdir(exist_ok=True)
            return StagedFile(target, relative, parts / uuid.uuid4().hex, on_close)
        except FileNotFoundError as exc:  # discarded between the check and here
            with self._lock:
                self._uploads.pop(upload_id, None)
            raise NotFound(f"upload {upload_id} does not exist (finished or expired)") from exc
        except BaseException:
            on_close(None)
            raise

    def _closed(self, upload_id: str, relative: str, target: Path, digest: str | None) -> None:
        with self._lock:
            state = self._uploads.get(upload_id)
            if state is None:
                return
            state.writing.discard(relative)
            if digest is not None:
                state.known[target] = digest

    @contextmanager
    def consume(self, upload_id: str, owner: str) -> Iterator[tuple[Path, dict[Path, str]]]:
        """What the upload holds (one file, or its folder) and the digests seen arriving.

        Raises Conflict, changing nothing, while a file is still arriving. Otherwise
        the staging folder is gone afterwards, whether the caller succeeded or not.
        """
        folder = self._folder(upload_id, owner)
        with self._lock:
            state = self._uploads.setdefault(upload_id, _Staging())
            if state.writing or state.registering:
                arriving = sorted(state.writing)
                raise Conflict(
                    f"upload {upload_id} is still receiving {', '.join(arriving)}; "
                    "register it once every file has arrived"
                    if arriving
                    else f"upload {upload_id} is being registered already",
                    {"paths": arriving},
                )
            state.registering = True
            known = dict(state.known)
        try:
            files = folder / "files"
            entries = list(files.iterdir()) if files.is_dir() else []
            if not entries:
                raise InvalidInput(f"upload {upload_id} holds no files")
            source = entries[0] if len(entries) == 1 and entries[0].is_file() else files
            yield source, known
        finally:
            with self._lock:
                self._uploads.pop(upload_id, None)
            shutil.rmtree(folder, ignore_errors=True)

    def register(self, upload_id: str, request: RegisterRequest, actor: str) -> ModelVersion:
        """Register what the upload holds as a model version."""
        with self.consume(upload_id, actor) as (source, known):
            return self.registry.register(request, source, actor, move=True, known_digests=known)

    def open_registration(
        self, request: RegisterRequest, filename: str, owner: str
    ) -> DirectRegistration:
        """Stage one file that registers as a version once whole: one request, no upload id.

        The caller has checked the request already (`RegistryService.check_request`).
        """
        upload_id = self.start(owner)
        try:
            staged = self.open_file(upload_id, filename, owner)
        except BaseException:
            self.discard_refused(upload_id, owner)
            raise
        return DirectRegistration(self, upload_id, staged, request, owner)

    def discard_refused(self, upload_id: str, owner: str) -> None:
        """Drop an upload whose registration was refused; quiet if it is gone or busy."""
        with contextlib.suppress(NotFound, Conflict, InvalidInput):
            self.discard(upload_id, owner)

    def discard(self, upload_id: str, owner: str) -> None:
        folder = self._folder(upload_id, owner)
        with self._lock:
            state = self._uploads.get(upload_id)
            if state is not None and state.registering:
                raise Conflict(f"upload {upload_id} is being registered; it cannot be discarded")
            self._uploads.pop(upload_id, None)
        shutil.rmtree(folder, ignore_errors=True)

    def clean_stale(self, max_age_seconds: float = 0) -> int:
        """Remove uploads older than max_age_seconds (all of them at start-up)."""
        removed = 0
        cutoff = time.time() - max_age_seconds
        for folder in self.staging_dir.iterdir():
            if folder.stat().st_mtime <= cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                with self._lock:
                    self._uploads.pop(folder.name, None)
                removed += 1
        return removed


class DirectRegistration:
    """One file streaming into its own staging folder, registered when it is whole.

    Whatever ends it (registered, refused, damaged, the client gone), its staging
    folder is removed.
    """

    def __init__(
        self,
        uploads: UploadService,
        upload_id: str,
        staged: StagedFile,
        request: RegisterRequest,
        owner: str,
    ) -> None:
        self.uploads = uploads
        self.upload_id = upload_id
        self.staged = staged
        self.request = request
        self.owner = owner

    def write(self, chunk: bytes) -> None:
        self.staged.write(chunk)

    def abort(self) -> None:
        try:
            self.staged.abort()
        finally:
            self.uploads.discard_refused(self.upload_id, self.owner)

    def finish(self, expected_digest: str | None = None) -> ModelVersion:
        """Check the bytes against `expected_digest`, then register them."""
        try:
            self.staged.finish(expected_digest)
        except BaseException:
            self.uploads.discard_refused(self.upload_id, self.owner)
            raise
        # register() removes the staging folder whether it succeeds or not.
        return self.uploads.register(self.upload_id, self.request, self.owner)


def _check_free(files: Path, relative: str, writing: set[str]) -> None:
    """Refuse a path that is, or lies under, another file of the upload, or is being written."""
    if relative in writing:
        raise Conflict(f"{relative!r} is already being uploaded", {"path": relative})
    parents = [str(p) for p in reversed(PurePosixPath(relative).parents) if str(p) != "."]
    for parent in parents:
        if parent in writing or (files / parent).is_file():
            raise Conflict(
                f"cannot upload {relative!r}: {parent!r} is a file of this upload",
                {"path": relative},
            )
    if (files / relative).is_dir() or any(w.startswith(relative + "/") for w in writing):
        raise Conflict(
            f"cannot upload {relative!r}: it is a folder of this upload", {"path": relative}
        )
