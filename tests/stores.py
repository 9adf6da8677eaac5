"""The stores under a test's services, opened beside them from the same settings.

Services keep their stores to themselves. A test that checks what landed in a store
(or sets up a state no service offers, such as a run that waited long) opens the
same database and artifact folder again through the stores' own factories.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from modelhub.services import Services
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.artifacts.factory import open_artifact_store
from modelhub.stores.metadata.base import MetadataStore
from modelhub.stores.metadata.factory import open_metadata_store


@dataclass
class Stores:
    metadata: MetadataStore
    artifacts: ArtifactStore


@contextmanager
def stores_of(services: Services) -> Iterator[Stores]:
    settings = services.settings
    metadata = open_metadata_store(settings.resolved_database_url)
    artifacts = open_artifact_store(
        settings.resolved_artifacts,
        s3_endpoint_url=settings.s3_endpoint_url,
        chunk_size=settings.upload_chunk_bytes,
    )
    try:
        yield Stores(metadata, artifacts)
    finally:
        artifacts.close()
        metadata.close()


def blob_digests(services: Services) -> list[str]:
    """The digests of every blob in the artifact store under `services`."""
    with stores_of(services) as stores:
        return [blob.digest for blob in stores.artifacts.list_blobs()]
