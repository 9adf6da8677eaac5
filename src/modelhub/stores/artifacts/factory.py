"""Choose an artifact store by URL scheme: s3://bucket/prefix, file:///path, a plain
folder path, or any scheme an installed `modelhub.artifact_stores` plugin names.

An artifact store opener is a callable `open(url, *, s3_endpoint_url, chunk_size)`
that returns an ArtifactStore (see `base`) and raises InvalidInput for a URL it
cannot use; the entry point's name is the URL scheme it serves. The built-ins
(`file`, `s3`) are registered through the same interface.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from modelhub.errors import InvalidInput, NotFound
from modelhub.plugins import Registry
from modelhub.stores.artifacts._hashing import DEFAULT_CHUNK_SIZE
from modelhub.stores.artifacts.base import ArtifactStore


class ArtifactStoreOpener(Protocol):
    """One entry of `modelhub.artifact_stores`, named after the URL scheme it opens."""

    def __call__(
        self, url: str, *, s3_endpoint_url: str | None, chunk_size: int
    ) -> ArtifactStore: ...


def open_s3(url: str, *, s3_endpoint_url: str | None, chunk_size: int) -> ArtifactStore:
    """S3-compatible object stores: s3://bucket/prefix."""
    from modelhub.stores.artifacts.s3 import S3ArtifactStore

    return S3ArtifactStore(url, endpoint_url=s3_endpoint_url, chunk_size=chunk_size)


def open_file(url: str, *, s3_endpoint_url: str | None, chunk_size: int) -> ArtifactStore:
    """A local folder: file:///path (a plain path means the same)."""
    from modelhub.stores.artifacts.local import LocalArtifactStore

    parts = urlsplit(url)
    if parts.scheme != "file":
        return LocalArtifactStore(Path(url).expanduser(), chunk_size=chunk_size)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInput(f"file URL must name a local path: {url!r}", {"url": url})
    return LocalArtifactStore(Path(unquote(parts.path)), chunk_size=chunk_size)


def _opener(obj: object) -> ArtifactStoreOpener:
    if not callable(obj):
        raise TypeError(f"{type(obj).__name__} is not callable as open(url, ...)")
    return obj


ARTIFACT_STORES: Registry[ArtifactStoreOpener] = Registry(
    "artifact_stores",
    _opener,
    [
        ("file", "modelhub.stores.artifacts.factory:open_file", "a local folder (or a plain path)"),
        ("s3", "modelhub.stores.artifacts.factory:open_s3", "S3-compatible object stores"),
    ],
)


def open_artifact_store(
    url: str, *, s3_endpoint_url: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> ArtifactStore:
    """Open (and for a folder, create) the store `url` names; InvalidInput for a scheme
    nobody serves, Unavailable for a plugin that failed to load."""
    scheme = urlsplit(url).scheme
    # No scheme, or a one-letter one (a Windows drive letter, C:\\...), is a plain path.
    if not scheme or len(scheme) == 1:
        scheme = "file"
    try:
        opener = ARTIFACT_STORES.get(scheme)
    except NotFound:
        raise InvalidInput(
            f"unknown artifact store scheme {scheme!r} in {url!r}: use a folder path, "
            "file:///path or s3://bucket/prefix",
            {"url": url, "scheme": scheme},
        ) from None
    return opener(url, s3_endpoint_url=s3_endpoint_url, chunk_size=chunk_size)
