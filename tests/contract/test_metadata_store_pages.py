"""Pages of the audit log and of the reviews (the dashboard's lists), on SQLite and on
PostgreSQL: each page one query, with the count of what matched."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.enums import Approval, Framework, ModelType
from modelhub.domain.governance import Decision, ReviewRequest, ReviewState
from modelhub.domain.records import FileEntry
from modelhub.stores.metadata.base import AuditDraft, AuditQuery, ModelDraft, VersionDraft
from modelhub.stores.metadata.sql import SqlMetadataStore

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def add_model(store: SqlMetadataStore, name: str) -> None:
    files = [FileEntry(path="model.safetensors", digest="d" * 64, size=10)]
    store.create_version(
        ModelDraft(name=name, type=ModelType.CLASSIFICATION, owner="alice"),
        VersionDraft(
            framework=Framework.SAFETENSORS,
            size=10,
            digest="d" * 64,
            files=files,
            created_by="alice",
        ),
        AuditDraft("alice", "add", name, {}),
    )


def open_request(store: SqlMetadataStore, name: str, minutes: int) -> ReviewRequest:
    return store.open_review_request(
        ReviewRequest(
            model=name,
            version=1,
            requested_by="alice",
            policy_version=1,
            opened_at=T0 + timedelta(minutes=minutes),
        ),
        AuditDraft("alice", "governance.request", f"{name}@1", {}),
    )


def test_audit_pages_with_offset_and_the_count_of_matches(store: SqlMetadataStore) -> None:
    for i in range(7):
        store.record_event(AuditDraft(f"actor{i % 2}", "ping", "t", {"i": i}))
    everything = store.list_audit(AuditQuery(limit=100))
    page = store.list_audit(AuditQuery(limit=3, offset=3))
    assert [e.id for e in page] == [e.id for e in everything[3:6]]
    assert store.count_audit(AuditQuery(limit=1)) == len(everything)
    assert store.count_audit(AuditQuery(actor="actor0", limit=1)) == 4
    assert [e.details["i"] for e in store.list_audit(AuditQuery(actor="actor1", offset=1))] == [
        3,
        1,
    ]


def test_reviews_list_each_versions_latest_request_pending_first(
    store: SqlMetadataStore,
) -> None:
    for name in ("a", "b", "c"):
        add_model(store, name)
    first = open_request(store, "a", 0)
    store.close_review_request(
        first.id,
        ReviewState.REJECTED,
        Approval.REJECTED,
        T0 + timedelta(minutes=1),
        AuditDraft("carol", "governance.request.rejected", "a@1", {}),
    )
    reopened = open_request(store, "a", 2)  # a's request in force: pending again
    decided = open_request(store, "b", 3)
    store.add_decision(
        Decision(
            request_id=decided.id,
            model="b",
            version=1,
            reviewer="carol",
            role="admin",
            approve=True,
            note="fine",
            created_at=T0 + timedelta(minutes=4),
        ),
        AuditDraft("carol", "governance.decision", "b@1", {}),
    )
    store.close_review_request(
        decided.id,
        ReviewState.APPROVED,
        Approval.APPROVED,
        T0 + timedelta(minutes=4),
        AuditDraft("carol", "governance.request.approved", "b@1", {}),
    )
    later = open_request(store, "c", 5)

    found, total = store.list_latest_review_requests(0, 10)
    assert total == 3
    assert [r.id for r in found] == [later.id, reopened.id, decided.id]
    assert [r.state for r in found] == [
        ReviewState.PENDING,
        ReviewState.PENDING,
        ReviewState.APPROVED,
    ]
    second_page, _ = store.list_latest_review_requests(2, 2)
    assert [r.id for r in second_page] == [decided.id]
    decisions = store.list_decisions_of([decided.id, reopened.id])
    assert [(d.reviewer, d.request_id) for d in decisions] == [("carol", decided.id)]
    assert store.list_decisions_of([]) == []
