"""The bias calls of `LocalClient`, over the services in this process."""

from __future__ import annotations

from pathlib import Path

from modelhub.client.local_home import LocalHome
from modelhub.domain.bias import BiasOptions
from modelhub.domain.governance import Assessment


class LocalGovernanceBiasCalls(LocalHome):
    def assess_bias(self, name: str, version: int, path: Path, options: BiasOptions) -> Assessment:
        return self.services.bias.assess(self.caller, f"{name}@{int(version)}", Path(path), options)

    def bias_chart(self, name: str, version: int, assessment_id: int | None = None) -> bytes:
        return self.services.bias.chart(self.caller, f"{name}@{int(version)}", assessment_id)
