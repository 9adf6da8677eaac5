"""The governance part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.enums import Approval, Framework, ModelType
from modelhub.domain.governance import (
    Assessment,
    Decision,
    ReviewKind,
    ReviewRequest,
    ReviewState,
)
from modelhub.domain.names import ModelRef
from modelhub.domain.records import FileEntry, ModelVersion
from modelhub.errors import Conflict, IllegalTransition, NotFound
from modelhub.stores.metadata.base import AuditDraft, AuditQuery, ModelDraft, VersionDraft
from modelhub.stores.metadata.sql import SqlMetadataStore

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def audit(action: str, target: str = "m@1") -> AuditDraft:
    return AuditDraft("root", action, target, {})


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def add_version(store: SqlMetadataStore) -> None:
    files = [FileEntry(path="model.safetensors", digest="d" * 64, size=10)]
    store.create_version(
        ModelDraft(name="m", type=ModelType.CLASSIFICATION, owner="alice"),
        VersionDraft(
            framework=Framework.SAFETENSORS,
            size=10,
            digest="d" * 64,
            files=files,
            created_by="alice",
        ),
        AuditDraft("alice", "add", "m", {}),
    )


def version(store: SqlMetadataStore) -> ModelVersion:
    return store.resolve(ModelRef("m", "1"))


def assessment(kind: ReviewKind, passed: bool, minutes: float, **kw: object) -> Assessment:
    return Assessment.model_validate(
        {
            "model": "m",
            "version": 1,
            "kind": kind,
            "passed": passed,
            "policy_version": 1,
            "summary": f"{kind.value} at {minutes}",
            "actor": "carol",
            "created_at": at(minutes),
            **kw,
        }
    )


def request(minutes: float = 0) -> ReviewRequest:
    return ReviewRequest(
        model="m",
        version=1,
        requested_by="alice",
        reviewers=["carol", "dave"],
        policy_version=1,
        opened_at=at(minutes),
    )


def decision(request_id: int, reviewer: str, approve: bool = True) -> Decision:
    return Decision(
        request_id=request_id,
        model="m",
        version=1,
        reviewer=reviewer,
        role="data_scientist",
        approve=approve,
        note=f"{reviewer} says so",
        created_at=at(5),
    )


def actions(store: SqlMetadataStore) -> list[str]:
    found = reversed(store.list_audit(AuditQuery(limit=100)))
    return [e.action for e in found if e.action != "add"]


def test_policy_versions_are_numbered_and_audited(store: SqlMetadataStore) -> None:
    assert store.current_policy_version() is None
    assert store.list_policy_versions() == []
    first = store.add_policy_version("format: 1\n", "a" * 64, "root", at(0), audit("p", "policy"))
    second = store.add_policy_version("format: 1\n#\n", "b" * 64, "root", at(1), audit("p"))
    assert (first.version, second.version) == (1, 2)
    current = store.current_policy_version()
    assert current is not None and current.text == "format: 1\n#\n"
    assert store.get_policy_version(1).digest == "a" * 64
    assert [v.version for v in store.list_policy_versions()] == [2, 1]
    with pytest.raises(NotFound):
        store.get_policy_version(3)
    assert actions(store) == ["p", "p"]


def test_assessments_newest_first_by_kind_and_their_digests(store: SqlMetadataStore) -> None:
    add_version(store)
    store.add_assessment(
        assessment(ReviewKind.BIAS, False, 0, attachments={"chart.png": "c" * 64}),
        audit("governance.bias"),
    )
    newer = store.add_assessment(
        assessment(ReviewKind.BIAS, True, 1, figures={"dpd": 0.04, "groups": ["a", "b"]}),
        audit("governance.bias"),
    )
    store.add_assessment(assessment(ReviewKind.COMPLIANCE, True, 2), audit("governance.compliance"))
    [latest] = store.list_assessments("m", 1, ReviewKind.BIAS, limit=1)
    assert latest == newer and latest.figures == {"dpd": 0.04, "groups": ["a", "b"]}
    assert [a.kind for a in store.list_assessments("m", 1)] == [
        ReviewKind.COMPLIANCE,
        ReviewKind.BIAS,
        ReviewKind.BIAS,
    ]
    assert store.list_assessments("m", 2) == []
    assert store.assessment_digests() == {"c" * 64}


def test_a_request_its_decisions_and_its_close(store: SqlMetadataStore) -> None:
    add_version(store)
    assert store.latest_review_request("m", 1) is None
    opened = store.open_review_request(request(), audit("governance.request"))
    assert opened.state is ReviewState.PENDING and opened.reviewers == ["carol", "dave"]
    store.add_decision(decision(opened.id, "carol"), audit("governance.decision"))
    with pytest.raises(Conflict, match="carol already decided"):
        store.add_decision(decision(opened.id, "carol", approve=False), audit("x"))
    store.add_decision(decision(opened.id, "dave"), audit("governance.decision"))
    assert [d.reviewer for d in store.list_decisions(opened.id)] == ["carol", "dave"]
    closed = store.close_review_request(
        opened.id, ReviewState.APPROVED, Approval.APPROVED, at(6), audit("closed")
    )
    assert closed.state is ReviewState.APPROVED and closed.closed_at is not None
    assert version(store).approval is Approval.APPROVED
    with pytest.raises(IllegalTransition, match="already approved"):
        store.close_review_request(
            opened.id, ReviewState.REJECTED, Approval.REJECTED, at(7), audit("again")
        )
    assert version(store).approval is Approval.APPROVED
    # A new request re-opens the decided version.
    again = store.open_review_request(request(8), audit("governance.request"))
    assert version(store).approval is Approval.PENDING
    assert store.latest_review_request("m", 1) == again
    assert [r.id for r in store.list_review_requests("m", 1)] == [again.id, opened.id]
    assert "again" not in actions(store) and "x" not in actions(store)


def test_reviews_of_a_missing_version_are_not_found(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFound):
        store.open_review_request(request(), audit("governance.request"))
    with pytest.raises(NotFound):
        store.close_review_request(999, ReviewState.APPROVED, Approval.APPROVED, at(0), audit("c"))
    assert actions(store) == []
