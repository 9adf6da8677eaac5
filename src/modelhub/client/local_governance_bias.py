"""The bias calls of `LocalClient`, over the services in this process."""

from __future__ import annotations

from pathlib import Path

from modelhub.client.local_home import LocalHome
from modelhub.domain.governance import Assessment


class LocalGovernanceBiasCalls(LocalHome):
    def assess_bias(
        self,
        name: str,
        version: int,
        path: Path,
        sensitive: list[str],
        label: str,
        positive: str | None = None,
        format: str | None = None,
    ) -> Assessment:
        return self.services.bias.assess(
            self.caller,
            f"{name}@{int(version)}",
            Path(path),
            list(sensitive),
            label,
            positive,
            format,
        )

    def bias_chart(self, name: str, version: int, assessment_id: int | None = None) -> bytes:
        return self.services.bias.chart(self.caller, f"{name}@{int(version)}", assessment_id)
