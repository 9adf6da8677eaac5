"""The history part of the SQL metadata store (roll-ups and resource samples)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Table,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
)

from modelhub.domain.monitoring import (
    RESOURCE_KINDS,
    ResourceSample,
    ResourceTotals,
    RollupColumns,
    RollupRecord,
    hour_of,
    minute_of,
)
from modelhub.errors import InvalidInput
from modelhub.stores.metadata.base_history import (
    RESOLUTIONS,
    Combine,
    Purged,
    RollupKey,
    RollupQuery,
)
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware
from modelhub.stores.metadata.tables import (
    monitoring_hours,
    monitoring_minutes,
    resource_samples,
)

KEYS_PER_QUERY = 200


def _table(resolution: str) -> Table:
    if resolution not in RESOLUTIONS:
        raise InvalidInput(
            f"unknown resolution {resolution!r}: use one of {', '.join(RESOLUTIONS)}",
            {"field": "resolution", "value": resolution},
        )
    return monitoring_minutes if resolution == "minute" else monitoring_hours


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise InvalidInput("times given to the history store must carry a time zone")
    return at.astimezone(UTC)


def _check(record: RollupRecord, resolution: str) -> dict[str, Any]:
    start = _utc(record.start)
    boundary = minute_of(start) if resolution == "minute" else hour_of(start)
    if start != boundary:
        raise InvalidInput(
            f"a {resolution} roll-up must start on a {resolution} boundary, not {start}",
            {"deployment": record.deployment, "start": start.isoformat()},
        )
    counts = (
        record.requests,
        record.rows,
        record.batches,
        record.batch_rows,
        record.in_flight_peak,
        *record.errors_by_kind.values(),
    )
    if any(count < 0 for count in counts):
        raise InvalidInput(
            "a roll-up count is negative",
            {"deployment": record.deployment, "version": record.version},
        )
    return {
        "model": record.model,
        "deployment": record.deployment,
        "version": record.version,
        "start": start,
        "requests": record.requests,
        "errors": record.errors,
        "errors_by_kind": dict(record.errors_by_kind),
        "rows": record.rows,
        "batches": record.batches,
        "batch_rows": record.batch_rows,
        "in_flight_peak": record.in_flight_peak,
        "latency": record.latency,
    }


def _rollup(row: Row[Any]) -> RollupRecord:
    return RollupRecord(
        deployment=row.deployment,
        model=row.model,
        version=row.version,
        start=_aware(row.start),
        requests=row.requests,
        errors_by_kind={str(k): int(v) for k, v in (row.errors_by_kind or {}).items()},
        rows=row.rows,
        batches=row.batches,
        batch_rows=row.batch_rows,
        in_flight_peak=row.in_flight_peak,
        latency=bytes(row.latency),
    )


def _sample(row: Row[Any]) -> ResourceSample:
    return ResourceSample(
        kind=row.kind,
        subject=row.subject,
        pid=row.pid,
        at=_aware(row.at),
        cpu_percent=row.cpu_percent,
        cpu_seconds=row.cpu_seconds,
        rss_bytes=row.rss_bytes,
        gpu_util=row.gpu_util,
        gpu_memory_bytes=row.gpu_memory_bytes,
        interval_seconds=row.interval_seconds,
    )


def _stored(
    conn: Connection, table: Table, keys: Sequence[RollupKey], lock: bool
) -> list[RollupRecord]:
    # Sorted, and locked in key order: two writers of overlapping keys cannot deadlock.
    wanted = sorted((m, d, v, _utc(s)) for m, d, v, s in keys)
    c = table.c
    found: list[RollupRecord] = []
    for at in range(0, len(wanted), KEYS_PER_QUERY):
        clause = or_(
            *(
                and_(c.model == m, c.deployment == d, c.version == v, c.start == s)
                for m, d, v, s in wanted[at : at + KEYS_PER_QUERY]
            )
        )
        stmt = select(table).where(clause).order_by(c.model, c.deployment, c.version, c.start)
        found.extend(_rollup(row) for row in conn.execute(stmt.with_for_update() if lock else stmt))
    return found


def _replace(conn: Connection, table: Table, values: list[dict[str, Any]]) -> None:
    if not values:
        return
    c = table.c
    keys = [(v["model"], v["deployment"], v["version"], v["start"]) for v in values]
    for at in range(0, len(keys), KEYS_PER_QUERY):
        chunk = keys[at : at + KEYS_PER_QUERY]
        conn.execute(
            delete(table).where(tuple_(c.model, c.deployment, c.version, c.start).in_(chunk))
        )
    conn.execute(insert(table), values)


def _narrowed(stmt: Any, table: Table, query: RollupQuery) -> Any:
    stmt = stmt.where(table.c.start >= _utc(query.start), table.c.start < _utc(query.end))
    if query.model is not None:
        stmt = stmt.where(table.c.model == query.model)
    if query.deployment is not None:
        stmt = stmt.where(table.c.deployment == query.deployment)
    if query.version is not None:
        stmt = stmt.where(table.c.version == query.version)
    return stmt.order_by(table.c.start, table.c.deployment, table.c.version)


def _instant(at: str | datetime) -> datetime:
    return _aware(datetime.fromisoformat(at) if isinstance(at, str) else at).astimezone(UTC)


def _kinds(text: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in json.loads(text).items()}


class HistoryQueries(SqlStoreBase):
    def get_rollups(self, resolution: str, keys: Sequence[RollupKey]) -> list[RollupRecord]:
        table = _table(resolution)
        with self._read() as conn:
            return _stored(conn, table, keys, lock=False)

    def put_rollups(self, minutes: Sequence[RollupRecord], hours: Sequence[RollupRecord]) -> None:
        batches = [
            (monitoring_minutes, [_check(r, "minute") for r in minutes]),
            (monitoring_hours, [_check(r, "hour") for r in hours]),
        ]
        with self._write_plain() as conn:
            for table, values in batches:
                _replace(conn, table, values)

    def merge_rollups(
        self, minutes: Sequence[RollupRecord], hours: Sequence[RollupRecord], combine: Combine
    ) -> None:
        for record in minutes:
            _check(record, "minute")
        for record in hours:
            _check(record, "hour")
        with self._write_plain() as conn:
            for table, pieces in ((monitoring_minutes, minutes), (monitoring_hours, hours)):
                by_key: dict[RollupKey, list[RollupRecord]] = {}
                for piece in pieces:
                    model, deployment, version, start = piece.key
                    by_key.setdefault((model, deployment, version, _utc(start)), []).append(piece)
                stored = {r.key: r for r in _stored(conn, table, list(by_key), lock=True)}
                merged = [
                    combine([*([stored[key]] if key in stored else []), *parts])
                    for key, parts in by_key.items()
                ]
                resolution = "minute" if table is monitoring_minutes else "hour"
                _replace(conn, table, [_check(r, resolution) for r in merged])

    def list_rollups(self, query: RollupQuery) -> list[RollupRecord]:
        table = _table(query.resolution)
        stmt = _narrowed(select(table), table, query)
        with self._read() as conn:
            return [_rollup(row) for row in conn.execute(stmt)]

    def rollup_columns(self, query: RollupQuery) -> RollupColumns:
        table = _table(query.resolution)
        c = table.c
        # SQLite hands times back as text its DateTime type parses row by row: read the
        # text and parse each distinct instant once. JSON likewise, only where errors.
        start = cast(c.start, Text) if self.engine.dialect.name == "sqlite" else c.start
        columns = (c.deployment, c.version, start, c.requests, c.errors)
        rest = (cast(c.errors_by_kind, Text), c.rows, c.batches, c.batch_rows)
        stmt = _narrowed(select(*columns, *rest, c.in_flight_peak, c.latency), table, query)
        with self._read() as conn:
            rows = conn.execute(stmt).all()
        if not rows:
            return RollupColumns()
        columns_of = [list(column) for column in zip(*rows, strict=True)]
        deployment, version, starts, requests, errors, kinds, *more = columns_of
        times: dict[Any, datetime] = {}
        parsed: dict[str, dict[str, int]] = {}
        return RollupColumns(
            deployment=deployment,
            version=version,
            start=[times.get(at) or times.setdefault(at, _instant(at)) for at in starts],
            requests=requests,
            errors=errors,
            errors_by_kind=[
                (parsed.get(text) or parsed.setdefault(text, _kinds(text))) if count else {}
                for text, count in zip(kinds, errors, strict=True)
            ],
            rows=more[0],
            batches=more[1],
            batch_rows=more[2],
            in_flight_peak=more[3],
            latency=[bytes(blob) for blob in more[4]],
        )

    def add_resource_samples(self, samples: Sequence[ResourceSample]) -> None:
        values = []
        for sample in samples:
            if sample.kind not in RESOURCE_KINDS:
                raise InvalidInput(
                    f"unknown resource sample kind {sample.kind!r}",
                    {"field": "kind", "value": sample.kind},
                )
            values.append(
                {
                    "kind": sample.kind,
                    "subject": sample.subject,
                    "pid": sample.pid,
                    "at": _utc(sample.at),
                    "cpu_percent": sample.cpu_percent,
                    "cpu_seconds": sample.cpu_seconds,
                    "rss_bytes": sample.rss_bytes,
                    "gpu_util": sample.gpu_util,
                    "gpu_memory_bytes": sample.gpu_memory_bytes,
                    "interval_seconds": sample.interval_seconds,
                }
            )
        if not values:
            return
        with self._write_plain() as conn:
            conn.execute(insert(resource_samples), values)

    def list_resource_samples(
        self, kind: str, subjects: Sequence[str], start: datetime, end: datetime
    ) -> list[ResourceSample]:
        if not subjects:
            return []
        c = resource_samples.c
        stmt = (
            select(resource_samples)
            .where(
                c.kind == kind,
                c.subject.in_(list(subjects)),
                c.at >= _utc(start),
                c.at < _utc(end),
            )
            .order_by(c.at, c.id)
        )
        with self._read() as conn:
            return [_sample(row) for row in conn.execute(stmt)]

    def resource_totals(self, kind: str, subject: str) -> ResourceTotals:
        c = resource_samples.c
        per_pid = (
            select(
                func.max(c.cpu_seconds).label("cpu"),
                func.max(c.rss_bytes).label("rss"),
                func.sum(func.coalesce(c.gpu_util, 0.0) * c.interval_seconds).label("gpu"),
            )
            .where(c.kind == kind, c.subject == subject)
            .group_by(c.pid)
            .subquery()
        )
        stmt = select(
            func.coalesce(func.sum(per_pid.c.cpu), 0.0),
            func.coalesce(func.sum(per_pid.c.gpu), 0.0),
            func.coalesce(func.max(per_pid.c.rss), 0),
        )
        with self._read() as conn:
            cpu, gpu, rss = conn.execute(stmt).one()
        return ResourceTotals(
            cpu_seconds=float(cpu), gpu_seconds=float(gpu) / 100.0, peak_rss_bytes=int(rss)
        )

    def purge_history(
        self, minutes_before: datetime, hours_before: datetime, samples_before: datetime
    ) -> Purged:
        with self._write_plain() as conn:
            minutes = conn.execute(
                delete(monitoring_minutes).where(monitoring_minutes.c.start < _utc(minutes_before))
            ).rowcount
            hours = conn.execute(
                delete(monitoring_hours).where(monitoring_hours.c.start < _utc(hours_before))
            ).rowcount
            samples = conn.execute(
                delete(resource_samples).where(resource_samples.c.at < _utc(samples_before))
            ).rowcount
        return Purged(int(minutes), int(hours), int(samples))
