"""The history half of `LocalClient`: summaries read from the local home's store."""

from __future__ import annotations

from modelhub.client.local_home import LocalHome
from modelhub.domain.monitoring import PerformanceSummary


class LocalHistoryCalls(LocalHome):
    def performance(
        self, name: str, since: str = "24h", version: int | None = None
    ) -> PerformanceSummary:
        return self.services.history.performance_for(self.caller, name, since, version)
