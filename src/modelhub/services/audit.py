"""Reading and verifying the append-only audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from modelhub.domain.auth import Action, Caller, parse_duration
from modelhub.domain.limits import check_text
from modelhub.domain.records import AuditEvent, AuditPage, AuditVerdict
from modelhub.errors import InvalidInput
from modelhub.services.auth import AuthService
from modelhub.stores.metadata.base import AuditQuery, MetadataStore

MAX_EVENTS = 10_000


HEAD_HASH = re.compile(r"[0-9a-f]{64}\Z")


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
        query = _query(actor, action, target, since, limit, 0)
        return self.metadata.list_audit(query)

    def page(
        self,
        caller: Caller,
        actor: str | None = None,
        action: str | None = None,
        target: str | None = None,
        since: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> AuditPage:
        """`list`'s filters, one page of them (newest first) with the number matched."""
        self.auth.authorize(caller, Action.AUDIT_READ)
        query = _query(actor, action, target, since, limit, offset)
        return AuditPage(
            items=self.metadata.list_audit(query), total=self.metadata.count_audit(query)
        )

    def verify(self, caller: Caller, expect_head: str | None = None) -> AuditVerdict:
        """The chain checked end to end; tampering is a verdict, not an exception.

        `expect_head` is a head hash recorded earlier (from a verdict, kept where the
        database's writers cannot reach): a chain that no longer contains it was
        truncated or rewritten, however consistent it looks now.
        """
        self.auth.authorize(caller, Action.AUDIT_READ)
        if expect_head is not None:
            expect_head = expect_head.strip().lower()
            if not HEAD_HASH.match(expect_head):
                raise InvalidInput(
                    "expect_head must be an event hash: 64 hex digits, as `audit verify` "
                    "prints after 'head'",
                    {"field": "expect_head", "value": expect_head[:80]},
                )
        return self.metadata.verify_audit(expect_head)


def _query(
    actor: str | None,
    action: str | None,
    target: str | None,
    since: str | None,
    limit: int,
    offset: int,
) -> AuditQuery:
    if not 1 <= limit <= MAX_EVENTS:
        raise InvalidInput(f"limit must be 1-{MAX_EVENTS}", {"field": "limit"})
    if offset < 0:
        raise InvalidInput("offset must be 0 or more", {"field": "offset"})
    for field, text in (("actor", actor), ("action", action), ("target", target)):
        if text is not None:
            check_text(text, field)
    return AuditQuery(
        actor=actor, action=action, target=target, since=_start(since), limit=limit, offset=offset
    )


def _start(since: str | None) -> datetime | None:
    """The time `since` (a bounded duration: see parse_duration) reaches back to."""
    if not since:
        return None
    return datetime.now(UTC) - parse_duration(since, "since")
