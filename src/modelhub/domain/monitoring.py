"""Time windows of monitoring: the span a figure covers, and the one before it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Window:
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive

    @classmethod
    def last(cls, length: timedelta, now: datetime) -> Window:
        return cls(start=now - length, end=now)

    def previous(self) -> Window:  # the window of equal length just before
        return Window(start=self.start - (self.end - self.start), end=self.start)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()
