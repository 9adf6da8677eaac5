"""The event stream's format, its keep-alives and its end, read back by the client's parser."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

from modelhub.api import sse
from modelhub.client.sse import SseMessage, parse_sse
from modelhub.domain.pipelines import Priority
from modelhub.domain.runs import Run, RunEvent, RunResources, RunStatus
from modelhub.errors import NotFound
from modelhub.services.run_feed import FeedBatch

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def make_run(status: RunStatus) -> Run:
    return Run(
        id=1,
        pipeline="p",
        pipeline_version=1,
        status=status,
        priority=Priority.NORMAL,
        resources=RunResources(cpus=1, memory=1, gpus=0),
        created_by="alice",
        created_at=NOW,
        result_model="m",
    )


def event(event_id: int, kind: str, **data: object) -> RunEvent:
    return RunEvent(id=event_id, run_id=1, kind=kind, at=NOW, data=data)


class ScriptedFeed:
    def __init__(self, *batches: FeedBatch | Exception) -> None:
        self.batches = list(batches)

    def poll(self) -> FeedBatch:
        found = self.batches.pop(0)
        if isinstance(found, Exception):
            raise found
        return found


def collect(feed: ScriptedFeed, **kwargs: object) -> list[str]:
    async def run() -> list[str]:
        return [text async for text in sse.event_stream(feed, poll_seconds=0, **kwargs)]

    return asyncio.run(run())


def test_messages_parse_back_to_what_was_sent() -> None:
    running = FeedBatch(
        make_run(RunStatus.RUNNING),
        "line one\nline two\n",
        18,
        [event(7, "progress", step=3, progress=50.0)],
    )
    text = "".join(sse.batch_messages(running))
    assert text.startswith('event: log\ndata: {"text":"line one\\nline two\\n","offset":18}\n\n')
    assert "id: 7\nevent: progress\ndata: " in text
    parsed = list(parse_sse(text.splitlines(keepends=True)))
    assert [(m.event, m.id) for m in parsed] == [("log", None), ("progress", "7")]
    assert RunEvent.model_validate_json(parsed[1].data) == running.events[0]


def test_the_stream_ends_after_the_final_status_and_keeps_alive_meanwhile() -> None:
    quiet = FeedBatch(make_run(RunStatus.RUNNING), "", 0)
    done = FeedBatch(
        make_run(RunStatus.COMPLETED), "bye\n", 4, [event(9, "status", status="completed")]
    )
    ticks = itertools.count(step=8)
    sent = collect(ScriptedFeed(quiet, quiet, quiet, done), clock=lambda: float(next(ticks)))
    assert sent[0] == ": keep-alive\n\n" and len(sent) == 3
    assert sent[1].startswith("event: log") and sent[2].startswith("id: 9\nevent: status")


def test_an_error_mid_stream_is_one_error_message_and_the_end() -> None:
    sent = collect(ScriptedFeed(NotFound("run 1 does not exist", {"run": 1})))
    assert sent == [
        'event: error\ndata: {"code":"not_found","message":"run 1 does not exist",'
        '"details":{"run":1}}\n\n'
    ]


def test_the_parser_skips_comments_and_joins_data_lines() -> None:
    lines = [": keep-alive", "", "id: 3", "event: x", "data: a", "data: b", "", "data: c"]
    assert list(parse_sse(lines)) == [SseMessage("x", "a\nb", "3"), SseMessage("message", "c")]
