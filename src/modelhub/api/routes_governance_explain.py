"""POST /api/v1/governance/models/{name}/versions/{version}/explain: a thin route over
ExplanationService. The data file arrives through /uploads first; the body names it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import Body
from modelhub.api.security import requires
from modelhub.domain.auth import Action, Caller
from modelhub.domain.explanation import ExplainOptions, Explanation
from modelhub.domain.limits import PositiveInt64

router = APIRouter(prefix="/api/v1/governance", tags=["governance"])

Assessor = Annotated[Caller, Depends(requires(Action.GOVERNANCE_ASSESS))]


class ExplainBody(Body):
    upload_id: str
    options: ExplainOptions = ExplainOptions()


@router.post("/models/{name}/versions/{version}/explain", response_model=Explanation)
def explain(
    name: str, version: PositiveInt64, body: ExplainBody, services: ServicesDep, caller: Assessor
) -> Explanation:
    return services.explain.explain_upload(caller, name, version, body.upload_id, body.options)
