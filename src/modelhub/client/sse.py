"""Reading a Server-Sent Events body (the text/event-stream format) line by line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class SseMessage:
    event: str
    data: str
    id: str | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """Messages from the body's lines: `field: value` lines, ended by a blank line.

    Comments (`: keep-alive`) are skipped; several `data:` lines join with newlines;
    a message without `event:` is a "message", as the SSE standard says.
    """
    event, data, event_id = "", list[str](), None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield SseMessage(event or "message", "\n".join(data), event_id)
            event, data, event_id = "", [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id":
            event_id = value
    if data:
        yield SseMessage(event or "message", "\n".join(data), event_id)
