"""The drift calls of `modelhub.Client`: references and drift reports of a version."""

from __future__ import annotations

import abc
from pathlib import Path
from urllib.parse import quote

from modelhub.client.contract import Progress
from modelhub.client.http_connection import HttpConnection
from modelhub.domain.drift import DriftReference, DriftReport
from modelhub.domain.names import check_model_name


class DriftCalls(HttpConnection):
    """Data files travel through /uploads, as datasets do (`Client._upload`)."""

    @abc.abstractmethod
    def _upload(self, path: Path, progress: Progress | None) -> str: ...

    def _version_path(self, name: str, version: int) -> str:
        return f"/api/v1/models/{quote(check_model_name(name), safe='')}/versions/{int(version)}"

    def set_drift_reference(
        self, name: str, version: int, path: Path, format: str | None = None
    ) -> DriftReference:
        upload_id = self._upload(Path(path), None)
        body = {"upload_id": upload_id, "format": format}
        url = f"{self._version_path(name, version)}/reference"
        return DriftReference.model_validate(self._request("PUT", url, json=body))

    def get_drift_reference(self, name: str, version: int) -> DriftReference:
        url = f"{self._version_path(name, version)}/reference"
        return DriftReference.model_validate(self._request("GET", url))

    def drift(self, name: str, version: int, since: str = "24h") -> DriftReport:
        url = f"{self._version_path(name, version)}/drift"
        return DriftReport.model_validate(self._request("GET", url, params={"since": since}))

    def compare_drift(
        self, name: str, version: int, path: Path, format: str | None = None
    ) -> DriftReport:
        upload_id = self._upload(Path(path), None)
        body = {"upload_id": upload_id, "format": format}
        url = f"{self._version_path(name, version)}/drift"
        return DriftReport.model_validate(self._request("POST", url, json=body))
