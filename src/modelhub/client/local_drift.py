"""The drift calls of `LocalClient`, over the services in this process."""

from __future__ import annotations

from pathlib import Path

from modelhub.client.local_home import LocalHome
from modelhub.domain.drift import DriftReference, DriftReport


class LocalDriftCalls(LocalHome):
    def set_drift_reference(
        self, name: str, version: int, path: Path, format: str | None = None
    ) -> DriftReference:
        return self.services.drift.set_reference(self.caller, name, version, Path(path), format)

    def get_drift_reference(self, name: str, version: int) -> DriftReference:
        return self.services.drift.reference(self.caller, name, version)

    def drift(self, name: str, version: int, since: str = "24h") -> DriftReport:
        return self.services.drift.drift(self.caller, name, version, since)

    def compare_drift(
        self, name: str, version: int, path: Path, format: str | None = None
    ) -> DriftReport:
        return self.services.drift.compare_file(self.caller, name, version, Path(path), format)
