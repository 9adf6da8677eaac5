"""The drift part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.contract.test_metadata_store import add

from modelhub.domain.drift import ReferenceStatus
from modelhub.errors import NotFound
from modelhub.stores.metadata.base import AuditDraft, AuditQuery
from modelhub.stores.metadata.base_drift import ReferenceDraft
from modelhub.stores.metadata.sql import SqlMetadataStore


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def reference(version: int = 1, digest: str | None = "a" * 64, **kw: object) -> ReferenceDraft:
    return ReferenceDraft(
        model="m",
        version=version,
        status=kw.pop("status", ReferenceStatus.READY),  # type: ignore[arg-type]
        source=str(kw.pop("source", "eval.csv")),
        created_by="alice",
        digest=digest,
        rows=100,
        columns=["x", "y"],
        **kw,  # type: ignore[arg-type]
    )


def audit() -> AuditDraft:
    return AuditDraft("alice", "drift.reference", "m@1", {})


def test_a_reference_is_stored_per_version_and_replaced(store: SqlMetadataStore) -> None:
    add(store, "m", 1)
    add(store, "m", 2)
    first = store.put_drift_reference(reference(1), audit())
    assert (first.model, first.version, first.rows, first.columns) == ("m", 1, 100, ["x", "y"])
    assert first.created_at.tzinfo is not None
    with pytest.raises(NotFound, match="m@2 has no drift reference"):
        store.get_drift_reference("m", 2)

    store.put_drift_reference(reference(1, digest="b" * 64, source="data@3"), audit())
    again = store.get_drift_reference("m", 1)
    assert (again.digest, again.source) == ("b" * 64, "data@3")
    assert store.drift_reference_digests() == {"b" * 64}
    assert "b" * 64 in store.referenced_digests()
    assert len(store.list_audit(AuditQuery(action="drift.reference"))) == 2


def test_a_failed_profile_is_recorded_without_a_digest(store: SqlMetadataStore) -> None:
    add(store, "m", 1)
    failed = store.put_drift_reference(
        reference(1, digest=None, status=ReferenceStatus.FAILED, error="no such column"),
        audit(),
    )
    assert failed.status is ReferenceStatus.FAILED and failed.error == "no such column"
    assert store.drift_reference_digests() == set()


def test_an_unknown_version_changes_nothing(store: SqlMetadataStore) -> None:
    add(store, "m", 1)
    with pytest.raises(NotFound, match="m@7 does not exist"):
        store.put_drift_reference(reference(7), audit())
    assert store.list_audit(AuditQuery(action="drift.reference")) == []


def test_deleting_the_version_deletes_its_reference(store: SqlMetadataStore) -> None:
    add(store, "m", 1)
    add(store, "m", 2)
    store.put_drift_reference(reference(1), audit())
    store.delete_version("m", 1, AuditDraft("alice", "delete", "m@1", {}))
    with pytest.raises(NotFound):
        store.get_drift_reference("m", 1)
    assert store.drift_reference_digests() == set()
