"""The dashboard's training views: pipelines and runs, starting a run, creating a
pipeline from a spec (checked by the training service, as the API and the CLI check
it), and a run's page, live over the same run feed the API streams."""

from __future__ import annotations

import math
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from modelhub.api import sse
from modelhub.api.routes_training import resume_point
from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import go_to, is_htmx, page
from modelhub.dashboard.session import page_requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.limits import NonNegativeInt64, PositiveInt64
from modelhub.domain.runs import ACTIVE, FINAL, MetricPoint, RunStatus
from modelhub.errors import InvalidInput
from modelhub.services import Services
from modelhub.services.run_feed import RunFeed

router = APIRouter(tags=[TAG], include_in_schema=False)

TrainingViewer = Annotated[Caller, Depends(page_requires(Action.TRAINING_READ))]
PipelineWriter = Annotated[Caller, Depends(page_requires(Action.PIPELINES_WRITE))]
RunStarter = Annotated[Caller, Depends(page_requires(Action.RUNS_START))]
RunManager = Annotated[Caller, Depends(page_requires(Action.RUNS_MANAGE))]

PER_PAGE = 50
MAX_SPEC_CHARS = 1_000_000  # what the spec loader reads at most
LOG_TAIL_BYTES = 16 * 1024
# The metrics each curve draws, one series each: the built-in trainers log these names.
LOSS_SERIES = ("loss", "train_loss", "val_loss")
ACCURACY_SERIES = ("accuracy", "val_accuracy")
CANCELLABLE = ACTIVE - {RunStatus.FINISHING}
RESUMABLE = frozenset({RunStatus.FAILED, RunStatus.CANCELLED})

SpecText = Annotated[str, Form(max_length=MAX_SPEC_CHARS)]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def run_url(run_id: int) -> str:
    return f"/training/runs/{run_id}"


# -- the tab ---------------------------------------------------------------------------


