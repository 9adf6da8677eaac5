"""Following a run as it happens: what is new in its events and its log since the last look.

The API's Server-Sent Events stream and the local client's `run_events` both poll
a `RunFeed`, so the two agree on order and on when a run's feed ends: once the
run is completed, failed or cancelled and everything written before that has
been handed out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelhub.domain.auth import Caller
from modelhub.domain.runs import FINAL, Run, RunEvent
from modelhub.errors import InvalidInput
from modelhub.services.training import TrainingService

EVENTS_PAGE = 1000  # what one store read returns at most
LOG_BYTES_PER_POLL = 1024 * 1024


@dataclass(frozen=True)
class FeedBatch:
    """What one poll found: new log text (read up to `log_offset`), new events, the run."""

    run: Run
    log_text: str
    log_offset: int
    events: list[RunEvent] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        """The run is final, and this batch holds the last of its feed."""
        return self.run.status in FINAL


class RunFeed:
    """Polls one run for new events (after event id `after`) and log bytes (from `log_offset`).

    Every poll reads the run first, then its events and its log, so that when a
    poll sees the run final its batch already holds the final status event and
    the whole log. Raises NotFound for an unknown run, PermissionDenied as the
    training service does.
    """

    def __init__(
        self,
        training: TrainingService,
        caller: Caller,
        run_id: int,
        after: int = 0,
        log_offset: int = 0,
    ) -> None:
        if after < 0 or log_offset < 0:
            raise InvalidInput("after and log_offset cannot be negative", {"field": "after"})
        self.training = training
        self.caller = caller
        self.run_id = run_id
        self.after = after
        self.log_offset = log_offset

    def poll(self) -> FeedBatch:
        run = self.training.get_run(self.caller, self.run_id)
        events: list[RunEvent] = []
        while True:
            page = self.training.events(self.caller, self.run_id, self.after)
            events += page
            if page:
                self.after = page[-1].id
            if len(page) < EVENTS_PAGE:
                break
        text = self._read_log(final=run.status in FINAL)
        return FeedBatch(run, text, self.log_offset, events)

    def _read_log(self, final: bool) -> str:
        read = bytearray()
        while len(read) < LOG_BYTES_PER_POLL:
            chunk = self.training.logs(self.caller, self.run_id, self.log_offset + len(read))
            if not chunk:
                break
            read += chunk
        # A character cut in two waits for its other half, unless no more will come.
        whole = bytes(read) if final else whole_utf8(bytes(read))
        self.log_offset += len(whole)
        return whole.decode("utf-8", errors="replace")


def whole_utf8(chunk: bytes) -> bytes:
    """`chunk` without a trailing, incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(chunk)) + 1):
        byte = chunk[-back]
        if byte & 0xC0 == 0x80:  # a continuation byte: the lead is further back
            continue
        if byte < 0x80:
            return chunk
        needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
        return chunk if back >= needed else chunk[:-back]
    return chunk
