"""Reading and verifying the append-only audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from modelhub.domain.auth import Action, Caller, parse_duration
from modelhub.domain.limits import check_text
from modelhub.domain.records import AuditEvent
from modelhub.errors import InvalidInput
from modelhub.services.auth import AuthService
from modelhub.stores.metadata.base import AuditQuery, MetadataStore

MAX_EVENTS = 10_000
MAX_SINCE = 20  # characters of a `since` duration: 19 digits and a unit


@dataclass(frozen=True)
class VerifyReport:
    intact: bool
    first_broken_id: int | None


class AuditService:
    def __init__(self, metadata: MetadataStore, auth: AuthService) -> None:
        self.metadata = metadata
        self.auth = auth

    def list(
        self,
        caller: Caller,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: str | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first. `since` is a duration back from now (`1d`, `2h`)."""
        self.auth.authorize(caller, Action.AUDIT_READ)
        if not 1 <= limit <= MAX_EVENTS:
            raise InvalidInput(f"limit must be 1-{MAX_EVENTS}", {"field": "limit"})
        for field, text in (("actor", actor), ("action", action), ("target", target)):
            if text is not None:
                check_text(text, field)
        query = AuditQuery(
            actor=actor, action=action, target=target, since=_start(since), limit=limit
        )
        return self.metadata.list_audit(query)

    def verify(self, caller: Caller) -> VerifyReport:
        self.auth.authorize(caller, Action.AUDIT_READ)
        broken = self.metadata.verify_audit()
        return VerifyReport(intact=broken is None, first_broken_id=broken)


def _start(since: str | None) -> datetime | None:
    """The time `since` reaches back to; None (every event) past the start of the calendar."""
    if not since:
        return None
    if len(since) > MAX_SINCE:
        message = f"since: at most {MAX_SINCE} characters, such as 30d"
        raise InvalidInput(message, {"field": "since"})
    try:
        return datetime.now(UTC) - parse_duration(since)
    except OverflowError:
        return None
