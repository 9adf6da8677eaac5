"""The bias calls of `modelhub.Client`: assess a version, fetch an assessment's chart."""

from __future__ import annotations

import abc
from pathlib import Path
from urllib.parse import quote

import httpx

from modelhub.client.contract import Progress
from modelhub.client.errors import raise_for_error
from modelhub.client.http_connection import HttpConnection
from modelhub.domain.bias import BiasOptions
from modelhub.domain.governance import Assessment
from modelhub.domain.names import check_model_name
from modelhub.errors import Unavailable


class GovernanceBiasCalls(HttpConnection):
    """The labelled data travels through /uploads (`Client._upload`)."""

    @abc.abstractmethod
    def _upload(self, path: Path, progress: Progress | None) -> str: ...

    def _bias_path(self, name: str, version: int) -> str:
        model = quote(check_model_name(name), safe="")
        return f"/api/v1/governance/models/{model}/versions/{int(version)}/bias"

    def assess_bias(self, name: str, version: int, path: Path, options: BiasOptions) -> Assessment:
        body = {
            "upload_id": self._upload(Path(path), None),
            "options": options.model_dump(mode="json"),
        }
        return Assessment.model_validate(
            self._request("POST", self._bias_path(name, version), json=body)
        )

    def bias_chart(self, name: str, version: int, assessment_id: int | None = None) -> bytes:
        params = {"assessment": assessment_id} if assessment_id is not None else {}
        try:
            response = self._http.get(f"{self._bias_path(name, version)}/chart", params=params)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach modelhub at {self.url}: {exc}") from exc
        raise_for_error(response)
        return response.content
