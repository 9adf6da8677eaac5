"""/api/v1/audit: the append-only log and its hash-chain check."""

from __future__ import annotations

from fastapi import APIRouter

from modelhub.api.deps import ServicesDep
from modelhub.api.schemas import VerifyResult
from modelhub.api.security import AuditReader
from modelhub.domain.limits import PositiveInt64
from modelhub.domain.records import AuditEvent

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=list[AuditEvent])
def list_events(
    services: ServicesDep,
    caller: AuditReader,
    actor: str | None = None,
    action: str | None = None,
    target: str | None = None,
    since: str | None = None,
    limit: PositiveInt64 = 100,
) -> list[AuditEvent]:
    return services.audit.list(caller, actor, action, target, since, limit)


@router.get("/verify", response_model=VerifyResult)
def verify(services: ServicesDep, caller: AuditReader) -> VerifyResult:
    report = services.audit.verify(caller)
    return VerifyResult(intact=report.intact, first_broken_id=report.first_broken_id)
