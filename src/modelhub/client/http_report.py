"""The monitor report half of `modelhub.Client`: /api/v1/monitoring/models/{name}."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.auth import format_duration
from modelhub.domain.monitor_report import MonitorReport
from modelhub.domain.names import check_model_name


class ReportCalls(HttpConnection):
    def monitor(
        self, name: str, since: str | timedelta = "24h", version: int | None = None
    ) -> MonitorReport:
        # Checked here too: an encoded '/' in a name would reach a different route.
        path = f"/api/v1/monitoring/models/{quote(check_model_name(name), safe='')}"
        params: dict[str, str | int] = {
            "since": since if isinstance(since, str) else format_duration(since)
        }
        if version is not None:
            params["version"] = int(version)
        return MonitorReport.model_validate(self._request("GET", path, params=params))
