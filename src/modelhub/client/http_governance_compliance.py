"""The compliance and ethics calls of `modelhub.Client` (/api/v1/governance/...)."""

from __future__ import annotations

from urllib.parse import quote

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.governance import Assessment
from modelhub.domain.names import check_model_name


class ComplianceCalls(HttpConnection):
    def _governance_path(self, name: str, version: int) -> str:
        model = quote(check_model_name(name), safe="")
        return f"/api/v1/governance/models/{model}/versions/{int(version)}"

    def compliance_check(self, name: str, version: int) -> Assessment:
        url = f"{self._governance_path(name, version)}/check"
        return Assessment.model_validate(self._request("POST", url))

    def ethics_review(self, name: str, version: int, text: str) -> Assessment:
        url = f"{self._governance_path(name, version)}/ethics"
        return Assessment.model_validate(self._request("POST", url, json={"text": text}))
