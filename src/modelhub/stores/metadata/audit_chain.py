"""The hash that links each audit event to the one before it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

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
