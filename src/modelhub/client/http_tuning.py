"""The tuning part of `modelhub.Client`: studies over /api/v1/studies."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from modelhub.client.errors import raise_for_error
from modelhub.client.http_connection import HttpConnection
from modelhub.domain.names import check_model_name
from modelhub.domain.tuning import Study, TuneRequest
from modelhub.errors import Unavailable


class TuningCalls(HttpConnection):
    """The study calls of `Client`."""

    def tune(self, request: TuneRequest) -> Study:
        data = self._request("POST", "/api/v1/studies", json=request.model_dump(mode="json"))
        return Study.model_validate(data)

    def study(self, name: str) -> Study:
        return Study.model_validate(self._request("GET", _study_path(name)))

    def study_chart(self, name: str) -> str:
        try:
            response = self._http.get(f"{_study_path(name)}/chart")
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach modelhub at {self.url}: {exc}") from exc
        raise_for_error(response)
        return response.text

    def resume_study(self, name: str) -> Study:
        return Study.model_validate(self._request("POST", f"{_study_path(name)}/resume"))


def _study_path(name: str) -> str:
    # A study is named after its pipeline; checked so an encoded '/' reaches no other route.
    return f"/api/v1/studies/{quote(check_model_name(name), safe='')}"
