"""MetadataStore over SQLAlchemy Core: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy import exc as sa_exc

from modelhub.domain.enums import Stage
from modelhub.domain.names import ModelRef
from modelhub.domain.queries import VersionQuery
from modelhub.domain.records import (
    ModelVersion,
    Page,
    RegisteredModel,
)
from modelhub.errors import Conflict, NotFound
from modelhub.stores.metadata.audit_chain import utc_naive
from modelhub.stores.metadata.base import (
    AuditDraft,
    MetadataStore,
    ModelDraft,
    VersionDraft,
)
from modelhub.stores.metadata.sql_alerts import AlertQueries
from modelhub.stores.metadata.sql_auth import AuthQueries
from modelhub.stores.metadata.sql_base import (
    _aware,
    _now,
    listing_params,
    model_text_and_tags,
    read_page,
)
from modelhub.stores.metadata.sql_canary import CanaryQueries
from modelhub.stores.metadata.sql_cost import CostQueries
from modelhub.stores.metadata.sql_datasets import DatasetQueries
from modelhub.stores.metadata.sql_deployments import DeploymentQueries
from modelhub.stores.metadata.sql_drift import DriftQueries
from modelhub.stores.metadata.sql_governance import GovernanceQueries
from modelhub.stores.metadata.sql_history import HistoryQueries
from modelhub.stores.metadata.sql_hosts import HostQueries
from modelhub.stores.metadata.sql_model_listing import ModelListingQueries
from modelhub.stores.metadata.sql_overview import OverviewQueries
from modelhub.stores.metadata.sql_personas import PersonaQueries
from modelhub.stores.metadata.sql_predictions import PredictionQueries
from modelhub.stores.metadata.sql_runs import RunQueries
from modelhub.stores.metadata.tables import (
    aliases,
    model_tags,
    models,
    version_files,
    versions,
)
from modelhub.stores.metadata.version_records import JSON_COLUMNS, VersionRecords

# JSON columns are read as their text: records are built from it once (version_records).
VERSION_COLUMNS = [
    cast(c, Text).label(c.name) if c.name in JSON_COLUMNS else c
    for c in versions.c
    if c.name not in ("id", "model_id")
]

# Statements on the lookup hot path are built once: composing a select() costs more
# than SQLite takes to run it.
_newer = versions.alias("newer")
_LATEST = (
    select(func.max(_newer.c.version))
    .where(_newer.c.model_id == versions.c.model_id)
    .scalar_subquery()
    .label("latest_version")
)
_VERSIONS: Any = select(
    versions.c.id, models.c.name, models.c.type, *VERSION_COLUMNS, _LATEST
).join(models, models.c.id == versions.c.model_id)
VERSION_RECORDS = VersionRecords([c.name for c in _VERSIONS.selected_columns])
_BY_NAME = models.c.name == bindparam("name")
_NEWEST_FIRST = versions.c.version.desc()
VERSION_BY_ID = _VERSIONS.where(versions.c.id == bindparam("id"))
VERSION_BY_NUMBER = _VERSIONS.where(_BY_NAME, versions.c.version == bindparam("number"))
VERSION_LATEST = _VERSIONS.where(_BY_NAME).order_by(_NEWEST_FIRST).limit(1)
VERSION_IN_STAGE = (
    _VERSIONS.where(_BY_NAME, versions.c.stage == bindparam("stage"))
    .order_by(_NEWEST_FIRST)
    .limit(1)
)
VERSION_BY_ALIAS = _VERSIONS.join(aliases, aliases.c.version_id == versions.c.id).where(
    _BY_NAME, aliases.c.alias == bindparam("alias")
)
FILES_OF = (
    select(version_files)
    .where(version_files.c.version_id.in_(bindparam("ids", expanding=True)))
    .order_by(version_files.c.path)
)
ALIASES_OF = (
    select(aliases.c.version_id, aliases.c.alias)
    .where(aliases.c.version_id.in_(bindparam("ids", expanding=True)))
    .order_by(aliases.c.alias)
)
STAGES = frozenset(s.value for s in Stage)
MODEL_OWNER = select(models.c.owner).where(models.c.name == bindparam("name"))
TAKE_VERSION_NUMBER = (
    update(models)
    .where(models.c.id == bindparam("model_id"))
    .values(next_version=models.c.next_version + 1)
    .returning(models.c.next_version)
)


@dataclass(frozen=True)
class _SearchShape:
    """Which filters a search uses; statements are built once per shape."""

    name: bool
    type: bool
    framework: bool
    stage: bool
    text: bool
    tags: int
    include_archived: bool
    latest_only: bool

    @classmethod
    def of(cls, query: VersionQuery) -> _SearchShape:
        return cls(
            name=bool(query.name),
            type=query.type is not None,
            framework=query.framework is not None,
            stage=query.stage is not None,
            text=bool(query.text),
            tags=len(query.tags),
            include_archived=query.include_archived,
            latest_only=not query.all_versions,
        )


@lru_cache(maxsize=256)
def _search_statements(shape: _SearchShape) -> tuple[Any, Any]:
    conditions: list[Any] = []
    if shape.name:
        conditions.append(models.c.name == bindparam("name"))
    if shape.type:
        conditions.append(models.c.type == bindparam("type"))
    if shape.framework:
        conditions.append(versions.c.framework == bindparam("framework"))
    if shape.stage:
        conditions.append(versions.c.stage == bindparam("stage"))
    if not shape.include_archived:
        conditions.append(models.c.status != "archived")
        conditions.append(versions.c.status != "archived")
    conditions += model_text_and_tags(bool(shape.text), shape.tags)
    if shape.latest_only:
        newest = (
            select(versions.c.model_id, func.max(versions.c.version).label("version"))
            .join(models, models.c.id == versions.c.model_id)
            .where(*conditions)
            .group_by(versions.c.model_id)
            .subquery()
        )
        base = _VERSIONS.join(
            newest,
            and_(newest.c.model_id == versions.c.model_id, newest.c.version == versions.c.version),
        )
        count = select(func.count()).select_from(newest)
    else:
        base = _VERSIONS.where(*conditions)
        count = select(func.count()).select_from(base.subquery())
    rows = (
        base.order_by(models.c.name, versions.c.version.desc())
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return rows, count


class SqlMetadataStore(
    AlertQueries,
    AuthQueries,
    CanaryQueries,
    CostQueries,
    DatasetQueries,
    DeploymentQueries,
    DriftQueries,
    GovernanceQueries,
    HistoryQueries,
    HostQueries,
    ModelListingQueries,
    OverviewQueries,
    PersonaQueries,
    PredictionQueries,
    RunQueries,
    MetadataStore,
):
    # -- models -------------------------------------------------------------

    def _model_row(self, conn: Connection, name: str) -> Row[Any]:
        row = conn.execute(select(models).where(models.c.name == name)).first()
        if row is None:
            raise NotFound(f"model {name!r} does not exist", {"model": name})
        return row

    def _model_record(self, conn: Connection, row: Row[Any]) -> RegisteredModel:
        tags = dict(
            conn.execute(
                select(model_tags.c.key, model_tags.c.value).where(model_tags.c.model_id == row.id)
            ).all()
        )
        latest = conn.execute(
            select(func.max(versions.c.version)).where(versions.c.model_id == row.id)
        ).scalar()
        return RegisteredModel(
            name=row.name,
            type=row.type,
            description=row.description,
            owner=row.owner,
            license=row.license,
            tags=tags,
            status=row.status,
            created_at=_aware(row.created_at),
            updated_at=_aware(row.updated_at),
            latest_version=latest,
        )

    def get_model(self, name: str) -> RegisteredModel:
        with self._read() as conn:
            return self._model_record(conn, self._model_row(conn, name))

    def model_owner(self, name: str) -> str | None:
        with self._read() as conn:
            return conn.execute(MODEL_OWNER, {"name": name}).scalar()

    def list_models(self, include_archived: bool = False) -> list[RegisteredModel]:
        with self._read() as conn:
            query = select(models).order_by(models.c.name)
            if not include_archived:
                query = query.where(models.c.status != "archived")
            return [self._model_record(conn, row) for row in conn.execute(query).all()]

    def _ensure_model(self, conn: Connection, draft: ModelDraft, now: datetime) -> int:
        row = conn.execute(select(models.c.id).where(models.c.name == draft.name)).first()
        if row is not None:
            if draft.tags:
                self._merge_tags(conn, row.id, draft.tags)
                conn.execute(update(models).where(models.c.id == row.id).values(updated_at=now))
            return int(row.id)
        model_id = conn.execute(
            insert(models)
            .values(
                name=draft.name,
                type=draft.type.value,
                description=draft.description,
                owner=draft.owner,
                license=draft.license,
                status="active",
                created_at=now,
                updated_at=now,
            )
            .returning(models.c.id)
        ).scalar_one()
        self._merge_tags(conn, model_id, draft.tags)
        return int(model_id)

    def _merge_tags(self, conn: Connection, model_id: int, tags: dict[str, str]) -> None:
        if not tags:
            return
        conn.execute(
            delete(model_tags).where(
                model_tags.c.model_id == model_id, model_tags.c.key.in_(list(tags))
            )
        )
        conn.execute(
            insert(model_tags),
            [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()],
        )

    def update_model(
        self,
        name: str,
        changes: dict[str, Any],
        audit: AuditDraft,
        tags: dict[str, str] | None = None,
    ) -> RegisteredModel:
        with self._write(audit) as conn:
            row = self._model_row(conn, name)
            values = {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()}
            conn.execute(
                update(models).where(models.c.id == row.id).values(**values, updated_at=_now())
            )
            if tags is not None:
                self._merge_tags(conn, row.id, tags)
            return self._model_record(conn, self._model_row(conn, name))

    def delete_model(self, name: str, audit: AuditDraft) -> None:
        with self._write(audit) as conn:
            row = self._model_row(conn, name)
            version_ids = select(versions.c.id).where(versions.c.model_id == row.id)
            conn.execute(delete(aliases).where(aliases.c.model_id == row.id))
            conn.execute(delete(version_files).where(version_files.c.version_id.in_(version_ids)))
            conn.execute(delete(versions).where(versions.c.model_id == row.id))
            conn.execute(delete(model_tags).where(model_tags.c.model_id == row.id))
            conn.execute(delete(models).where(models.c.id == row.id))

    # -- versions -----------------------------------------------------------

    def create_version(
        self, model: ModelDraft, draft: VersionDraft, audit: AuditDraft
    ) -> ModelVersion:
        now = _now()

        def insert_version(conn: Connection) -> tuple[int, Row[Any, Any]]:
            model_id = self._ensure_model(conn, model, now)
            number = conn.execute(TAKE_VERSION_NUMBER, {"model_id": model_id}).scalar_one() - 1
            version_id = conn.execute(
                insert(versions)
                .values(
                    model_id=model_id,
                    version=number,
                    **self._draft_values(draft),
                    stage=Stage.DEVELOPMENT.value,
                    approval="pending",
                    status="active",
                    created_at=now,
                )
                .returning(versions.c.id)
            ).scalar_one()
            conn.execute(
                insert(version_files),
                [
                    {"version_id": version_id, "path": f.path, "digest": f.digest, "size": f.size}
                    for f in draft.files
                ],
            )
            # The audit details need the number, which only exists now.
            audit.details["version"] = number
            model_row = conn.execute(
                select(models.c.name, models.c.type).where(models.c.id == model_id)
            ).one()
            return number, model_row

        try:
            # Durable on return, even on SQLite: a registered version survives a power cut.
            number, model_row = self._durable_write(audit, insert_version)
        except sa_exc.IntegrityError as exc:
            raise Conflict(
                f"could not register a new version of {model.name!r}: {exc.orig}",
                {"model": model.name},
            ) from exc
        # Everything a new version holds is known here; reading it back would only
        # cost three queries on the hottest write path.
        return ModelVersion(
            name=model_row.name,
            version=number,
            type=model_row.type,
            label=draft.label,
            framework=draft.framework,
            architecture=draft.architecture,
            parameters=draft.parameters,
            size=draft.size,
            precision=draft.precision,
            quantization=draft.quantization,
            context_length=draft.context_length,
            digest=draft.digest,
            files=sorted(draft.files, key=lambda f: f.path),
            signature=draft.signature,
            inspection=json.loads(json.dumps(draft.inspection, default=str)),
            resources=draft.resources,
            lineage=draft.lineage,
            metrics=draft.metrics,
            trusted=draft.trusted,
            aliases=["latest"],
            model_card=draft.model_card,
            created_at=_aware(utc_naive(now)),
            created_by=draft.created_by,
        )

    @staticmethod
    def _draft_values(draft: VersionDraft) -> dict[str, Any]:
        return {
            "label": draft.label,
            "framework": draft.framework.value,
            "architecture": draft.architecture,
            "parameters": draft.parameters,
            "size": draft.size,
            "precision": draft.precision.value,
            "quantization": draft.quantization,
            "context_length": draft.context_length,
            "digest": draft.digest,
            "signature": draft.signature.model_dump(mode="json"),
            "inspection": json.loads(json.dumps(draft.inspection, default=str)),
            "resources": draft.resources.model_dump(mode="json") if draft.resources else None,
            "lineage": draft.lineage.model_dump(mode="json"),
            "metrics": draft.metrics,
            "trusted": draft.trusted,
            "model_card": draft.model_card,
            "created_by": draft.created_by,
        }

    def _version_by_id(self, conn: Connection, version_id: int) -> ModelVersion:
        row = conn.execute(VERSION_BY_ID, {"id": version_id}).one()
        return self._hydrate(conn, [row])[0]

    def _hydrate(self, conn: Connection, rows: Sequence[Row[Any]]) -> list[ModelVersion]:
        """Turn version rows into records, fetching files and aliases in two queries."""
        if not rows:
            return []
        ids = [row.id for row in rows]
        files: dict[int, list[tuple[str, str, int]]] = {i: [] for i in ids}
        for f in conn.execute(FILES_OF, {"ids": ids}):
            files[f.version_id].append((f.path, f.digest, f.size))
        alias_map: dict[int, list[str]] = {i: [] for i in ids}
        for a in conn.execute(ALIASES_OF, {"ids": ids}):
            alias_map[a.version_id].append(a.alias)
        return [
            VERSION_RECORDS.record(tuple(row), tuple(files[row.id]), tuple(alias_map[row.id]))
            for row in rows
        ]

    def _resolve_row(self, conn: Connection, ref: ModelRef) -> Row[Any]:
        selector = ref.selector
        if ref.version_number is not None:
            row = conn.execute(VERSION_BY_NUMBER, {"name": ref.name, "number": ref.version_number})
        elif selector == "latest":
            row = conn.execute(VERSION_LATEST, {"name": ref.name})
        elif selector in STAGES:
            row = conn.execute(VERSION_IN_STAGE, {"name": ref.name, "stage": selector})
        else:
            row = conn.execute(VERSION_BY_ALIAS, {"name": ref.name, "alias": selector})
        found = row.first()
        if found is None:
            self._model_row(conn, ref.name)  # a missing model is its own error
            raise NotFound(f"{ref} does not exist", {"model": ref.name, "selector": selector})
        return found

    def _version_id(self, conn: Connection, ref: ModelRef) -> int:
        return int(self._resolve_row(conn, ref).id)

    def resolve(self, ref: ModelRef) -> ModelVersion:
        with self._read() as conn:
            return self._hydrate(conn, [self._resolve_row(conn, ref)])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self._read() as conn:
            model = self._model_row(conn, name)
            rows = conn.execute(
                _VERSIONS.where(versions.c.model_id == model.id).order_by(versions.c.version)
            ).all()
            return self._hydrate(conn, rows)

    def search(self, query: VersionQuery) -> Page:
        rows_statement, count_statement = _search_statements(_SearchShape.of(query))
        params = listing_params(query)
        params["name"] = query.name
        with self._read() as conn:
            rows, total = read_page(conn, rows_statement, count_statement, params, query)
            return Page(items=self._hydrate(conn, rows), total=total)

    def update_version(
        self, name: str, version: int, changes: dict[str, Any], audit: AuditDraft
    ) -> ModelVersion:
        with self._write(audit) as conn:
            version_id = self._version_id(conn, ModelRef(name, str(version)))
            values = {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()}
            conn.execute(update(versions).where(versions.c.id == version_id).values(**values))
            return self._version_by_id(conn, version_id)

    def delete_version(self, name: str, version: int, audit: AuditDraft) -> None:
        with self._write(audit) as conn:
            version_id = self._version_id(conn, ModelRef(name, str(version)))
            conn.execute(delete(aliases).where(aliases.c.version_id == version_id))
            conn.execute(delete(version_files).where(version_files.c.version_id == version_id))
            conn.execute(delete(versions).where(versions.c.id == version_id))

    def set_alias(self, name: str, alias: str, version: int, audit: AuditDraft) -> ModelVersion:
        with self._write(audit) as conn:
            version_id = self._version_id(conn, ModelRef(name, str(version)))
            model_id = self._model_row(conn, name).id
            conn.execute(
                delete(aliases).where(aliases.c.model_id == model_id, aliases.c.alias == alias)
            )
            conn.execute(
                insert(aliases).values(model_id=model_id, alias=alias, version_id=version_id)
            )
            return self._version_by_id(conn, version_id)

    def remove_alias(self, name: str, alias: str, audit: AuditDraft) -> None:
        with self._write(audit) as conn:
            model_id = self._model_row(conn, name).id
            removed = conn.execute(
                delete(aliases).where(aliases.c.model_id == model_id, aliases.c.alias == alias)
            ).rowcount
            if not removed:
                raise NotFound(f"alias {alias!r} of {name!r} does not exist", {"alias": alias})

    def referenced_digests(self) -> set[str]:
        """Every blob something points at: version files, datasets, scripts, checkpoints,
        drift profiles, prediction logs, governance attachments."""
        with self._read() as conn:
            files = set(conn.execute(select(version_files.c.digest).distinct()).scalars())
        return (
            files
            | self.dataset_digests()
            | self.pipeline_digests()
            | self.drift_reference_digests()
            | self.prediction_digests()
            | self.assessment_digests()
        )
