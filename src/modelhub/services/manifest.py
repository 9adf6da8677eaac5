"""Turn a file or folder on disk into the list of files a version is made of."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from modelhub.domain.names import check_relative_path
from modelhub.domain.records import FileEntry, ModelVersion
from modelhub.errors import IntegrityError, InvalidInput


def source_files(source: Path) -> list[tuple[str, Path]]:
    """(path inside the version, path on disk) for every file; symlinks are refused.

    Errors name paths as the version would (relative to `source`), never where the
    server keeps them.
    """
    if source.is_symlink():
        source = source.resolve()
    if source.is_file():
        return [(check_relative_path(source.name), source)]
    if not source.is_dir():
        raise InvalidInput(f"no such file or directory: {source.name}", {"path": source.name})
    found: list[tuple[str, Path]] = []
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            relative = path.relative_to(source).as_posix()
            raise InvalidInput(
                f"{relative} is a symbolic link; copy the file into the folder instead",
                {"path": relative},
            )
        if path.is_file():
            found.append((check_relative_path(path.relative_to(source).as_posix()), path))
    if not found:
        raise InvalidInput(f"folder {source.name} holds no files", {"path": "."})
    return found


def version_digest(files: list[FileEntry]) -> str:
    """One file: its own digest. Several: the digest of the sorted manifest."""
    if len(files) == 1:
        return files[0].digest
    lines = "".join(
        f"{f.path}\t{f.digest}\t{f.size}\n" for f in sorted(files, key=lambda f: f.path)
    )
    return hashlib.sha256(lines.encode()).hexdigest()


def safe_target(dest: Path, relative: str) -> Path:
    """Where a version's file lands under dest; a path that would escape is refused."""
    root = dest.resolve()
    target = (root / check_relative_path(relative)).resolve()
    if not target.is_relative_to(root):
        raise InvalidInput(f"unsafe file path {relative!r}", {"path": relative})
    return target


CARD_FILE = "README.md"


def write_card_beside(version: ModelVersion, dest: Path) -> Path | None:
    """Export the version's model card as README.md beside its files, the Hugging Face
    way: only when it has a card and none of its own files is README.md (its file wins)."""
    if not version.model_card or any(f.path == CARD_FILE for f in version.files):
        return None
    target = safe_target(dest, CARD_FILE)
    write_verified_stream([version.model_card.encode("utf-8")], target)
    return target


def write_verified_stream(
    chunks: Iterable[bytes],
    target: Path,
    digest: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Write to a temp name; rename only once complete (and hashing to `digest` if given)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    hasher = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                hasher.update(chunk)
                out.write(chunk)
                if progress:
                    progress(len(chunk))
        if digest is not None and hasher.hexdigest() != digest:
            raise IntegrityError(
                f"{target.name} arrived damaged: digest {hasher.hexdigest()} != {digest}"
            )
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
