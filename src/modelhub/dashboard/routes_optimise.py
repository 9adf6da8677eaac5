"""The registry tab's Optimise action: the version page's form calls the service method
the API's optimize route calls (`OptimisationService.optimise`), under the same action
(models.register). A registered result opens its own version page; a result over the
tolerance shows the report, with both sets of figures and why it was not registered."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from modelhub.dashboard.errors import TAG
from modelhub.dashboard.render import go_to, page
from modelhub.dashboard.session import page_requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.enums import parse_enum
from modelhub.domain.limits import PositiveInt64
from modelhub.domain.optimisation import DEFAULT_MAX_ACCURACY_DROP, Target
from modelhub.services import Services
from modelhub.services.optimisation import OptimiseRequest

router = APIRouter(tags=[TAG], include_in_schema=False)

PageOptimiser = Annotated[Caller, Depends(page_requires(Action.MODELS_REGISTER))]


def _version_url(name: str, version: int) -> str:
    return f"/models/{quote(name, safe='')}/versions/{version}"


@router.post("/models/{name}/versions/{version}/optimize", response_model=None)
async def optimise_version(
    request: Request,
    name: str,
    version: PositiveInt64,
    caller: PageOptimiser,
    to: Annotated[str, Form(max_length=16)],
    max_accuracy_drop: Annotated[float, Form()] = DEFAULT_MAX_ACCURACY_DROP,
    force: Annotated[bool, Form()] = False,
) -> Response:
    services: Services = request.app.state.services
    optimise = OptimiseRequest(
        ref=f"{name}@{version}",
        to=parse_enum(Target, to, "to"),
        max_accuracy_drop=max_accuracy_drop,
        force=force,
    )
    report = await run_in_threadpool(services.optimisation.optimise, caller, optimise)
    if report.registered_version is not None:
        return go_to(request, _version_url(name, report.registered_version))
    return page(
        request,
        "registry/optimised.html",
        caller,
        tab="registry",
        report=report,
        source_url=_version_url(name, version),
    )
