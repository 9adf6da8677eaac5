"""The metrics file of a run, written in batches.

Opening, appending to and closing `metrics.jsonl` for every line cost a trainer a
system call or three per metric. The writer keeps the file open and hands what was
logged to the OS every `interval` seconds, whenever asked (a checkpoint asks, so the
lines a resumed run relies on are on disk before its checkpoint is) and at exit. A
process killed outright loses at most the lines of its last interval; a line is never
cut in half, because each flush is written with as few `write` calls as the OS
allows, all of whole lines.
"""

from __future__ import annotations

import atexit
import os
import time
from collections.abc import Callable
from pathlib import Path

FLUSH_SECONDS = 0.5


class MetricsWriter:
    """Appends text lines to `path`, in batches; `close` (or exit) writes the rest."""

    def __init__(
        self,
        path: Path,
        interval: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.interval = interval
        self._clock = clock
        self._pending: list[str] = []
        self._fd: int | None = None
        self._flushed_at = clock()
        self._closes_at_exit = False

    def write(self, line: str) -> None:
        """Queue one line (without its newline); flush when the interval has passed."""
        if not self._closes_at_exit:
            atexit.register(self.close)
            self._closes_at_exit = True
        self._pending.append(line + "\n")
        if self._clock() - self._flushed_at >= self.interval:
            self.flush()

    def flush(self) -> None:
        """Hand every queued line to the OS (not fsynced: a killed process keeps them)."""
        self._flushed_at = self._clock()
        if not self._pending:
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        data = memoryview("".join(self._pending).encode())
        self._pending.clear()
        while data:
            data = data[os.write(self._fd, data) :]

    def close(self) -> None:
        """Flush and close the file; the writer opens it again if written to later."""
        self.flush()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._closes_at_exit:
            atexit.unregister(self.close)
            self._closes_at_exit = False
