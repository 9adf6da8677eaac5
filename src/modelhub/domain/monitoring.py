"""Monitoring records shared by the monitoring lanes: time windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Window:
    start: datetime  # aware UTC, inclusive
    end: datetime  # aware UTC, exclusive

    @classmethod
    def last(cls, length: timedelta, now: datetime) -> Window:
        return cls(now - length, now)

    def previous(self) -> Window:
        return Window(self.start - (self.end - self.start), self.start)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()
