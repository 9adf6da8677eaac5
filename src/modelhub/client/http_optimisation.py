"""The optimisation call of `modelhub.Client`: optimise a version on the server."""

from __future__ import annotations

import abc
from pathlib import Path
from urllib.parse import quote

from modelhub.client.contract import Progress
from modelhub.client.http_connection import HttpConnection, request_body
from modelhub.domain.names import check_model_name, parse_ref
from modelhub.domain.optimisation import OptimisationReport
from modelhub.services.optimisation import OptimiseRequest


class OptimisationCalls(HttpConnection):
    """Calibration and evaluation files travel through /uploads (`Client._upload`)."""

    @abc.abstractmethod
    def _upload(self, path: Path, progress: Progress | None) -> str: ...

    def optimize(
        self,
        request: OptimiseRequest,
        calibration: Path | None = None,
        eval_data: Path | None = None,
    ) -> OptimisationReport:
        ref = parse_ref(request.ref)
        body = request_body(request, "ref")
        if calibration is not None:
            body["calibration_upload"] = self._upload(Path(calibration), None)
        if eval_data is not None:
            body["eval_upload"] = self._upload(Path(eval_data), None)
        model = quote(check_model_name(ref.name), safe="")
        selector = quote(ref.selector or "latest", safe="")
        path = f"/api/v1/models/{model}/versions/{selector}/optimize"
        return OptimisationReport.model_validate(self._request("POST", path, json=body))
