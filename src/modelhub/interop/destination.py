"""Where an export lands on the caller's disk: a new or empty folder, filled whole or not at all."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelhub.errors import Conflict, InvalidInput


def check_destination(dest: Path) -> None:
    """Raise Conflict when `dest` exists and is not an empty folder (nothing is written)."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise Conflict(f"{dest} exists and is not a folder", {"path": str(dest)})
    if dest.is_dir() and any(dest.iterdir()):
        raise Conflict(
            f"{dest} exists and is not empty; export into a new or empty folder",
            {"path": str(dest)},
        )


@contextmanager
def staged_beside(dest: Path) -> Iterator[Path]:
    """An empty folder beside `dest` that becomes `dest` when the block succeeds and is
    removed when it fails, so `dest` never holds half an export."""
    check_destination(dest)
    parent = dest.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"cannot create {parent}: {exc.strerror}", {"path": str(dest)}) from exc
    staging = parent / f".{dest.name}.export-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        yield staging
        check_destination(dest)  # nobody filled it meanwhile
        if dest.is_dir():
            dest.rmdir()
        os.rename(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
