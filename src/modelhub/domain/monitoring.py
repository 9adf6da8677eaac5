"""Time windows that monitoring figures are computed over."""

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

    def previous(self) -> Window:
        """The window of equal length just before."""
        return Window(start=self.start - (self.end - self.start), end=self.start)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()
