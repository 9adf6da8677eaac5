"""A folder as a tar stream, and a tar stream back into a folder, both bounded.

The server sends an export as an uncompressed tar written as it is read: headers
and 1 MiB chunks, so a large model never sits in memory. The client unpacks it with
tarfile's "data" filter (no links, devices, absolute paths or `..`).
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from modelhub.errors import InvalidInput

CHUNK = 1024 * 1024
BLOCK = 512


def tar_chunks(folder: Path) -> Iterator[bytes]:
    """Every file under `folder` as a POSIX tar archive, yielded piece by piece."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        info = tarfile.TarInfo(path.relative_to(folder).as_posix())
        info.size = path.stat().st_size
        info.mode = 0o644
        yield info.tobuf(format=tarfile.PAX_FORMAT)
        sent = 0
        with open(path, "rb") as source:
            while chunk := source.read(CHUNK):
                sent += len(chunk)
                yield chunk
        if sent != info.size:  # changed while sent: the archive would lie
            raise OSError(f"{info.name} changed while it was being sent")
        if info.size % BLOCK:
            yield b"\0" * (BLOCK - info.size % BLOCK)
    yield b"\0" * (2 * BLOCK)


def extract_tar(archive: BinaryIO, dest: Path) -> list[Path]:
    """Unpack `archive` into `dest` (regular files and folders only); the files written."""
    written: list[Path] = []
    try:
        with tarfile.open(fileobj=archive, mode="r|") as tar:
            for member in tar:
                if not (member.isfile() or member.isdir()):
                    raise InvalidInput(f"the export holds {member.name!r}, not a plain file")
                tar.extract(member, dest, filter="data")
                if member.isfile():
                    written.append(dest / member.name)
    except tarfile.TarError as exc:
        raise InvalidInput(f"the export arrived damaged: {exc}") from exc
    return written
