"""The lineage, model card and auditor's report calls of `modelhub.Client`."""

from __future__ import annotations

from urllib.parse import quote

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.lineage import LineageGraph, VersionDocument
from modelhub.domain.names import check_model_name


def _version_path(name: str, version: int) -> str:
    # Checked here: an encoded '/' in a name would reach a different route.
    return f"models/{quote(check_model_name(name), safe='')}/versions/{int(version)}"


class GovernanceLineageCalls(HttpConnection):
    def lineage(self, name: str, version: int) -> LineageGraph:
        data = self._request("GET", f"/api/v1/{_version_path(name, version)}/lineage")
        return LineageGraph.model_validate(data)

    def model_card(self, name: str, version: int) -> VersionDocument:
        data = self._request("GET", f"/api/v1/{_version_path(name, version)}/card")
        return VersionDocument.model_validate(data)

    def governance_report(self, name: str, version: int) -> VersionDocument:
        path = f"/api/v1/governance/{_version_path(name, version)}/report"
        return VersionDocument.model_validate(self._request("GET", path))
