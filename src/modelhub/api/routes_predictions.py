"""/api/v1: the prediction log, feedback and accuracy, thin over PredictionService."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from modelhub.api.deps import ServicesDep
from modelhub.api.security import DeploymentWriter, Reader, Updater
from modelhub.domain.deployments import Deployment
from modelhub.domain.limits import PositiveInt64
from modelhub.domain.monitoring import window_since
from modelhub.domain.predictions import (
    AccuracySummary,
    FeedbackOutcome,
    LoggedPrediction,
    PredictionLogPolicy,
)
from modelhub.errors import PayloadTooLarge

router = APIRouter(prefix="/api/v1", tags=["predictions"])

MAX_FEEDBACK_BYTES = 32 * 1024 * 1024


@router.get("/models/{name}/predictions", response_model=list[LoggedPrediction])
def list_predictions(
    name: str,
    services: ServicesDep,
    caller: Reader,
    since: str = "24h",
    limit: int = 100,
    version: PositiveInt64 | None = None,
) -> list[LoggedPrediction]:
    return services.predictions.predictions(caller, name, window_since(since), limit, version)


@router.post("/models/{name}/feedback", response_model=FeedbackOutcome)
async def post_feedback(
    name: str, request: Request, services: ServicesDep, caller: Updater
) -> FeedbackOutcome:
    """The body is JSON lines: `{"request_id": "...", "label": ...}` per line."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FEEDBACK_BYTES:
            raise PayloadTooLarge(
                f"a feedback file holds at most {MAX_FEEDBACK_BYTES} bytes; split it",
                {"limit": MAX_FEEDBACK_BYTES},
            )
        chunks.append(chunk)
    lines = b"".join(chunks).decode("utf-8", errors="replace").splitlines()
    return await run_in_threadpool(services.predictions.feedback, caller, name, lines)


@router.get("/models/{name}/accuracy", response_model=AccuracySummary)
def accuracy(
    name: str,
    services: ServicesDep,
    caller: Reader,
    since: str = "24h",
    version: PositiveInt64 | None = None,
) -> AccuracySummary:
    return services.predictions.accuracy_for(caller, name, window_since(since), version)


@router.put("/deployments/{name}/prediction-log", response_model=Deployment)
def set_prediction_log(
    name: str, body: PredictionLogPolicy, services: ServicesDep, caller: DeploymentWriter
) -> Deployment:
    return services.deployments.set_prediction_log(caller, name, body)
