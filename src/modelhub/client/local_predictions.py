"""The prediction log half of `LocalClient`: the same calls, in this process."""

from __future__ import annotations

from pathlib import Path

from modelhub.client.local_home import LocalHome
from modelhub.domain.deployments import Deployment
from modelhub.domain.monitoring import window_since
from modelhub.domain.predictions import (
    AccuracySummary,
    FeedbackOutcome,
    LoggedPrediction,
    PredictionLogPolicy,
)


class LocalPredictionCalls(LocalHome):
    def list_predictions(
        self, model: str, since: str = "24h", limit: int = 100, version: int | None = None
    ) -> list[LoggedPrediction]:
        return self.services.predictions.predictions(
            self.caller, model, window_since(since), limit, version
        )

    def send_feedback(self, model: str, source: Path) -> FeedbackOutcome:
        with Path(source).open(encoding="utf-8", errors="replace") as lines:
            return self.services.predictions.feedback(self.caller, model, lines)

    def accuracy(
        self, model: str, since: str = "24h", version: int | None = None
    ) -> AccuracySummary:
        return self.services.predictions.accuracy_for(
            self.caller, model, window_since(since), version
        )

    def set_prediction_log(self, deployment: str, policy: PredictionLogPolicy) -> Deployment:
        return self.services.deployments.set_prediction_log(self.caller, deployment, policy)
