"""The compliance and ethics calls of `LocalClient`: the services over the local home."""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.governance import Assessment


class LocalComplianceCalls(LocalHome):
    def compliance_check(self, name: str, version: int) -> Assessment:
        return self.services.compliance.check(self.caller, f"{name}@{int(version)}")

    def ethics_review(self, name: str, version: int, text: str) -> Assessment:
        return self.services.ethics.review(self.caller, f"{name}@{int(version)}", text)
