"""The cost part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.cost import AttemptUsage, BudgetScope
from modelhub.domain.pipelines import Priority
from modelhub.domain.runs import RunResources
from modelhub.errors import Conflict, NotFound
from modelhub.stores.metadata.base import AuditDraft, AuditQuery, PipelineDraft, RunDraft
from modelhub.stores.metadata.sql import SqlMetadataStore

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def audit(action: str, target: str = "budget") -> AuditDraft:
    return AuditDraft("root", action, target, {})


def new_run(store: SqlMetadataStore) -> int:
    if not store.list_pipelines():
        store.save_pipeline(
            PipelineDraft(
                name="p",
                type="pre_training",
                trainer="tabular_classifier",
                priority=Priority.NORMAL,
                spec={"name": "p"},
                created_by="alice",
            ),
            audit("pipelines.save", "p"),
        )
    run = store.create_run(
        RunDraft(
            pipeline="p",
            pipeline_version=1,
            priority=Priority.NORMAL,
            resources=RunResources(cpus=1, memory=2**30, gpus=0),
            created_by="alice",
            max_attempts=3,
            result_model="m",
            spec={"name": "p"},
            inputs={"datasets": []},
        ),
        audit("runs.start", "p"),
    )
    return run.id


def usage(run_id: int, attempt: int, cpu: float, final: bool = False) -> AttemptUsage:
    return AttemptUsage(
        run_id=run_id,
        attempt=attempt,
        cpu_seconds=cpu,
        gpu_seconds=cpu / 2,
        wall_seconds=cpu * 2,
        final=final,
    )


def test_attempt_usage_is_replaced_until_final_and_summed_over_attempts(
    store: SqlMetadataStore,
) -> None:
    run_id, other = new_run(store), new_run(store)
    store.record_attempt_usage(usage(run_id, 1, 3.0))
    store.record_attempt_usage(usage(run_id, 1, 5.0))  # a later sample replaces
    store.record_attempt_usage(usage(run_id, 1, 6.0, final=True))
    store.record_attempt_usage(usage(run_id, 1, 9.0))  # a sample never replaces the final
    store.record_attempt_usage(usage(run_id, 2, 4.0, final=True))
    found = store.run_usage([run_id])
    assert set(found) == {run_id}
    assert found[run_id].cpu_seconds == pytest.approx(10.0)
    assert found[run_id].gpu_seconds == pytest.approx(5.0)
    assert found[run_id].wall_seconds == pytest.approx(20.0)
    assert found[run_id].attempts == 2
    assert store.run_usage([other]) == {}
    assert set(store.run_usage()) == {run_id}


def test_usage_of_an_unknown_run_is_refused(store: SqlMetadataStore) -> None:
    with pytest.raises(NotFound, match="run 999"):
        store.record_attempt_usage(usage(999, 1, 1.0))
    assert store.run_usage() == {}


def test_replica_reports_open_and_close_spans(store: SqlMetadataStore) -> None:
    store.record_replicas("web", [(10, False)], at(0))
    store.record_replicas("web", [(10, True), (11, False)], at(1))  # 10 ready, 11 starts
    store.record_replicas("web", [(10, True), (11, True)], at(2))
    store.record_replicas("web", [(11, True)], at(5))  # 10 died
    store.record_replicas("api", [(20, True)], at(3))
    spans = store.replica_spans(at(0), at(60), "web")
    shown = [(s.pid, s.ready, s.started_at, s.ended_at) for s in spans]
    assert shown == [
        (10, False, at(0), at(1)),
        (10, True, at(1), at(5)),
        (11, False, at(1), at(2)),
        (11, True, at(2), None),
    ]
    assert {s.deployment for s in store.replica_spans(at(0), at(60))} == {"web", "api"}
    # only spans that overlap the window
    assert [(s.pid, s.ready) for s in store.replica_spans(at(5), at(60), "web")] == [(11, True)]
    assert store.replica_spans(at(-10), at(0), "web") == []


def test_closing_spans_at_stop_and_after_a_crash(store: SqlMetadataStore) -> None:
    store.record_replicas("web", [(10, True)], at(0))
    store.record_replicas("api", [(20, True)], at(0))
    store.touch_replica_spans({"web"}, at(7))
    assert store.close_replica_spans("api", at(4)) == 1
    # the server died: the open span ends when it was last seen, not now
    assert store.close_stale_replica_spans() == 1
    ends = {s.deployment: s.ended_at for s in store.replica_spans(at(0), at(60))}
    assert ends == {"web": at(7), "api": at(4)}
    assert store.close_replica_spans(None, at(9)) == 0


def test_budgets_are_unique_per_scope_audited_and_removed_with_their_alerts(
    store: SqlMetadataStore,
) -> None:
    tag = store.create_budget(
        BudgetScope.TAG, "team", "personas", 200.0, "USD", "root", audit("cost.budget.set")
    )
    user = store.create_budget(
        BudgetScope.USER, "", "alice", 50.0, "USD", "root", audit("cost.budget.set")
    )
    assert (tag.scope, tag.key, tag.value, tag.monthly) == (
        BudgetScope.TAG,
        "team",
        "personas",
        200.0,
    )
    with pytest.raises(Conflict, match="tag:team=personas"):
        store.create_budget(
            BudgetScope.TAG, "team", "personas", 9.0, "USD", "root", audit("cost.budget.set")
        )
    assert [b.id for b in store.list_budgets()] == [tag.id, user.id]
    assert store.claim_budget_alert(tag.id, "2026-05", 80, at(0))
    assert not store.claim_budget_alert(tag.id, "2026-05", 80, at(1))
    assert store.claim_budget_alert(tag.id, "2026-06", 80, at(2))
    assert store.claim_budget_alert(user.id, "2026-05", 100, at(3))
    assert store.budget_alerts("2026-05") == {tag.id: [80], user.id: [100]}
    removed = store.delete_budget(tag.id, audit("cost.budget.remove"))
    assert removed.id == tag.id
    assert store.budget_alerts("2026-05") == {user.id: [100]}
    with pytest.raises(NotFound, match=f"budget {tag.id}"):
        store.delete_budget(tag.id, audit("cost.budget.remove"))
    actions = [e.action for e in store.list_audit(AuditQuery(target="budget"))]
    assert sorted(actions) == ["cost.budget.remove", "cost.budget.set", "cost.budget.set"]
