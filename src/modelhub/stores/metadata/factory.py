from __future__ import annotations

from modelhub.stores.metadata.base import MetadataStore


def open_metadata_store(url: str) -> MetadataStore:
    """Open (and migrate) the metadata store a SQLAlchemy URL names."""
    from modelhub.stores.metadata.sql import SqlMetadataStore

    return SqlMetadataStore(url)
