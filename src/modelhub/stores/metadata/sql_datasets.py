"""Datasets in the SQL store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select
from sqlalchemy import exc as sa_exc

from modelhub.domain.enums import DatasetFormat
from modelhub.domain.records import Dataset
from modelhub.errors import Conflict, NotFound
from modelhub.stores.metadata.base import AuditDraft, DatasetDraft
from modelhub.stores.metadata.sql_base import SqlStoreBase, _aware, _now
from modelhub.stores.metadata.tables import datasets

NEXT_NUMBER = select(func.coalesce(func.max(datasets.c.version), 0) + 1).where(
    datasets.c.name == bindparam("name")
)


def _dataset(row: Row[Any]) -> Dataset:
    return Dataset(
        name=row.name,
        version=row.version,
        format=DatasetFormat(row.format),
        digest=row.digest,
        size=row.size,
        rows=row.rows,
        columns=row.columns,
        description=row.description,
        created_at=_aware(row.created_at),
        created_by=row.created_by,
    )


class DatasetQueries(SqlStoreBase):
    def create_dataset(self, draft: DatasetDraft, audit: AuditDraft) -> Dataset:
        """The next version of `draft.name`; writers are serialised by the audit head."""
        try:
            with self._write(audit) as conn:
                number = int(conn.execute(NEXT_NUMBER, {"name": draft.name}).scalar_one())
                if draft.replaces is not None and number != draft.replaces + 1:
                    raise Conflict(
                        f"dataset {draft.name!r} changed while it was being added; try again",
                        {"dataset": draft.name, "version": number - 1},
                    )
                conn.execute(
                    insert(datasets).values(
                        name=draft.name,
                        version=number,
                        format=draft.format.value,
                        digest=draft.digest,
                        size=draft.size,
                        rows=draft.rows,
                        columns=draft.columns,
                        description=draft.description,
                        created_at=_now(),
                        created_by=draft.created_by,
                    )
                )
                audit.details["version"] = number
                row = conn.execute(
                    select(datasets).where(
                        datasets.c.name == draft.name, datasets.c.version == number
                    )
                ).one()
                return _dataset(row)
        except sa_exc.IntegrityError as exc:
            raise Conflict(f"could not add a version of dataset {draft.name!r}") from exc

    def get_dataset(self, name: str, version: int | None = None) -> Dataset:
        query = select(datasets).where(datasets.c.name == name)
        if version is None:
            query = query.order_by(datasets.c.version.desc()).limit(1)
        else:
            query = query.where(datasets.c.version == version)
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            which = "" if version is None else f" version {version}"
            raise NotFound(f"dataset {name!r}{which} does not exist", {"dataset": name})
        return _dataset(row)

    def list_datasets(self, name: str | None = None) -> list[Dataset]:
        query = select(datasets).order_by(datasets.c.name, datasets.c.version)
        if name is not None:
            query = query.where(datasets.c.name == name)
        with self._read() as conn:
            return [_dataset(row) for row in conn.execute(query).all()]

    def dataset_digests(self) -> set[str]:
        with self._read() as conn:
            return set(conn.execute(select(datasets.c.digest).distinct()).scalars())
