"""The monitor report half of `LocalClient`: the report computed in this process."""

from __future__ import annotations

from datetime import timedelta

from modelhub.client.local_home import LocalHome
from modelhub.domain.monitor_report import MonitorReport


class LocalReportCalls(LocalHome):
    def monitor(
        self, name: str, since: str | timedelta = "24h", version: int | None = None
    ) -> MonitorReport:
        return self.services.monitor.report(self.caller, name, since, version)
