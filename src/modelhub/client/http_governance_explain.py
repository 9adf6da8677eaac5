"""The explainability call of `modelhub.Client`: the data file travels through /uploads."""

from __future__ import annotations

import abc
from pathlib import Path
from urllib.parse import quote

from modelhub.client.contract import Progress
from modelhub.client.http_connection import HttpConnection
from modelhub.domain.explanation import ExplainOptions, Explanation
from modelhub.domain.names import check_model_name


class ExplainCalls(HttpConnection):
    @abc.abstractmethod
    def _upload(self, path: Path, progress: Progress | None) -> str: ...

    def explain(
        self, name: str, version: int, path: Path, options: ExplainOptions | None = None
    ) -> Explanation:
        upload_id = self._upload(Path(path), None)
        body = {
            "upload_id": upload_id,
            "options": (options or ExplainOptions()).model_dump(mode="json"),
        }
        url = (
            f"/api/v1/governance/models/{quote(check_model_name(name), safe='')}"
            f"/versions/{int(version)}/explain"
        )
        return Explanation.model_validate(self._request("POST", url, json=body))
