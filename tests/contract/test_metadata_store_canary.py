"""The canary-decisions part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.canary import CanaryDecision, CanaryOutcome, VersionFigures
from modelhub.errors import Conflict
from modelhub.monitoring.degradation import error_rate_verdict
from modelhub.stores.metadata.base import AuditDraft, AuditQuery
from modelhub.stores.metadata.sql import SqlMetadataStore

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def decision(
    deployment: str = "web", started_at: datetime = START, minutes: int = 10
) -> CanaryDecision:
    return CanaryDecision(
        deployment=deployment,
        model="m",
        stable=VersionFigures(version=1, requests=1800, errors=9, p50_ms=20.5, p99_ms=80.0),
        canary=VersionFigures(version=2, requests=200, errors=10, p50_ms=21.0, labelled=5),
        outcome=CanaryOutcome.ROLLBACK,
        reason="worse on error_rate",
        verdicts=[error_rate_verdict(9, 1800, 10, 200)],
        started_at=started_at,
        decided_at=started_at + timedelta(minutes=minutes),
    )


def audit() -> AuditDraft:
    return AuditDraft("system", "deployments.canary_decision", "web", {"outcome": "rollback"})


def test_a_decision_round_trips_with_its_figures_and_tests(store: SqlMetadataStore) -> None:
    made = decision()
    stored = store.add_canary_decision(made, audit())
    assert stored.id is not None
    assert stored.model_copy(update={"id": None}) == made
    assert store.list_canary_decisions("web") == [stored]
    assert stored.verdicts[0].worse and stored.verdicts[0].p_value is not None


def test_a_decision_is_audited_in_the_same_write(store: SqlMetadataStore) -> None:
    store.add_canary_decision(decision(), audit())
    events = store.list_audit(AuditQuery(limit=10))
    assert [e.action for e in events if e.target == "web"] == ["deployments.canary_decision"]


def test_one_canary_gets_one_decision_and_a_second_writes_nothing(
    store: SqlMetadataStore,
) -> None:
    store.add_canary_decision(decision(), audit())
    before = len(store.list_audit(AuditQuery(limit=100)))
    with pytest.raises(Conflict, match="already has a decision"):
        store.add_canary_decision(decision(minutes=20), audit())
    assert len(store.list_canary_decisions("web")) == 1
    assert len(store.list_audit(AuditQuery(limit=100))) == before


def test_decisions_list_newest_first_per_deployment(store: SqlMetadataStore) -> None:
    first = store.add_canary_decision(decision(), audit())
    later = store.add_canary_decision(decision(started_at=START + timedelta(hours=1)), audit())
    store.add_canary_decision(decision("other"), audit())
    assert store.list_canary_decisions("web") == [later, first]
    assert store.list_canary_decisions("web", limit=1) == [later]
    assert store.list_canary_decisions("nobody") == []
