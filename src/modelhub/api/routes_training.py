"""/api/v1/pipelines and /api/v1/runs: thin routes over the training service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelhub.api import sse
from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import PipelineBody, PipelineCreated, StartBody
from modelhub.api.security import PipelineWriter, RunManager, RunStarter, TrainingReader
from modelhub.domain.engines import EngineRecord
from modelhub.domain.limits import INT64_MAX, MAX_INT_DIGITS, NonNegativeInt64, PositiveInt64
from modelhub.domain.runs import Alert, Checkpoint, MetricPoint, Pipeline, Run, RunStatus
from modelhub.errors import InvalidInput
from modelhub.services.run_feed import RunFeed
from modelhub.services.training import LOG_CHUNK

router = APIRouter(prefix="/api/v1", tags=["training"])
MAX_LOG_CHUNK = 1024 * 1024


@router.post("/pipelines", response_model=PipelineCreated, status_code=201)
def create_pipeline(
    body: PipelineBody, services: ServicesDep, caller: PipelineWriter
) -> PipelineCreated:
    files = {path: text.encode("utf-8") for path, text in body.files.items()}
    created = services.training.create_pipeline(caller, body.spec, files)
    return PipelineCreated(pipeline=created.pipeline, estimate=created.estimate)


@router.get("/pipelines", response_model=list[Pipeline])
def list_pipelines(services: ServicesDep, caller: TrainingReader) -> list[Pipeline]:
    return services.training.list_pipelines(caller)


@router.get("/pipelines/{name}", response_model=Pipeline)
def get_pipeline(name: str, services: ServicesDep, caller: TrainingReader) -> Pipeline:
    return services.training.get_pipeline(caller, name)


@router.post("/pipelines/{name}/runs", response_model=Run, status_code=201)
def start_run(name: str, body: StartBody, services: ServicesDep, caller: RunStarter) -> Run:
    return services.training.start(caller, name, body.priority)


@router.get("/engines", response_model=list[EngineRecord])
def list_engines(services: ServicesDep, caller: TrainingReader) -> list[EngineRecord]:
    return services.training.engines(caller)


@router.get("/runs", response_model=list[Run])
def list_runs(
    services: ServicesDep,
    caller: TrainingReader,
    status: RunStatus | None = None,
    pipeline: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[Run]:
    return services.training.list_runs(caller, status, pipeline, limit)


@router.get("/runs/{run_id}", response_model=Run)
def get_run(run_id: PositiveInt64, services: ServicesDep, caller: TrainingReader) -> Run:
    return services.training.get_run(caller, run_id)


@router.post("/runs/{run_id}/cancel", response_model=Run)
def cancel_run(run_id: PositiveInt64, services: ServicesDep, caller: RunManager) -> Run:
    return services.training.cancel(caller, run_id)


@router.post("/runs/{run_id}/resume", response_model=Run)
def resume_run(run_id: PositiveInt64, services: ServicesDep, caller: RunManager) -> Run:
    return services.training.resume(caller, run_id)


@router.get("/runs/{run_id}/metrics", response_model=list[MetricPoint])
def run_metrics(
    run_id: PositiveInt64, services: ServicesDep, caller: TrainingReader, name: str | None = None
) -> list[MetricPoint]:
    return services.training.metrics(caller, run_id, name)


@router.get("/runs/{run_id}/checkpoints", response_model=list[Checkpoint])
def run_checkpoints(
    run_id: PositiveInt64, services: ServicesDep, caller: TrainingReader
) -> list[Checkpoint]:
    return services.training.checkpoints(caller, run_id)


@router.get("/runs/{run_id}/alerts", response_model=list[Alert])
def run_alerts(run_id: PositiveInt64, services: ServicesDep, caller: TrainingReader) -> list[Alert]:
    return services.training.alerts(caller, run_id)


@router.get(
    "/runs/{run_id}/logs",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Log bytes from offset"}},
)
def run_logs(
    run_id: PositiveInt64,
    services: ServicesDep,
    caller: TrainingReader,
    offset: Annotated[NonNegativeInt64, Query()] = 0,
    limit: int = Query(default=LOG_CHUNK, ge=1, le=MAX_LOG_CHUNK),
) -> Response:
    chunk = services.training.logs(caller, run_id, offset, limit)
    return Response(
        chunk,
        media_type="text/plain; charset=utf-8",
        headers={"x-next-offset": str(offset + len(chunk))},
    )


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {sse.MEDIA_TYPE: {}}, "description": "Server-Sent Events"}},
)
async def run_events(
    run_id: PositiveInt64,
    services: ServicesDep,
    caller: TrainingReader,
    after: Annotated[
        NonNegativeInt64 | None, Query(description="Resume after this event id.")
    ] = None,
    log_offset: Annotated[NonNegativeInt64, Query(description="Send the log from this byte.")] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    resume_after = resume_point(after, last_event_id)
    feed = RunFeed(services.training, caller, run_id, resume_after, log_offset)
    await run_in_threadpool(services.training.get_run, caller, run_id)  # 404 before streaming
    return StreamingResponse(sse.event_stream(feed), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)


def resume_point(after: int | None, last_event_id: str | None) -> int:
    if after is not None:
        return after
    if last_event_id is None or not last_event_id.strip():
        return 0
    text = last_event_id.strip()
    digits = text.isascii() and text.isdigit() and len(text) <= MAX_INT_DIGITS
    if not digits or int(text) > INT64_MAX:
        raise InvalidInput(
            f"Last-Event-ID {last_event_id[:40]!r} is not an event id", {"field": "Last-Event-ID"}
        )
    return int(text)
