"""Drift references in the SQL store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select

from modelhub.domain.drift import DriftReference, ReferenceStatus
from modelhub.errors import NotFound
from modelhub.stores.metadata.base import AuditDraft
from modelhub.stores.metadata.base_drift import ReferenceDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import drift_references, models, versions

_REFERENCE = (
    select(drift_references, models.c.name.label("model"), versions.c.version)
    .join(versions, versions.c.id == drift_references.c.version_id)
    .join(models, models.c.id == versions.c.model_id)
)


def _reference(row: Row[Any]) -> DriftReference:
    return DriftReference(
        model=row.model,
        version=row.version,
        status=ReferenceStatus(row.status),
        digest=row.digest,
        source=row.source,
        rows=row.rows,
        columns=list(row.columns),
        error=row.error,
        created_by=row.created_by,
        created_at=_aware(row.created_at),
    )


def _version_id(conn: Connection, model: str, version: int) -> int:
    found = conn.execute(
        select(versions.c.id)
        .join(models, models.c.id == versions.c.model_id)
        .where(models.c.name == model, versions.c.version == version)
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(
            f"model version {model}@{version} does not exist",
            {"model": model, "version": version},
        )
    return int(found)


class DriftQueries(SqlStoreBase):
    def put_drift_reference(self, draft: ReferenceDraft, audit: AuditDraft) -> DriftReference:
        with self._write(audit) as conn:
            version_id = _version_id(conn, draft.model, draft.version)
            conn.execute(
                delete(drift_references).where(drift_references.c.version_id == version_id)
            )
            conn.execute(
                insert(drift_references).values(
                    version_id=version_id,
                    status=draft.status.value,
                    digest=draft.digest,
                    source=draft.source,
                    rows=draft.rows,
                    columns=list(draft.columns),
                    error=draft.error,
                    created_by=draft.created_by,
                    created_at=_now(),
                )
            )
            row = conn.execute(_REFERENCE.where(drift_references.c.version_id == version_id)).one()
            return _reference(row)

    def get_drift_reference(self, model: str, version: int) -> DriftReference:
        with self._read() as conn:
            row = conn.execute(
                _REFERENCE.where(models.c.name == model, versions.c.version == version)
            ).first()
        if row is None:
            raise NotFound(
                f"model version {model}@{version} has no drift reference: set one with "
                f"`modelhub drift reference {model}@{version} --data FILE`",
                {"model": model, "version": version},
            )
        return _reference(row)

    def drift_reference_digests(self) -> set[str]:
        with self._read() as conn:
            found = conn.execute(
                select(drift_references.c.digest)
                .where(drift_references.c.digest.is_not(None))
                .distinct()
            ).scalars()
            return {str(d) for d in found}
