"""The model-level listing (one row per model) in the SQL store: four queries a page,
whatever the number of models and versions."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import and_, bindparam, case, func, select

from modelhub.domain.enums import Stage
from modelhub.domain.queries import ModelQuery
from modelhub.domain.records import ModelSummary, ModelSummaryPage
from modelhub.stores.metadata.sql_base import (
    SqlStoreBase,
    _aware,
    listing_params,
    model_text_and_tags,
    read_page,
)
from modelhub.stores.metadata.tables import aliases, model_tags, models, versions

_STAGE_ORDER = {stage: i for i, stage in enumerate(Stage)}


@dataclass(frozen=True)
class _ListingShape:
    """Which filters and order a listing uses; statements are built once per shape."""

    type: bool
    framework: bool
    stage: bool
    text: bool
    tags: int
    include_archived: bool
    sort: str
    descending: bool

    @classmethod
    def of(cls, query: ModelQuery) -> _ListingShape:
        return cls(
            type=query.type is not None,
            framework=query.framework is not None,
            stage=query.stage is not None,
            text=bool(query.text),
            tags=len(query.tags),
            include_archived=query.include_archived,
            sort=query.sort,
            descending=query.descending,
        )


@lru_cache(maxsize=256)
def _listing_statements(shape: _ListingShape) -> tuple[Any, Any]:
    counted: list[Any] = [] if shape.include_archived else [versions.c.status != "archived"]
    per_model = (
        select(
            versions.c.model_id,
            func.count().label("version_count"),
            func.max(versions.c.version).label("latest"),
        )
        .where(*counted)
        .group_by(versions.c.model_id)
        .subquery("per_model")
    )
    latest = versions.alias("latest_version")
    updated = case(
        (latest.c.created_at > models.c.updated_at, latest.c.created_at),
        else_=models.c.updated_at,
    )

    def has_version(*where: Any) -> Any:
        return (
            select(versions.c.id)
            .where(versions.c.model_id == models.c.id, *counted, *where)
            .exists()
        )

    conditions: list[Any] = []
    if not shape.include_archived:
        conditions.append(models.c.status != "archived")
    if shape.type:
        conditions.append(models.c.type == bindparam("type"))
    if shape.framework:
        conditions.append(has_version(versions.c.framework == bindparam("framework")))
    if shape.stage:
        conditions.append(has_version(versions.c.stage == bindparam("stage")))
    conditions += model_text_and_tags(bool(shape.text), shape.tags)
    with_versions = models.join(per_model, per_model.c.model_id == models.c.id)
    order = {
        "name": models.c.name,
        "updated": updated,
        "versions": per_model.c.version_count,
        "size": func.coalesce(latest.c.size, 0),
    }[shape.sort]
    rows = (
        select(
            models.c.id,
            models.c.name,
            models.c.type,
            models.c.description,
            models.c.owner,
            models.c.status,
            per_model.c.version_count,
            per_model.c.latest,
            latest.c.framework,
            latest.c.size,
            updated.label("updated"),
        )
        .select_from(
            with_versions.outerjoin(
                latest,
                and_(latest.c.model_id == models.c.id, latest.c.version == per_model.c.latest),
            )
        )
        .where(*conditions)
        .order_by(order.desc() if shape.descending else order.asc(), models.c.name)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    count = select(func.count()).select_from(with_versions).where(*conditions)
    return rows, count


TAGS_OF = select(model_tags.c.model_id, model_tags.c.key, model_tags.c.value).where(
    model_tags.c.model_id.in_(bindparam("ids", expanding=True))
)
ALIASES_OF_MODEL = (
    select(aliases.c.alias, versions.c.version)
    .join(versions, versions.c.id == aliases.c.version_id)
    .join(models, models.c.id == aliases.c.model_id)
    .where(models.c.name == bindparam("name"))
    .order_by(aliases.c.alias)
)


class ModelListingQueries(SqlStoreBase):
    def list_model_summaries(self, query: ModelQuery) -> ModelSummaryPage:
        rows_statement, count_statement = _listing_statements(_ListingShape.of(query))
        params = listing_params(query)
        with self._read() as conn:
            rows, total = read_page(conn, rows_statement, count_statement, params, query)
            ids = [row.id for row in rows]
            tags: dict[int, dict[str, str]] = {i: {} for i in ids}
            stages: dict[int, set[Stage]] = {i: set() for i in ids}
            if ids:
                for tag in conn.execute(TAGS_OF, {"ids": ids}):
                    tags[tag.model_id][tag.key] = tag.value
                stages_of = select(versions.c.model_id, versions.c.stage).where(
                    versions.c.model_id.in_(ids)
                )
                if not query.include_archived:
                    stages_of = stages_of.where(versions.c.status != "archived")
                for found in conn.execute(stages_of.distinct()):
                    stages[found.model_id].add(Stage(found.stage))
        items = [
            ModelSummary(
                name=row.name,
                type=row.type,
                description=row.description,
                owner=row.owner,
                tags=dict(sorted(tags[row.id].items())),
                status=row.status,
                latest_version=row.latest,
                framework=row.framework,
                size=row.size,
                version_count=row.version_count,
                stages=sorted(stages[row.id], key=_STAGE_ORDER.__getitem__),
                updated_at=_aware(row.updated),
            )
            for row in rows
        ]
        return ModelSummaryPage(items=items, total=total)

    def model_aliases(self, name: str) -> dict[str, int]:
        with self._read() as conn:
            return {
                row.alias: row.version for row in conn.execute(ALIASES_OF_MODEL, {"name": name})
            }
