"""/api/v1/governance/models/{name}/versions/{version}/bias: thin routes over BiasService.

The labelled data arrives through /uploads first, as datasets do; the body names the
upload, the sensitive columns and the label column.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Body
from modelhub.api.security import requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.bias import BiasOptions
from modelhub.domain.governance import Assessment
from modelhub.domain.limits import PositiveInt64

router = APIRouter(prefix="/api/v1/governance", tags=["governance"])

Assessor = Annotated[Caller, Depends(requires(Action.GOVERNANCE_ASSESS))]
GovernanceReader = Annotated[Caller, Depends(requires(Action.GOVERNANCE_READ))]


class BiasBody(Body):
    upload_id: str
    options: BiasOptions


@router.post("/models/{name}/versions/{version}/bias", response_model=Assessment)
def assess_bias(
    name: str, version: PositiveInt64, body: BiasBody, services: ServicesDep, caller: Assessor
) -> Assessment:
    return services.bias.assess_upload(caller, f"{name}@{version}", body.upload_id, body.options)


@router.get(
    "/models/{name}/versions/{version}/bias/chart",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
)
def bias_chart(
    name: str,
    version: PositiveInt64,
    services: ServicesDep,
    caller: GovernanceReader,
    assessment: PositiveInt64 | None = None,
) -> Response:
    png = services.bias.chart(caller, f"{name}@{version}", assessment)
    return Response(png, media_type="image/png")
