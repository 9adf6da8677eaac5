"""What the platform as a whole does for its transports: start clean, answer whether it
is ready, and close its stores. The stores stay behind the services; a transport asks
this service instead of reaching for them."""

from __future__ import annotations

from modelhub.services.uploads import UploadService
from modelhub.stores.artifacts.base import ArtifactStore
from modelhub.stores.metadata.base import MetadataStore


class PlatformService:
    def __init__(
        self, metadata: MetadataStore, artifacts: ArtifactStore, uploads: UploadService
    ) -> None:
        self._metadata = metadata
        self._artifacts = artifacts
        self._uploads = uploads

    def clean_leftovers(self, others_running: bool = False) -> None:
        """Remove what a crash left half-written: temporary blobs and staged uploads.

        Call it only at start, while nothing is in flight here. With `others_running`
        (other live servers share the artifact store) their temporary blobs may be
        writes in flight: the shared store is left alone, only this home is cleaned.
        """
        if not others_running:
            self._artifacts.clean_temporary()
        self._uploads.clean_stale()

    def ping(self) -> None:
        """Raises Unavailable when the database does not answer."""
        self._metadata.ping()

    def readiness(self) -> str:
        """The kind of database the platform is ready on ("sqlite", "postgresql");
        raises Unavailable when it does not answer."""
        self._metadata.ping()
        return self._metadata.url.split("://")[0].split("+")[0]

    def close(self) -> None:
        self._metadata.close()
        self._artifacts.close()
