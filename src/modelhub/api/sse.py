"""Server-Sent Events: a run's feed as a `text/event-stream` body.

Each RunEvent is one message, its id the event's id, so a client that reconnects
with `Last-Event-ID` (or `?after=`) misses nothing:

    id: 7
    event: progress
    data: {"id": 7, "run_id": 1, "kind": "progress", "at": "...", "data": {"step": 60, ...}}

New log text is `event: log` with `data: {"text": ..., "offset": <next byte>}` and no
id (pass `?log_offset=` to resume the log). A `: keep-alive` comment goes out when
nothing else has for a while, and the stream ends after the run's final status event.
An error after the stream has begun (the run was deleted, the database went away)
is one `event: error` message with the usual error body, and the end of the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool

from modelhub.errors import ModelhubError
from modelhub.services.run_feed import FeedBatch, RunFeed

MEDIA_TYPE = "text/event-stream"
POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def message(kind: str, data: Any, event_id: int | None = None) -> str:
    """One SSE message; `data` as compact JSON on one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def batch_messages(batch: FeedBatch) -> list[str]:
    """A poll's findings as messages: the log first, so a final status event comes last."""
    found = []
    if batch.log_text:
        found.append(message("log", {"text": batch.log_text, "offset": batch.log_offset}))
    found += [message(e.kind, e.model_dump(mode="json"), e.id) for e in batch.events]
    return found


async def event_stream(
    feed: RunFeed,
    poll_seconds: float = POLL_SECONDS,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[str]:
    """Poll `feed` (in a worker thread: the store is blocking) until its run has ended."""
    last_sent = clock()
    while True:
        try:
            batch = await run_in_threadpool(feed.poll)
        except ModelhubError as exc:  # the response has begun: say why it stops, then stop
            yield message("error", exc.to_dict())
            return
        for text in batch_messages(batch):
            yield text
            last_sent = clock()
        if batch.ended:
            return
        if clock() - last_sent >= keepalive_seconds:
            yield ": keep-alive\n\n"
            last_sent = clock()
        await anyio.sleep(poll_seconds)
