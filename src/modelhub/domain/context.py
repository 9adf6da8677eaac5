"""Per-request context that travels without being passed through every call."""

from __future__ import annotations

from contextvars import ContextVar

# Set by the API for each request; the audit log records it with every event so an
# event can be matched to the request (and its logs) that caused it.
request_id: ContextVar[str | None] = ContextVar("modelhub_request_id", default=None)
