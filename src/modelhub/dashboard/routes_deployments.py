"""The dashboard's deployments views: the deployments by environment, one deployment
with its replicas, traffic and canary, the actions of `modelhub deployments`, and a
"try it" form that sends one prediction through the platform's inference service."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import go_to, is_htmx, page
from modelhub.dashboard.session import page_requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.canary import CanaryStatus
from modelhub.domain.deployments import AnalysisMode, Deployment, Environment, UsageRecord
from modelhub.domain.enums import ModelType, parse_enum
from modelhub.domain.monitor_report import Traffic
from modelhub.domain.records import TensorSpec
from modelhub.errors import InvalidInput, NotFound, Unavailable
from modelhub.services import Services
from modelhub.services.deployments import DeployRequest, RolloutRequest
from modelhub.services.inference import InferenceService, Reply

router = APIRouter(tags=[TAG], include_in_schema=False)

PageDeploymentReader = Annotated[Caller, Depends(page_requires(Action.DEPLOYMENTS_READ))]
PageDeploymentWriter = Annotated[Caller, Depends(page_requires(Action.DEPLOYMENTS_WRITE))]
PageInference = Annotated[Caller, Depends(page_requires(Action.INFERENCE))]

PER_PAGE = 50
USAGE_WINDOW = "1h"
# The runtimes (the served model's `platform`) answered on the OpenAI-style routes.
EMBEDDING_PLATFORMS = ("sentence_embeddings",)
GENERATION_PLATFORMS = ("text_generation",)
TRY_KINDS = ("infer", "embeddings", "completions")
TRY_PATHS = {"embeddings": "/v1/embeddings", "completions": "/v1/completions"}
# numpy and ONNX spellings of a dtype, as a registered signature may carry them.
DATATYPES = {
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "float": "FP32",
    "double": "FP64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "bool": "BOOL",
    "string": "BYTES",
    "str": "BYTES",
    "bytes": "BYTES",
}


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _inference(request: Request) -> InferenceService:
    inference: InferenceService = request.app.state.inference
    return inference


# -- the list -------------------------------------------------------------------------


@router.get("/deployments", response_class=HTMLResponse)
def deployments_page(
    request: Request,
    caller: PageDeploymentReader,
    environment: Annotated[str | None, Query()] = None,
    stopped: Annotated[bool, Query(description="Include stopped deployments.")] = False,
    page_no: Annotated[int, Query(alias="page", ge=1)] = 1,
) -> HTMLResponse:
    services = _services(request)
    chosen = parse_enum(Environment, environment, "environment") if environment else None
    found = services.deployments.list_all(caller, chosen, None, stopped)
    order = {env: i for i, env in enumerate(Environment)}
    found.sort(key=lambda d: (order[d.environment], d.name))
    shown = found[(page_no - 1) * PER_PAGE : page_no * PER_PAGE]
    recent = services.history.recent_traffic(caller, [d.name for d in shown], USAGE_WINDOW)
    return page(
        request,
        "deployments/list.html",
        caller,
        tab="deployments",
        deployments=shown,
        recent=recent,
        total=len(found),
        page_no=page_no,
        per_page=PER_PAGE,
        environment=chosen,
        environments=list(Environment),
        stopped=stopped,
        window=USAGE_WINDOW,
        page_url=lambda n: "/deployments?" + urlencode(_filters(chosen, stopped) | {"page": n}),
    )


def _filters(environment: Environment | None, stopped: bool) -> dict[str, Any]:
    shown: dict[str, Any] = {"environment": environment.value} if environment else {}
    return shown | ({"stopped": "true"} if stopped else {})


@router.post("/deployments", response_class=HTMLResponse)
def deploy(
    request: Request,
    caller: PageDeploymentWriter,
    model: Annotated[str, Form()],
    version: Annotated[str, Form()],
    environment: Annotated[str, Form()] = Environment.DEVELOPMENT.value,
    deployment: Annotated[str | None, Form()] = None,
    replicas: Annotated[int, Form()] = 1,
) -> Response:
    """The Deploy form of a version page: the same request as POST /api/v1/deployments."""
    created = _services(request).deployments.deploy(
        caller,
        DeployRequest(
            ref=f"{model}@{version}",
            environment=parse_enum(Environment, environment, "environment"),
            replicas=replicas,
            name=deployment or None,
        ),
    )
    return go_to(request, f"/deployments/{created.name}")


# -- one deployment -------------------------------------------------------------------


@dataclass(frozen=True)
class TryExample:
    """What the try-it form sends: `kind` picks the route, `body` prefills the box."""

    kind: str
    body: str


@dataclass(frozen=True)
class TryResult:
    status: int
    text: str
    latency_ms: float


@dataclass(frozen=True)
class DeploymentView:
    deployment: Deployment
    usage: list[UsageRecord]
    recent: Traffic | None
    canary: CanaryStatus | None
    started: dict[int, datetime]  # replica PID -> when its process started


def _view(services: Services, caller: Caller, name: str) -> DeploymentView:
    deployment = services.deployments.get(caller, name)
    recent = services.history.recent_traffic(caller, [name], USAGE_WINDOW).get(name)
    canary = services.canary.status(caller, name) if deployment.rollout is not None else None
    usage = services.deployments.usage(caller, name)
    started = services.deployments.replica_starts(caller, deployment)
    return DeploymentView(deployment, usage, recent, canary, started)


@router.get("/deployments/{name}", response_class=HTMLResponse)
async def deployment_page(request: Request, name: str, caller: PageDeploymentReader) -> Response:
    services = _services(request)
    view = await run_in_threadpool(_view, services, caller, name)
    example = None
    if services.auth.allows(caller, Action.INFERENCE):
        example = await _example(request, caller, view.deployment)
    return _detail(request, caller, view, example, None)


@router.get("/deployments/{name}/status", response_class=HTMLResponse)
def deployment_status(request: Request, name: str, caller: PageDeploymentReader) -> Response:
    """The part of the deployment page that changes by itself (htmx, every 5 s)."""
    view = _view(_services(request), caller, name)
    return page(request, "deployments/_status.html", caller, tab="deployments", view=view)


def _detail(
    request: Request,
    caller: Caller,
    view: DeploymentView,
    example: TryExample | None,
    result: TryResult | None,
    status_code: int = 200,
) -> HTMLResponse:
    return page(
        request,
        "deployments/detail.html",
        caller,
        tab="deployments",
        status_code=status_code,
        view=view,
        example=example,
        result=result,
        window=USAGE_WINDOW,
    )


@router.post("/deployments/{name}/scale", response_class=HTMLResponse)
def scale(
    request: Request, name: str, caller: PageDeploymentWriter, replicas: Annotated[int, Form()]
) -> Response:
    _services(request).deployments.scale(caller, name, replicas)
    return go_to(request, f"/deployments/{name}")


@router.post("/deployments/{name}/update", response_class=HTMLResponse)
def update(
    request: Request,
    name: str,
    caller: PageDeploymentWriter,
    version: Annotated[str, Form()],
    canary_percent: Annotated[int | None, Form()] = None,
    analysis: Annotated[bool, Form()] = False,
) -> Response:
    """Roll out another version, all at once or as a canary (the API's update)."""
    _services(request).deployments.update(
        caller,
        RolloutRequest(
            deployment=name,
            version=version,
            canary=canary_percent,
            analysis=AnalysisMode.AUTO if analysis else AnalysisMode.MANUAL,
        ),
    )
    return go_to(request, f"/deployments/{name}")


@router.post("/deployments/{name}/promote", response_class=HTMLResponse)
def promote(request: Request, name: str, caller: PageDeploymentWriter) -> Response:
    _services(request).deployments.promote(caller, name)
    return go_to(request, f"/deployments/{name}")


@router.post("/deployments/{name}/rollback", response_class=HTMLResponse)
def rollback(request: Request, name: str, caller: PageDeploymentWriter) -> Response:
    _services(request).deployments.rollback(caller, name)
    return go_to(request, f"/deployments/{name}")


@router.post("/deployments/{name}/stop", response_class=HTMLResponse)
def stop(request: Request, name: str, caller: PageDeploymentWriter) -> Response:
    _services(request).deployments.stop(caller, name)
    return go_to(request, f"/deployments/{name}")


# -- try it ---------------------------------------------------------------------------


@router.post("/deployments/{name}/try", response_class=HTMLResponse)
async def try_it(
    request: Request,
    name: str,
    caller: PageInference,
    input: Annotated[str, Form()] = "",
    kind: Annotated[str, Form()] = "infer",
) -> Response:
    """One prediction through the inference service, as /v2/models/{name}/infer,
    /v1/embeddings or /v1/completions would send it; the answer and its latency go
    into the result box (the replica's own error, with its status, when it refuses)."""
    if kind not in TRY_KINDS:
        raise InvalidInput(f"unknown kind {kind!r}; choose one of: {', '.join(TRY_KINDS)}")
    inference = _inference(request)
    started = time.perf_counter()
    if kind == "infer":
        reply = await inference.model(caller, name, "POST", "infer", input.encode())
    else:
        field = "input" if kind == "embeddings" else "prompt"
        payload = {"model": name, field: input}
        raw = json.dumps(payload).encode()
        reply = await inference.openai(caller, TRY_PATHS[kind], payload, raw)
    result = TryResult(reply.status, _pretty(reply), (time.perf_counter() - started) * 1000)
    if is_htmx(request):
        return page(
            request, "deployments/_try_result.html", caller, result=result, status_code=reply.status
        )
    view = await run_in_threadpool(_view, _services(request), caller, name)
    return _detail(request, caller, view, TryExample(kind, input), result, reply.status)


def _pretty(reply: Reply) -> str:
    try:
        return json.dumps(json.loads(reply.body), indent=2)
    except ValueError:
        return reply.body.decode(errors="replace")


async def _example(request: Request, caller: Caller, deployment: Deployment) -> TryExample:
    """The try-it box's first content, from the served model's own signature (its V2
    metadata) or, while nothing serves it yet, from the registered version's."""
    metadata: dict[str, Any] | None = None
    if deployment.endpoint is not None:
        try:
            reply = await _inference(request).model(caller, deployment.name, "GET", "", None)
        except (Unavailable, NotFound):
            reply = None  # not serving (yet, or any more): the registry's signature below
        if reply is not None and reply.status == 200:
            metadata = json.loads(reply.body)
    if metadata is not None:
        platform = str(metadata.get("platform", ""))
        inputs = [
            TensorSpec(name=i["name"], dtype=i["datatype"], shape=i["shape"])
            for i in metadata.get("inputs", [])
        ]
    else:
        services = _services(request)
        ref = f"{deployment.model}@{deployment.primary_version}"
        version = await run_in_threadpool(services.registry_for(caller).get, ref)
        platform = {
            ModelType.EMBEDDING_MODEL: EMBEDDING_PLATFORMS[0],
            ModelType.LANGUAGE_MODEL: GENERATION_PLATFORMS[0],
        }.get(version.type, "")
        inputs = version.signature.inputs
    if platform in EMBEDDING_PLATFORMS:
        return TryExample("embeddings", "hello there")
    if platform in GENERATION_PLATFORMS:
        return TryExample("completions", "Hello, ")
    tensors = ",\n  ".join(json.dumps(_zeros(spec)) for spec in inputs)
    return TryExample("infer", '{"inputs": [\n  ' + tensors + "\n]}")


def _zeros(spec: TensorSpec) -> dict[str, Any]:
    """One V2 input of the spec's shape (one row where a dimension is free), all zeros."""
    shape = [dim if isinstance(dim, int) and dim > 0 else 1 for dim in spec.shape] or [1]
    datatype = DATATYPES.get(spec.dtype.lower(), spec.dtype.upper())
    count = 1
    for dim in shape:
        count *= dim
    zero: Any = "" if datatype == "BYTES" else False if datatype == "BOOL" else 0
    return {"name": spec.name, "shape": shape, "datatype": datatype, "data": [zero] * count}
