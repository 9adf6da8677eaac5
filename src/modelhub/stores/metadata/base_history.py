"""The history part of the MetadataStore interface: serving roll-ups per minute and
per hour, and process resource samples. Telemetry: written without audit events."""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from modelhub.domain.monitoring import (
    ResourceSample,
    ResourceTotals,
    RollupColumns,
    RollupRecord,
)

RESOLUTIONS = ("minute", "hour")
RollupKey = tuple[str, str, int, datetime]  # model, deployment, version, start
Combine = Callable[[Sequence[RollupRecord]], RollupRecord]


@dataclass(frozen=True)
class RollupQuery:
    """Roll-ups whose bucket starts in [start, end), narrowed by any field given."""

    resolution: str
    start: datetime
    end: datetime
    model: str | None = None
    deployment: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class Purged:
    minutes: int
    hours: int
    samples: int


class HistoryStore(abc.ABC):
    @abc.abstractmethod
    def get_rollups(self, resolution: str, keys: Sequence[RollupKey]) -> list[RollupRecord]:
        """The stored roll-ups of these keys that exist.

        InvalidInput for a resolution other than "minute" or "hour"."""

    @abc.abstractmethod
    def put_rollups(self, minutes: Sequence[RollupRecord], hours: Sequence[RollupRecord]) -> None:
        """Insert or replace these minute and hour roll-ups, all in one transaction.

        InvalidInput (and nothing written) when a record's start is not on its
        bucket's boundary or a count is negative."""

    @abc.abstractmethod
    def merge_rollups(
        self, minutes: Sequence[RollupRecord], hours: Sequence[RollupRecord], combine: Combine
    ) -> None:
        """Add these pieces to the stored roll-ups of their keys, in one transaction: the
        stored rows are locked, `combine([stored, *pieces])` (or of the pieces alone
        for a new key) replaces them. Concurrent writers of one key do not lose a
        piece. InvalidInput as put_rollups, and nothing written."""

    @abc.abstractmethod
    def list_rollups(self, query: RollupQuery) -> list[RollupRecord]:
        """Roll-ups matching the query, oldest first."""

    @abc.abstractmethod
    def rollup_columns(self, query: RollupQuery) -> RollupColumns:
        """The same roll-ups as list_rollups, as columns (the fast path for long reads)."""

    @abc.abstractmethod
    def add_resource_samples(self, samples: Sequence[ResourceSample]) -> None:
        """Append samples in one transaction; InvalidInput for an unknown kind."""

    @abc.abstractmethod
    def list_resource_samples(
        self, kind: str, subjects: Sequence[str], start: datetime, end: datetime
    ) -> list[ResourceSample]:
        """Samples of these subjects taken in [start, end), oldest first."""

    @abc.abstractmethod
    def resource_totals(self, kind: str, subject: str) -> ResourceTotals:
        """All samples of one subject summed: CPU-seconds (the last cumulative figure of
        each pid), GPU-seconds (utilisation x interval) and the peak resident memory."""

    @abc.abstractmethod
    def purge_history(
        self, minutes_before: datetime, hours_before: datetime, samples_before: datetime
    ) -> Purged:
        """Delete minute roll-ups, hour roll-ups and samples older than each cut-off."""
