"""Per-minute roll-ups: kept in the replica on the request path, merged across
replicas by the supervisor, and into hours by the history service.

`MinuteRecorder.record` is the hot path: a clock read, a comparison, a few integer
adds and one sketch insert (a few microseconds; bench/bench_rollup_overhead.py).
Minutes finish when the clock passes them, whether or not another request comes,
so every replica of a group finishes minute M at the supervisor's first poll after M.

The sketch codec (`sketches`) needs numpy: it is imported where it is used, so that
importing the serving host (the CLI does, through the deployment service) loads none.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ddsketch import DDSketch

from modelhub.domain.monitoring import RollupRecord, minute_of
from modelhub.errors import InvalidInput

KEEP_FINISHED = 5  # minutes a replica keeps after finishing them, for a missed poll


def _new_sketch() -> DDSketch:
    from modelhub.monitoring.sketches import new_sketch

    return new_sketch()


@dataclass
class Minute:
    """What one slot served in one roll-up period: `minute` counts periods of
    `seconds` since the epoch. The period is a minute in production; a divisor of 60
    (tests) hands a minute over in pieces, which merge into one stored minute."""

    minute: int
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    batches: int = 0
    batch_rows: int = 0
    in_flight_peak: int = 0
    latency: DDSketch = field(default_factory=_new_sketch)
    seconds: int = 60

    @property
    def start(self) -> datetime:
        """The start of the stored minute this period belongs to."""
        return minute_of(datetime.fromtimestamp(self.minute * self.seconds, UTC))

    def to_json(self) -> dict[str, Any]:
        from modelhub.monitoring.sketches import encode_text

        return {
            "minute": self.minute,
            "seconds": self.seconds,
            "requests": self.requests,
            "errors": dict(self.errors),
            "rows": self.rows,
            "batches": self.batches,
            "batch_rows": self.batch_rows,
            "in_flight_peak": self.in_flight_peak,
            "latency": encode_text(self.latency),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Minute:
        from modelhub.monitoring.sketches import decode_text

        try:
            return cls(
                minute=int(data["minute"]),
                requests=int(data["requests"]),
                errors={str(k): int(v) for k, v in dict(data["errors"]).items()},
                rows=int(data["rows"]),
                batches=int(data["batches"]),
                batch_rows=int(data["batch_rows"]),
                in_flight_peak=int(data["in_flight_peak"]),
                latency=decode_text(str(data["latency"])),
                seconds=int(data.get("seconds", 60)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"a minute roll-up is malformed: {exc}") from exc

    def absorb(self, other: Minute) -> None:
        """Add `other` (the same minute from another replica) into this one."""
        self.requests += other.requests
        for kind, count in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + count
        self.rows += other.rows
        self.batches += other.batches
        self.batch_rows += other.batch_rows
        self.in_flight_peak = max(self.in_flight_peak, other.in_flight_peak)
        if other.latency.count:
            self.latency.merge(other.latency)


class MinuteRecorder:
    """The current minute of one slot, and the last few finished ones."""

    def __init__(self, clock: Callable[[], float] = time.time, seconds: int = 60) -> None:
        if seconds < 1 or 60 % seconds:
            raise ValueError(f"a roll-up period must divide a minute, not {seconds} s")
        self.clock = clock
        self.seconds = seconds
        self.current = Minute(int(clock() // seconds), seconds=seconds)
        self.finished: deque[Minute] = deque(maxlen=KEEP_FINISHED * 60 // seconds)

    def _now(self) -> Minute:
        minute = int(self.clock() // self.seconds)
        current = self.current
        if minute != current.minute:
            if current.requests or current.batches or current.in_flight_peak:
                self.finished.append(current)
            current = self.current = Minute(minute, seconds=self.seconds)
        return current

    def record(self, latency_ms: float, rows: int, error: str | None) -> None:
        current = self._now()
        current.requests += 1
        current.rows += rows
        current.latency.add(latency_ms if latency_ms > 0.0 else 1e-6)
        if error is not None:
            current.errors[error] = current.errors.get(error, 0) + 1

    def batch(self, rows: int) -> None:
        # The batcher may call this from its compute thread: it only adds to the open
        # minute and never rolls it over (the event loop's calls do), so the two
        # threads never swap `current` at once; a batch at a minute's edge may count
        # in the minute before.
        current = self.current
        current.batches += 1
        current.batch_rows += rows

    def in_flight(self, count: int) -> None:
        current = self._now()
        if count > current.in_flight_peak:
            current.in_flight_peak = count

    def finished_minutes(self) -> list[Minute]:
        """The minutes the clock has passed (the current one is still open)."""
        self._now()
        return list(self.finished)


def merge_minutes(parts: Iterable[tuple[str, int, Minute]]) -> dict[tuple[str, int, int], Minute]:
    """(deployment, version, minute) from many replicas, merged: counts add, peaks take
    the largest, sketches merge."""
    merged: dict[tuple[str, int, int], Minute] = {}
    for deployment, version, minute in parts:
        key = (deployment, version, minute.minute)
        into = merged.get(key)
        if into is None:
            merged[key] = Minute(minute.minute, seconds=minute.seconds)
            into = merged[key]
        into.absorb(minute)
    return merged


def to_record(deployment: str, model: str, version: int, minute: Minute) -> RollupRecord:
    from modelhub.monitoring.sketches import encode

    return RollupRecord(
        deployment=deployment,
        model=model,
        version=version,
        start=minute.start,
        requests=minute.requests,
        errors_by_kind=dict(minute.errors),
        rows=minute.rows,
        batches=minute.batches,
        batch_rows=minute.batch_rows,
        in_flight_peak=minute.in_flight_peak,
        latency=encode(minute.latency),
    )


def combine(records: Iterable[RollupRecord], start: datetime | None = None) -> RollupRecord:
    """Records of one deployment version merged into one (at `start`, or the first's)."""
    from modelhub.monitoring.sketches import merge_encoded

    items = list(records)
    if not items:
        raise ValueError("combine needs at least one record")
    first = items[0]
    errors: dict[str, int] = {}
    for record in items:
        for kind, count in record.errors_by_kind.items():
            errors[kind] = errors.get(kind, 0) + count
    return RollupRecord(
        deployment=first.deployment,
        model=first.model,
        version=first.version,
        start=start or first.start,
        requests=sum(r.requests for r in items),
        errors_by_kind=errors,
        rows=sum(r.rows for r in items),
        batches=sum(r.batches for r in items),
        batch_rows=sum(r.batch_rows for r in items),
        in_flight_peak=max(r.in_flight_peak for r in items),
        latency=merge_encoded(r.latency for r in items),
    )