@router.get("/training", response_class=HTMLResponse)
def training_tab(
    request: Request,
    caller: TrainingViewer,
    status: Annotated[RunStatus | None, Query()] = None,
    page_no: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> HTMLResponse:
    training = _services(request).training
    pipelines = training.list_pipelines(caller)
    summaries = training.pipeline_runs(caller)
    runs = training.runs_page(caller, status, None, page_no, PER_PAGE)
    return page(
        request,
        "training/index.html",
        caller,
        tab="training",
        engines=training.engines(caller),
        pipelines=pipelines,
        summaries=summaries,
        runs=runs.runs,
        total=runs.total,
        page_no=page_no,
        per_page=PER_PAGE,
        status=status,
        statuses=list(RunStatus),
    )


@router.get("/training/pipelines/{name}", response_class=HTMLResponse)
def pipeline_page(request: Request, name: str, caller: TrainingViewer) -> HTMLResponse:
    training = _services(request).training
    pipeline = training.get_pipeline(caller, name)
    runs = training.runs_page(caller, None, name, 1, PER_PAGE)
    estimate = training.pipeline_estimate(caller, name)
    return page(
        request,
        "training/pipeline.html",
        caller,
        tab="training",
        pipeline=pipeline,
        spec_yaml=_yaml(pipeline.spec),
        runs=runs.runs,
        total=runs.total,
        estimate=estimate,
    )


@router.post("/training/pipelines/{name}/runs")
def start_pipeline_run(request: Request, name: str, caller: RunStarter) -> Response:
    run = _services(request).training.start(caller, name)
    return go_to(request, run_url(run.id))


# -- starting training: pick a pipeline, or paste a spec ---------------------------------


@router.get("/training/start", response_class=HTMLResponse)
def start_page(request: Request, caller: RunStarter) -> HTMLResponse:
    return _start_page(request, caller, spec="", problems=None, estimate=None)


@router.post("/training/start")
def start_picked(
    request: Request, caller: RunStarter, pipeline: Annotated[str, Form(max_length=200)]
) -> Response:
    run = _services(request).training.start(caller, pipeline)
    return go_to(request, run_url(run.id))


@router.post("/training/check", response_class=HTMLResponse)
def check_spec(request: Request, caller: PipelineWriter, spec: SpecText = "") -> HTMLResponse:
    """The spec's problems, or its estimate: a fragment for `#spec-check`."""
    try:
        estimate = _services(request).training.check_pipeline(caller, spec)
    except InvalidInput as exc:
        return page(request, "training/_check.html", caller, problems=_problems(exc))
    return page(request, "training/_check.html", caller, problems=None, estimate=estimate)


@router.post("/training/pipelines")
def create_pipeline(
    request: Request,
    caller: PipelineWriter,
    spec: SpecText = "",
    start: Annotated[str | None, Form(max_length=8)] = None,
) -> Response:
    training = _services(request).training
    try:
        created = training.create_pipeline(caller, spec)
    except InvalidInput as exc:
        return _start_page(
            request, caller, spec=spec, problems=_problems(exc), estimate=None, status_code=422
        )
    if start:
        run = training.start(caller, created.pipeline.name)
        return go_to(request, run_url(run.id))
    return go_to(request, f"/training/pipelines/{created.pipeline.name}")


def _start_page(
    request: Request,
    caller: Caller,
    *,
    spec: str,
    problems: list[dict[str, str]] | None,
    estimate: Any,
    status_code: int = 200,
) -> HTMLResponse:
    pipelines = _services(request).training.list_pipelines(caller)
    return page(
        request,
        "training/start.html",
        caller,
        tab="training",
        status_code=status_code,
        pipelines=pipelines,
        spec=spec,
        problems=problems,
        estimate=estimate,
    )


def _problems(error: InvalidInput) -> list[dict[str, str]]:
    """The spec's problems as the service listed them, each with its field."""
    listed = error.details.get("errors")
    if isinstance(listed, list) and listed:
        return [{"field": str(p.get("field") or ""), "message": str(p["message"])} for p in listed]
    field = error.details.get("field")
    return [{"field": str(field) if field else "", "message": error.message}]


# -- a run -------------------------------------------------------------------------------


@router.get("/training/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: PositiveInt64, caller: TrainingViewer) -> HTMLResponse:
    """The run; for htmx (the live view when the run ends) only its figures and actions."""
    services = _services(request)
    training = services.training
    feed_after = training.feed_position(caller, run_id)  # first: the page then misses nothing
    run = training.get_run(caller, run_id)
    context: dict[str, Any] = {
        "run": run,
        "checkpoints": training.checkpoints(caller, run_id),
        "alerts": training.alerts(caller, run_id),
        "cost": services.cost.run_cost_for(caller, run_id),
        "can_cancel": run.status in CANCELLABLE,
        "can_resume": run.status in RESUMABLE,
    }
    if is_htmx(request):
        return page(request, "training/_run_live.html", caller, **context)
    points = training.metrics(caller, run_id)
    log_tail, log_offset = training.log_tail(caller, run_id, LOG_TAIL_BYTES)
    return page(
        request,
        "training/run.html",
        caller,
        tab="training",
        loss_curve=_curve(points, LOSS_SERIES, run.status in FINAL),
        accuracy_curve=_curve(points, ACCURACY_SERIES, run.status in FINAL),
        log_text=log_tail.decode("utf-8", errors="replace"),
        log_offset=log_offset,
        feed_after=feed_after,
        final=run.status in FINAL,
        **context,
    )


@router.get("/training/runs/{run_id}/events", response_class=StreamingResponse)
async def run_events(
    request: Request,
    run_id: PositiveInt64,
    caller: TrainingViewer,
    after: Annotated[NonNegativeInt64 | None, Query()] = None,
    log_offset: Annotated[NonNegativeInt64, Query()] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The run's feed as Server-Sent Events: the API's stream, for the session's cookie."""
    training = _services(request).training
    feed = RunFeed(training, caller, run_id, resume_point(after, last_event_id), log_offset)
    await run_in_threadpool(training.get_run, caller, run_id)  # 404 before streaming
    return StreamingResponse(sse.event_stream(feed), media_type=sse.MEDIA_TYPE, headers=sse.HEADERS)


@router.post("/training/runs/{run_id}/cancel")
def cancel_run(request: Request, run_id: PositiveInt64, caller: RunManager) -> Response:
    _services(request).training.cancel(caller, run_id)
    return go_to(request, run_url(run_id))


@router.post("/training/runs/{run_id}/resume")
def resume_run(request: Request, run_id: PositiveInt64, caller: RunManager) -> Response:
    _services(request).training.resume(caller, run_id)
    return go_to(request, run_url(run_id))


def _curve(points: list[MetricPoint], names: tuple[str, ...], final: bool) -> dict[str, Any]:
    """Chart data for `ui.chart`: x is the step; one series per metric name, aligned on
    the steps any of them was logged at (a gap where one was not). A finished run keeps
    only the series it logged; a live one keeps them all, for the points to come."""
    by_name: dict[str, dict[int, float | None]] = {name: {} for name in names}
    for point in points:
        if point.name in by_name:
            by_name[point.name][point.step] = point.value if math.isfinite(point.value) else None
    steps = sorted({step for values in by_name.values() for step in values})
    shown = [name for name in names if by_name[name] or not final] or list(names[:1])
    return {
        "x": steps,
        "time": False,
        "series": [
            {"label": name, "values": [by_name[name].get(step) for step in steps]} for name in shown
        ],
    }


def _yaml(spec: dict[str, Any]) -> str:
    return str(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
