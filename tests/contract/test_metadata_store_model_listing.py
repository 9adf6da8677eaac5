"""The model-level listing (the dashboard's models table) and a model's aliases, on SQLite
and PostgreSQL: filters, orders, pages, totals, and a fixed number of queries."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert
from tests.contract.test_metadata_store import add, audit

from modelhub.domain.enums import Framework, ModelType, Stage
from modelhub.domain.queries import ModelQuery
from modelhub.domain.records import ModelSummaryPage
from modelhub.stores.metadata.sql import SqlMetadataStore
from modelhub.stores.metadata.tables import models, versions


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


@pytest.fixture
def shelf(store: SqlMetadataStore) -> SqlMetadataStore:
    """bert: 3 versions (1 staging, 3 ONNX); resnet: 1; minilm: 1, archived version 2."""
    add(store, "bert", 1, type=ModelType.LANGUAGE_MODEL, tags={"team": "nlp"})
    add(store, "bert", 2)
    add(store, "bert", 30, framework=Framework.ONNX)
    add(store, "resnet", 4, type=ModelType.CLASSIFICATION, description="Vision net")
    add(store, "minilm", 5, type=ModelType.EMBEDDING_MODEL, tags={"team": "search"})
    add(store, "minilm", 60)
    store.update_version("bert", 1, {"stage": Stage.STAGING}, audit())
    store.update_version("minilm", 2, {"status": "archived"}, audit())
    return store


def names(page: ModelSummaryPage) -> list[str]:
    return [m.name for m in page.items]


def test_one_row_per_model_with_figures_over_its_live_versions(shelf: SqlMetadataStore) -> None:
    page = shelf.list_model_summaries(ModelQuery())
    assert names(page) == ["bert", "minilm", "resnet"] and page.total == 3
    bert, minilm, _ = page.items
    assert bert.version_count == 3 and bert.latest_version == 3
    assert bert.framework == Framework.ONNX and bert.size == 40  # the latest version's
    assert bert.stages == [Stage.DEVELOPMENT, Stage.STAGING]
    assert bert.tags == {"team": "nlp"} and bert.type == ModelType.LANGUAGE_MODEL
    # minilm's version 2 is archived: it counts for nothing.
    assert minilm.version_count == 1 and minilm.latest_version == 1 and minilm.size == 15


def test_filters_narrow_to_models(shelf: SqlMetadataStore) -> None:
    def listed(**kw: Any) -> list[str]:
        return names(shelf.list_model_summaries(ModelQuery(**kw)))

    assert listed(type="classification") == ["resnet"]
    assert listed(framework="onnx") == ["bert"]
    assert listed(stage="staging") == ["bert"]
    assert listed(tags={"team": "search"}) == ["minilm"]
    assert listed(text="VISION") == ["resnet"]
    assert listed(text="ber", stage="staging", framework="safetensors") == ["bert"]
    assert listed(text="%") == []


def test_orders_both_ways_with_the_name_breaking_ties(shelf: SqlMetadataStore) -> None:
    def order(sort: str, descending: bool = False) -> list[str]:
        return names(shelf.list_model_summaries(ModelQuery(sort=sort, descending=descending)))

    assert order("name", descending=True) == ["resnet", "minilm", "bert"]
    assert order("versions", descending=True) == ["bert", "minilm", "resnet"]
    assert order("size") == ["resnet", "minilm", "bert"]  # 14, 15, 40 bytes
    assert order("updated", descending=True)[0] == "minilm"  # its last version is newest


def test_pages_and_totals(shelf: SqlMetadataStore) -> None:
    first = shelf.list_model_summaries(ModelQuery(limit=2))
    assert names(first) == ["bert", "minilm"] and first.total == 3
    last = shelf.list_model_summaries(ModelQuery(limit=2, offset=2))
    assert names(last) == ["resnet"] and last.total == 3
    beyond = shelf.list_model_summaries(ModelQuery(limit=2, offset=10))
    assert beyond.items == [] and beyond.total == 3


def test_archived_models_only_when_asked(shelf: SqlMetadataStore) -> None:
    shelf.update_model("resnet", {"status": "archived"}, audit())
    assert names(shelf.list_model_summaries(ModelQuery())) == ["bert", "minilm"]
    every = shelf.list_model_summaries(ModelQuery(include_archived=True))
    assert names(every) == ["bert", "minilm", "resnet"]
    assert every.items[1].version_count == 2  # minilm's archived version counts here


def test_a_models_aliases(shelf: SqlMetadataStore) -> None:
    shelf.set_alias("bert", "champion", 2, audit())
    shelf.set_alias("bert", "canary", 3, audit())
    assert shelf.model_aliases("bert") == {"canary": 3, "champion": 2}
    assert shelf.model_aliases("resnet") == {}


def bulk_catalogue(store: SqlMetadataStore, model_count: int, per_model: int) -> None:
    """Many rows at once, straight into the tables (registering 10,000 versions one by
    one would take minutes of durable writes)."""
    now = datetime.now(UTC)
    with store.engine.begin() as conn:
        conn.execute(
            insert(models),
            [
                {
                    "name": f"bulk-{m:04d}",
                    "type": "classification",
                    "description": "",
                    "owner": "alice",
                    "status": "active",
                    "next_version": per_model + 1,
                    "created_at": now,
                    "updated_at": now,
                }
                for m in range(model_count)
            ],
        )
        ids = dict(
            conn.execute(models.select().with_only_columns(models.c.name, models.c.id)).all()
        )
        empty: dict[str, Any] = {}
        conn.execute(
            insert(versions),
            [
                {
                    "model_id": ids[f"bulk-{m:04d}"],
                    "version": v,
                    "framework": "safetensors",
                    "size": m * 10 + v,
                    "precision": "fp32",
                    "digest": f"{m * per_model + v:064x}",
                    "signature": empty,
                    "inspection": empty,
                    "lineage": empty,
                    "metrics": empty,
                    "stage": "development",
                    "approval": "pending",
                    "trusted": False,
                    "status": "active",
                    "created_at": now + timedelta(seconds=v),
                    "created_by": "alice",
                }
                for m in range(model_count)
                for v in range(1, per_model + 1)
            ],
        )


def test_a_page_costs_four_queries_whatever_the_rows(store: SqlMetadataStore) -> None:
    bulk_catalogue(store, 1000, 10)  # 10,000 versions
    statements: list[str] = []

    def count(*args: Any) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):  # not SQLite's BEGIN
            statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        for sort in ("name", "updated", "versions", "size"):
            statements.clear()
            started = time.perf_counter()
            page = store.list_model_summaries(
                ModelQuery(sort=sort, descending=True, limit=50, offset=100)
            )
            elapsed = time.perf_counter() - started
            assert len(page.items) == 50 and page.total == 1000
            assert len(statements) <= 4, statements
            assert elapsed < 0.3, f"sort by {sort}: {elapsed:.3f} s"
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    biggest = store.list_model_summaries(ModelQuery(sort="size", descending=True, limit=1))
    assert biggest.items[0].name == "bulk-0999" and biggest.items[0].size == 10000
    assert biggest.items[0].version_count == 10
