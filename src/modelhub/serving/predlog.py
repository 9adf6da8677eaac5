"""The prediction log of one replica: sample, queue, write Parquet, rotate, hand over.

On the request path only two things happen, both cheap and neither able to block:
`sample(name)` decides whether this request is logged (a random draw against the
deployment's rate, then its per-minute cap), and `offer(entry)` puts the sampled
request on a bounded queue without waiting. A full queue drops the entry and counts
it (`dropped`, exported on /metrics and in the replica's stats).

A writer thread takes the queued entries off every `tick_seconds` and keeps one
buffer per (deployment, version). A buffer is written as one Parquet file when it
passes `max_file_bytes` (estimated from the arrays it holds) or when its first entry
is older than `max_file_seconds`. A file is written under a temporary name, fsynced and renamed
into the spool folder: a `.parquet` there is always complete. The replica has no
artifact store; the platform ingests closed files from the spool (idempotently, by
digest) and deletes them.

One row of a file is one row of one request: `request_id`, `row`, `rows` (of the
request), `at` (UTC), `latency_ms`, `prediction` (JSON of the row's prediction, see
`domain.predictions.prediction_of`), then `input.<name>` and `output.<name>` holding
the row's values. Inputs the version marks private are written as nulls. The
deployment, model and version are in the file's key-value metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelhub.domain.predictions import prediction_of

if TYPE_CHECKING:
    import numpy as np

PARTIAL_SUFFIX = ".partial"
COUNTERS = ("sampled", "capped", "dropped", "logged")
OBJECT_ELEMENT_BYTES = 64  # estimate for one text element (object arrays hold pointers)


@dataclass(frozen=True)
class LogTarget:
    """What to log for one served name (a deployment) and how much of it."""

    deployment: str
    model: str
    rate: float
    max_per_minute: int
    private: dict[int, frozenset[str]] = field(default_factory=dict)  # version -> inputs

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogTarget:
        return cls(
            deployment=str(data["deployment"]),
            model=str(data["model"]),
            rate=float(data["rate"]),
            max_per_minute=int(data["max_per_minute"]),
            private={int(v): frozenset(names) for v, names in data.get("private", {}).items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "model": self.model,
            "rate": self.rate,
            "max_per_minute": self.max_per_minute,
            "private": {str(v): sorted(names) for v, names in self.private.items()},
        }


@dataclass(frozen=True, slots=True)
class Entry:
    """One sampled request, as the request path hands it over (no copies made)."""

    name: str
    version: int
    request_id: str
    at: float  # epoch seconds
    latency_ms: float
    rows: int
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


@dataclass
class _Buffer:
    target: LogTarget
    version: int
    opened: float  # monotonic
    entries: list[Entry] = field(default_factory=list)
    size: int = 0


@dataclass
class _Minute:
    minute: int = -1
    count: int = 0


def _estimated_bytes(entry: Entry) -> int:
    total = 96 + len(entry.request_id)
    for array in (*entry.inputs.values(), *entry.outputs.values()):
        total += array.size * OBJECT_ELEMENT_BYTES if array.dtype == object else array.nbytes
    return total


class PredictionLog:
    def __init__(
        self,
        spool: Path,
        queue_size: int = 4096,
        max_file_bytes: int = 8 * 1024 * 1024,
        max_file_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        draw: Callable[[], float] = random.random,
        tick_seconds: float = 0.25,
    ) -> None:
        self.spool = spool
        self.tick_seconds = tick_seconds
        self.max_file_bytes = max_file_bytes
        self.max_file_seconds = max_file_seconds
        self._monotonic = monotonic
        self._draw = draw
        self._queue: queue.Queue[Entry] = queue.Queue(maxsize=queue_size)
        self._targets: dict[str, LogTarget] = {}
        self._minutes: dict[str, _Minute] = {}
        self._buffers: dict[tuple[str, int], _Buffer] = {}
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sampled = 0
        self.capped = 0
        self.dropped = 0
        self.logged = 0
        # The same four counters per (deployment, version): the supervisor sums them
        # over a deployment's replicas into the platform's /metrics.
        # Each counter has one writer thread (the request path, or the writer for
        # `logged`); only making a key's counters takes the lock.
        self._counts: dict[tuple[str, int], dict[str, int]] = {}
        self._counts_lock = threading.Lock()
        self.files = 0
        self.write_errors = 0

    # -- the request path -----------------------------------------------------

    def configure(self, targets: list[LogTarget]) -> None:
        """Log these names from now on (others not at all)."""
        self._targets = {target.deployment: target for target in targets}

    def _count(self, name: str, version: int, counter: str, amount: int = 1) -> None:
        counts = self._counts.get((name, version))
        if counts is None:
            with self._counts_lock:
                counts = self._counts.setdefault((name, version), dict.fromkeys(COUNTERS, 0))
        counts[counter] += amount

    def sample(self, name: str, version: int) -> bool:
        """Whether this request to `name` (served by `version`) is logged: its rate,
        then its minute's cap."""
        target = self._targets.get(name)
        if target is None or self._draw() >= target.rate:
            return False
        minute = int(self._monotonic() // 60)
        counter = self._minutes.get(name)
        if counter is None:
            counter = self._minutes[name] = _Minute()
        if counter.minute != minute:
            counter.minute, counter.count = minute, 0
        if counter.count >= target.max_per_minute:
            self.capped += 1
            self._count(name, version, "capped")
            return False
        counter.count += 1
        self.sampled += 1
        self._count(name, version, "sampled")
        return True

    def offer(self, entry: Entry) -> bool:
        """Queue a sampled request for writing; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += 1
            self._count(entry.name, entry.version, "dropped")
            return False
        return True

    # -- the writer -----------------------------------------------------------

    def start(self) -> None:
        self.spool.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Woken by a timer, never by each entry: a thread woken per request would take
        # the interpreter lock from the event loop as often as requests are sampled.
        while not self._stop.wait(self.tick_seconds):
            self.drain()

    def drain(self, wait: float = 0.0) -> None:
        """Write what is queued (waiting up to `wait` s for a first entry), then close
        every file whose size or age is due."""
        try:
            entry = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
        except queue.Empty:
            entry = None
        with self._write_lock:
            while entry is not None:
                self._add(entry)
                try:
                    entry = self._queue.get_nowait()
                except queue.Empty:
                    entry = None
            now = self._monotonic()
            for key, buffer in list(self._buffers.items()):
                if now - buffer.opened >= self.max_file_seconds:
                    self._close(key)

    def _add(self, entry: Entry) -> None:
        target = self._targets.get(entry.name)
        if target is None:
            return  # no longer logged: the deployment changed since it was sampled
        key = (entry.name, entry.version)
        buffer = self._buffers.get(key)
        if buffer is None:
            buffer = self._buffers[key] = _Buffer(target, entry.version, self._monotonic())
        buffer.entries.append(entry)
        buffer.size += _estimated_bytes(entry)
        if buffer.size >= self.max_file_bytes:
            self._close(key)

    def flush(self) -> None:
        """Write every queued entry and close every open file now."""
        self.drain()
        with self._write_lock:
            for key in list(self._buffers):
                self._close(key)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _close(self, key: tuple[str, int]) -> None:
        buffer = self._buffers.pop(key)
        try:
            write_file(self.spool, buffer.target, buffer.version, buffer.entries)
        except (OSError, ValueError, TypeError):
            self.write_errors += 1  # this file's entries are lost; the replica goes on
            return
        self.logged += len(buffer.entries)
        self._count(key[0], key[1], "logged", len(buffer.entries))
        self.files += 1

    def stats(self) -> dict[str, Any]:
        """Totals of this replica, and `versions`: the counters per deployment version."""
        return {
            "sampled": self.sampled,
            "capped": self.capped,
            "dropped": self.dropped,
            "logged": self.logged,
            "files": self.files,
            "write_errors": self.write_errors,
            "queued": self._queue.qsize(),
            "versions": [
                {"deployment": name, "version": version, **counts}
                for (name, version), counts in list(self._counts.items())
            ],
        }


def _column(entries: list[Entry], name: str, outputs: bool, private: bool) -> list[Any]:
    values: list[Any] = []
    for entry in entries:
        if private:
            values.extend([None] * entry.rows)
            continue
        array = (entry.outputs if outputs else entry.inputs).get(name)
        if array is None:
            values.extend([None] * entry.rows)
        else:
            values.extend(
                array.tolist() if array.shape[:1] == (entry.rows,) else [None] * entry.rows
            )
    return values


def write_file(spool: Path, target: LogTarget, version: int, entries: list[Entry]) -> Path:
    """Write `entries` as one closed Parquet file in `spool` (temp name, fsync, rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    private = target.private.get(version, frozenset())
    columns: dict[str, Any] = {
        "request_id": [e.request_id for e in entries for _ in range(e.rows)],
        "row": pa.array([row for e in entries for row in range(e.rows)], pa.int32()),
        "rows": pa.array([e.rows for e in entries for _ in range(e.rows)], pa.int32()),
        "at": pa.array(
            [datetime.fromtimestamp(e.at, UTC) for e in entries for _ in range(e.rows)],
            pa.timestamp("us", tz="UTC"),
        ),
        "latency_ms": pa.array(
            [e.latency_ms for e in entries for _ in range(e.rows)], pa.float64()
        ),
        "prediction": [json.dumps(value) for e in entries for value in _predictions(e)],
    }
    input_names = sorted({name for e in entries for name in e.inputs} | private)
    output_names = sorted({name for e in entries for name in e.outputs})
    for name in input_names:
        values = _column(entries, name, outputs=False, private=name in private)
        columns[f"input.{name}"] = pa.nulls(len(values)) if name in private else values
    for name in output_names:
        columns[f"output.{name}"] = _column(entries, name, outputs=True, private=False)
    table = pa.table(columns).replace_schema_metadata(
        {
            "modelhub.deployment": target.deployment,
            "modelhub.model": target.model,
            "modelhub.version": str(version),
            "modelhub.private": json.dumps(sorted(private)),
        }
    )
    spool.mkdir(parents=True, exist_ok=True)  # again: someone may have removed it
    stamp = datetime.fromtimestamp(entries[0].at, UTC).strftime("%Y%m%dT%H%M%S")
    final = spool / f"{target.deployment}.v{version}.{stamp}.{uuid.uuid4().hex[:12]}.parquet"
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    try:
        with partial.open("wb") as sink:
            pq.write_table(table, sink, compression="zstd")
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, final)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return final


def _predictions(entry: Entry) -> list[Any]:
    try:
        values = prediction_of(entry.outputs)
    except (ValueError, IndexError, StopIteration, AttributeError):
        return [None] * entry.rows
    if len(values) != entry.rows:
        return [None] * entry.rows
    return values
