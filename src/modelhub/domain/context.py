"""Per-request context that travels without being passed through every call."""

from __future__ import annotations

import re
import secrets
from contextvars import ContextVar

# Set by the API for each request; the audit log records it with every event so an
# event can be matched to the request (and its logs) that caused it.
request_id: ContextVar[str | None] = ContextVar("modelhub_request_id", default=None)

# What a client may choose as its request id: it is echoed in a response header and
# stored in the audit log, so only short plain tokens (no spaces, controls or
# non-ASCII) are kept; anything else is replaced by one the server makes.
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


def new_request_id() -> str:
    return secrets.token_hex(8)


def accept_request_id(sent: bytes | None) -> str:
    """The client's X-Request-ID when it matches REQUEST_ID, else a new server one."""
    if sent:
        try:
            text = sent.decode("ascii")
        except UnicodeDecodeError:
            return new_request_id()
        if REQUEST_ID.fullmatch(text):
            return text
    return new_request_id()


class QueryTally:
    """What one request asked of the metadata database: how many statements, how long.

    The API puts one in `query_tally` for each request and reports it in the response's
    Server-Timing header; the engine adds to it. Threads the request hands work to see
    the same tally, since they run in a copy of the request's context.
    """

    __slots__ = ("count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0


query_tally: ContextVar[QueryTally | None] = ContextVar("modelhub_query_tally", default=None)
