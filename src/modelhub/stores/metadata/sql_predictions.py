"""The prediction log's index in SQL: files by digest, one row per sampled request.

Ingesting log files is telemetry (`_write_plain`); labels are a person's statement
about the model's answers, audited with the change."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from modelhub.domain.predictions import LabelDraft, LoggedPrediction, PredictionLogFile
from modelhub.errors import NotFound
from modelhub.stores.metadata.base import AuditDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import prediction_log_files, prediction_records

CHUNK = 500  # ids per IN (...) clause: well under every backend's parameter limit


def _file(row: Row[Any]) -> PredictionLogFile:
    return PredictionLogFile(
        digest=row.digest,
        deployment=row.deployment,
        model=row.model,
        version=row.version,
        rows=row.rows,
        requests=row.requests,
        size=row.size,
        first_at=_aware(row.first_at),
        last_at=_aware(row.last_at),
        ingested_at=_aware(row.ingested_at),
    )


def _prediction(row: Row[Any]) -> LoggedPrediction:
    return LoggedPrediction(
        request_id=row.request_id,
        model=row.model,
        version=row.version,
        deployment=row.deployment,
        at=_aware(row.at),
        latency_ms=row.latency_ms,
        rows=row.rows,
        prediction=row.prediction,
        kind=row.kind,
        label=row.label,
        labelled_at=_aware(row.labelled_at) if row.labelled_at is not None else None,
        file_digest=row.file_digest,
    )


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def _in_window(
    model: str, start: datetime, end: datetime, version: int | None
) -> list[ColumnElement[bool]]:
    t = prediction_records.c
    where = [t.model == model, t.at >= start, t.at < end]
    if version is not None:
        where.append(t.version == version)
    return where


class PredictionQueries(SqlStoreBase):
    def record_prediction_file(
        self, file: PredictionLogFile, predictions: list[LoggedPrediction]
    ) -> bool:
        with self._write_plain() as conn:
            known = conn.execute(
                select(prediction_log_files.c.id).where(
                    prediction_log_files.c.digest == file.digest
                )
            ).first()
            if known is not None:
                return False
            conn.execute(insert(prediction_log_files).values(**file.model_dump()))
            ids = list(dict.fromkeys(p.request_id for p in predictions))
            taken: set[str] = set()
            for chunk in _chunks(ids):
                taken.update(
                    conn.execute(
                        select(prediction_records.c.request_id).where(
                            prediction_records.c.model == file.model,
                            prediction_records.c.request_id.in_(chunk),
                        )
                    ).scalars()
                )
            rows = []
            for prediction in predictions:
                if prediction.request_id in taken:
                    continue
                taken.add(prediction.request_id)
                rows.append(prediction.model_dump())
            if rows:
                conn.execute(insert(prediction_records), rows)
            return True

    def prediction_digests(self) -> set[str]:
        """Digests of every indexed prediction log file (the artifact GC keeps them)."""
        with self._read() as conn:
            return set(conn.execute(select(prediction_log_files.c.digest)).scalars())

    def purge_predictions(self, before: datetime) -> int:
        t = prediction_log_files.c
        with self._write_plain() as conn:
            digests = list(conn.execute(select(t.digest).where(t.last_at < before)).scalars())
            for chunk in _chunks(digests):
                conn.execute(
                    delete(prediction_records).where(prediction_records.c.file_digest.in_(chunk))
                )
                conn.execute(delete(prediction_log_files).where(t.digest.in_(chunk)))
            return len(digests)

    def prediction_files(
        self, model: str, start: datetime, end: datetime, version: int | None = None
    ) -> list[PredictionLogFile]:
        t = prediction_log_files.c
        query = select(prediction_log_files).where(
            t.model == model, t.first_at < end, t.last_at >= start
        )
        if version is not None:
            query = query.where(t.version == version)
        with self._read() as conn:
            return [_file(row) for row in conn.execute(query.order_by(t.first_at, t.id))]

    def list_predictions(
        self,
        model: str,
        start: datetime,
        end: datetime,
        version: int | None = None,
        limit: int = 100,
    ) -> list[LoggedPrediction]:
        t = prediction_records.c
        query = (
            select(prediction_records)
            .where(*_in_window(model, start, end, version))
            .order_by(t.at.desc(), t.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_prediction(row) for row in conn.execute(query)]

    def logged_predictions(self, model: str, request_ids: list[str]) -> dict[str, LoggedPrediction]:
        found: dict[str, LoggedPrediction] = {}
        with self._read() as conn:
            for chunk in _chunks(list(dict.fromkeys(request_ids))):
                query = select(prediction_records).where(
                    prediction_records.c.model == model,
                    prediction_records.c.request_id.in_(chunk),
                )
                for row in conn.execute(query):
                    found[row.request_id] = _prediction(row)
        return found

    def store_labels(
        self, model: str, labels: list[LabelDraft], audit: AuditDraft
    ) -> tuple[int, int]:
        t = prediction_records.c
        now = _now()
        replaced = 0
        with self._write(audit) as conn:
            for label in labels:
                old = conn.execute(
                    select(t.id, t.label).where(t.model == model, t.request_id == label.request_id)
                ).first()
                if old is None:
                    raise NotFound(
                        f"request {label.request_id!r} was never logged for {model}",
                        {"model": model, "request_id": label.request_id},
                    )
                replaced += old.label is not None
                conn.execute(
                    update(prediction_records)
                    .where(t.id == old.id)
                    .values(label=label.label, labelled_at=now)
                )
        return len(labels), replaced

    def labelled_predictions(
        self, model: str, start: datetime, end: datetime, version: int | None = None
    ) -> list[LoggedPrediction]:
        t = prediction_records.c
        query = (
            select(prediction_records)
            .where(*_in_window(model, start, end, version), t.label.is_not(None))
            .order_by(t.at, t.id)
        )
        with self._read() as conn:
            return [_prediction(row) for row in conn.execute(query)]

    def logged_rows(
        self, model: str, start: datetime, end: datetime, version: int | None = None
    ) -> dict[int, int]:
        t = prediction_records.c
        query = (
            select(t.version, func.sum(t.rows))
            .where(*_in_window(model, start, end, version))
            .group_by(t.version)
        )
        with self._read() as conn:
            return {int(v): int(n) for v, n in conn.execute(query)}
