"""The hash that links each audit event to the one before it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelhub.domain.records import AuditVerdict

GENESIS = "0" * 64


def utc_naive(at: datetime) -> datetime:
    """SQLite drops time zones; store and hash every instant as naive UTC."""
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def event_hash(
    prev_hash: str,
    event_id: int,
    actor: str,
    action: str,
    target: str,
    at: datetime,
    details: dict[str, Any],
    request_id: str | None,
) -> str:
    body = json.dumps(
        {
            "id": event_id,
            "request_id": request_id,
            "actor": actor,
            "action": action,
            "target": target,
            "at": utc_naive(at).isoformat(timespec="microseconds"),
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


# -- checking the chain as stored -------------------------------------------------

MAX_PROBLEMS = 20
_UNREADABLE = object()


@dataclass(frozen=True)
class StoredEvent:
    """An audit row as text, before any column is trusted to parse."""

    id: int
    actor: Any
    action: Any
    target: Any
    at: Any
    details: Any
    request_id: Any
    prev_hash: Any
    hash: Any


@dataclass(frozen=True)
class StoredHead:
    id: Any
    last_id: Any
    last_hash: Any


def _parse_time(text: Any) -> datetime | None:
    if isinstance(text, datetime):
        return text
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def _parse_details(text: Any) -> Any:
    if not isinstance(text, str | bytes):
        return _UNREADABLE
    try:
        return json.loads(text)
    except ValueError:
        return _UNREADABLE


class _Findings:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.first_broken_id: int | None = None
        self.more = 0

    def add(self, event_id: int | None, problem: str) -> None:
        if self.first_broken_id is None and event_id is not None:
            self.first_broken_id = event_id
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        else:
            self.more += 1

    def listed(self) -> list[str]:
        return [*self.problems, f"... and {self.more} more"] if self.more else self.problems


def check_chain(
    events: Iterable[StoredEvent], heads: list[StoredHead], expect_head: str | None = None
) -> AuditVerdict:
    """Walk the chain from the first event and compare its end with the head row.

    Every problem is named, none raises: an edited, deleted, reordered or
    unreadable event, a missing, extra or rewound head, and an `expect_head` (a
    hash recorded elsewhere earlier) that the chain no longer contains.
    """
    found = _Findings()
    prev, prev_id, count = GENESIS, 0, 0
    seen_expected = expect_head is None or expect_head == GENESIS
    for event in events:
        count += 1
        at = _parse_time(event.at)
        details = _parse_details(event.details)
        if at is None:
            found.add(event.id, f"event {event.id}: its time {event.at!r} does not parse")
        if details is _UNREADABLE:
            found.add(event.id, f"event {event.id}: its details are not JSON")
        if event.prev_hash != prev:
            after = f"event {prev_id}" if prev_id else "the start of the log"
            found.add(
                event.id,
                f"event {event.id} does not follow {after}: events between them were "
                "deleted, or events were reordered",
            )
        elif at is not None and details is not _UNREADABLE:
            expected = event_hash(
                prev, event.id, event.actor, event.action, event.target, at, details,
                event.request_id,
            )  # fmt: skip
            if event.hash != expected:
                found.add(event.id, f"event {event.id} does not match its hash: it was edited")
        if event.hash == expect_head:
            seen_expected = True
        prev, prev_id = str(event.hash), event.id
    _check_heads(found, heads, prev_id, prev)
    if not seen_expected:
        found.add(
            None,
            f"the expected head {expect_head} is not in the chain: events up to it were "
            "deleted or rewritten since it was recorded",
        )
    return AuditVerdict(
        intact=not found.problems,
        first_broken_id=found.first_broken_id,
        problems=found.listed(),
        events=count,
        head_id=prev_id,
        head_hash=prev,
    )


def _check_heads(found: _Findings, heads: list[StoredHead], last_id: int, last_hash: str) -> None:
    if not heads:
        found.add(None, "the audit_head row is missing: the end of the chain cannot be checked")
        return
    if len(heads) > 1 or heads[0].id != 1:
        ids = ", ".join(str(head.id) for head in heads)
        found.add(
            None,
            f"audit_head holds {len(heads)} row(s) (id {ids}) where there is exactly one, "
            "id 1: a head was added or replaced",
        )
    head = next((head for head in heads if head.id == 1), None)
    if head is None or (head.last_id == last_id and head.last_hash == last_hash):
        return
    if isinstance(head.last_id, int) and head.last_id > last_id:
        found.add(
            last_id + 1,
            f"the head records event {head.last_id} but the chain ends at event {last_id}: "
            "the newest events were deleted",
        )
    else:
        found.add(
            None,
            f"the head (event {head.last_id}) does not match the end of the chain "
            f"(event {last_id}): the head was edited",
        )
