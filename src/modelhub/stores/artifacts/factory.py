"""Choose an artifact store by URL: s3://bucket/prefix, file:///path, or a plain folder path."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from modelhub.errors import InvalidInput
from modelhub.stores.artifacts._hashing import DEFAULT_CHUNK_SIZE
from modelhub.stores.artifacts.base import ArtifactStore


def open_artifact_store(
    url: str, *, s3_endpoint_url: str | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> ArtifactStore:
    """Open (and for a folder, create) the store `url` names; InvalidInput for other schemes."""
    scheme = urlsplit(url).scheme
    if scheme == "s3":
        from modelhub.stores.artifacts.s3 import S3ArtifactStore

        return S3ArtifactStore(url, endpoint_url=s3_endpoint_url, chunk_size=chunk_size)
    from modelhub.stores.artifacts.local import LocalArtifactStore

    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise InvalidInput(f"file URL must name a local path: {url!r}", {"url": url})
        return LocalArtifactStore(Path(unquote(parts.path)), chunk_size=chunk_size)
    # One-letter schemes are Windows drive letters (C:\...), i.e. plain paths.
    if scheme and len(scheme) > 1:
        raise InvalidInput(
            f"unknown artifact store scheme {scheme!r} in {url!r}: use a folder path, "
            "file:///path or s3://bucket/prefix",
            {"url": url, "scheme": scheme},
        )
    return LocalArtifactStore(Path(url).expanduser(), chunk_size=chunk_size)
