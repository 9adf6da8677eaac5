"""Choosing the client (server or local home) and running commands with one error style."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keep `modelhub --help` fast: no pydantic or httpx at import
    from modelhub.client.contract import ModelhubClient
    from modelhub.settings import Settings

EXIT_CODES: dict[str, int] = {
    "error": 1,
    "invalid_input": 2,
    "not_found": 3,
    "conflict": 4,
    "illegal_transition": 5,
    "unauthenticated": 6,
    "permission_denied": 6,
    "unsafe_model": 7,
    "integrity_error": 8,
    "unavailable": 9,
    "rate_limited": 10,
    "training_diverged": 11,
    "payload_too_large": 2,
    "inference_failed": 12,
}


def open_client(settings: Settings) -> ModelhubClient:
    """A running server when MODELHUB_URL is set, else the local home directly."""
    if settings.url:
        from modelhub.client.credentials import resolve_token
        from modelhub.client.http import Client

        return Client(settings.url, token=resolve_token(settings))
    from modelhub.client.local import LocalClient

    return LocalClient(settings, actor=getpass.getuser())


@contextmanager
def client_session() -> Iterator[ModelhubClient]:
    from modelhub.settings import Settings

    client = open_client(Settings())
    try:
        yield client
    finally:
        client.close()


@contextmanager
def transfer_progress(
    description: str, total: int, enabled: bool
) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def total_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
