"""The prediction log half of `modelhub.Client`: sampled requests, feedback, accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from modelhub.client.http_connection import HttpConnection
from modelhub.domain.deployments import Deployment
from modelhub.domain.names import check_model_name
from modelhub.domain.predictions import (
    AccuracySummary,
    FeedbackOutcome,
    LoggedPrediction,
    PredictionLogPolicy,
)


class PredictionCalls(HttpConnection):
    def list_predictions(
        self, model: str, since: str = "24h", limit: int = 100, version: int | None = None
    ) -> list[LoggedPrediction]:
        params: dict[str, Any] = {"since": since, "limit": limit}
        if version is not None:
            params["version"] = version
        path = f"/api/v1/models/{quote(check_model_name(model), safe='')}/predictions"
        return [
            LoggedPrediction.model_validate(p) for p in self._request("GET", path, params=params)
        ]

    def send_feedback(self, model: str, source: Path) -> FeedbackOutcome:
        path = f"/api/v1/models/{quote(check_model_name(model), safe='')}/feedback"
        content = Path(source).read_bytes()
        headers = {"content-type": "application/x-ndjson"}
        return FeedbackOutcome.model_validate(
            self._request("POST", path, content=content, headers=headers)
        )

    def accuracy(
        self, model: str, since: str = "24h", version: int | None = None
    ) -> AccuracySummary:
        params: dict[str, Any] = {"since": since}
        if version is not None:
            params["version"] = version
        path = f"/api/v1/models/{quote(check_model_name(model), safe='')}/accuracy"
        return AccuracySummary.model_validate(self._request("GET", path, params=params))

    def set_prediction_log(self, deployment: str, policy: PredictionLogPolicy) -> Deployment:
        path = f"/api/v1/deployments/{quote(deployment, safe='')}/prediction-log"
        return Deployment.model_validate(
            self._request("PUT", path, json=policy.model_dump(mode="json"))
        )
