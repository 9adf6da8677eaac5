"""/api/v1/audit: the append-only log and its hash-chain check."""

from __future__ import annotations

from fastapi import APIRouter

from modelhub.api.deps import ServicesDep
from modelhub.api.security import AuditReader
from modelhub.domain.limits import PositiveInt64
from modelhub.domain.records import AuditEvent, AuditVerdict

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


@router.get("/verify", response_model=AuditVerdict)
def verify(
    services: ServicesDep, caller: AuditReader, expect_head: str | None = None
) -> AuditVerdict:
    """200 whatever it finds: check `intact`, and `problems` for what is wrong."""
    return services.audit.verify(caller, expect_head)
