"""The history half of `modelhub.Client`: a model's performance summary."""

from __future__ import annotations

from urllib.parse import quote

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.monitoring import PerformanceSummary


class HistoryCalls(HttpConnection):
    def performance(
        self, name: str, since: str = "24h", version: int | None = None
    ) -> PerformanceSummary:
        from modelhub.monitoring.payloads import summary_from_json  # numpy: not at CLI start

        params: dict[str, str | int] = {"since": since}
        if version is not None:
            params["version"] = version
        data = self._request(
            "GET", f"/api/v1/models/{quote(name, safe='')}/performance", params=params
        )
        return summary_from_json(data)
