"""The runs part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.enums import DatasetFormat
from modelhub.domain.pipelines import Priority
from modelhub.domain.runs import Checkpoint, MetricPoint, RunResources, RunStatus
from modelhub.errors import Conflict, IllegalTransition, NotFound
from modelhub.stores.metadata.base import (
    AuditDraft,
    AuditQuery,
    DatasetDraft,
    PipelineDraft,
    Progress,
    RunDraft,
)
from modelhub.stores.metadata.sql import SqlMetadataStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def audit(action: str, target: str = "p") -> AuditDraft:
    return AuditDraft("alice", action, target, {})


def pipeline(
    store: SqlMetadataStore,
    name: str = "p",
    script: str | None = None,
    author: str = "alice",
    replaces: int | None = None,
) -> None:
    store.save_pipeline(
        PipelineDraft(
            name=name,
            type="pre_training",
            trainer="tabular_classifier",
            priority=Priority.NORMAL,
            spec={"name": name},
            created_by=author,
            script_digest=script,
            replaces=replaces,
        ),
        audit("pipelines.save", name),
    )


def start(store: SqlMetadataStore, priority: Priority = Priority.NORMAL, cpus: float = 1) -> int:
    run = store.create_run(
        RunDraft(
            pipeline="p",
            pipeline_version=1,
            priority=priority,
            resources=RunResources(cpus=cpus, memory=2**30, gpus=0),
            created_by="alice",
            max_attempts=3,
            result_model="m",
            spec={"name": "p"},
            inputs={"datasets": []},
        ),
        audit("runs.start"),
    )
    return run.id


def test_pipelines_are_versioned_by_name(store: SqlMetadataStore) -> None:
    pipeline(store)
    pipeline(store, script="a" * 64)
    saved = store.get_pipeline("p")
    assert (saved.version, saved.script_digest) == (2, "a" * 64)
    assert [p.name for p in store.list_pipelines()] == ["p"]
    assert "a" * 64 in store.referenced_digests()
    with pytest.raises(NotFound):
        store.get_pipeline("q")


def test_a_pipeline_keeps_its_owner_and_names_the_author_of_its_version(
    store: SqlMetadataStore,
) -> None:
    pipeline(store, author="alice", replaces=0)
    first = store.get_pipeline("p")
    assert (first.version, first.created_by, first.updated_by) == (1, "alice", "alice")
    pipeline(store, author="dora", replaces=1)
    second = store.get_pipeline("p")
    assert (second.version, second.created_by, second.updated_by) == (2, "alice", "dora")


@pytest.mark.parametrize("seen", [0, 1, 3])
def test_a_save_that_saw_another_version_changes_nothing(
    store: SqlMetadataStore, seen: int
) -> None:
    pipeline(store, author="alice")
    pipeline(store, author="alice")
    events = len(store.list_audit(AuditQuery(limit=100)))
    with pytest.raises(Conflict, match="changed while it was being saved"):
        pipeline(store, author="mallory", replaces=seen)
    kept = store.get_pipeline("p")
    assert (kept.version, kept.updated_by) == (2, "alice")
    assert len(store.list_audit(AuditQuery(limit=100))) == events


def dataset(store: SqlMetadataStore, author: str, replaces: int | None = None) -> int:
    draft = DatasetDraft(
        name="d",
        format=DatasetFormat.CSV,
        digest="b" * 64,
        size=10,
        rows=2,
        columns={"a": "int"},
        created_by=author,
        replaces=replaces,
    )
    return store.create_dataset(draft, audit("datasets.register", "d")).version


def test_a_dataset_version_that_saw_another_newest_one_changes_nothing(
    store: SqlMetadataStore,
) -> None:
    assert dataset(store, "alice", replaces=0) == 1
    assert dataset(store, "dora") == 2  # no expectation: appended as before
    with pytest.raises(Conflict, match="changed while it was being added"):
        dataset(store, "mallory", replaces=1)
    with pytest.raises(Conflict):
        dataset(store, "mallory", replaces=0)
    assert [(d.version, d.created_by) for d in store.list_datasets("d")] == [
        (1, "alice"),
        (2, "dora"),
    ]
    assert dataset(store, "alice", replaces=2) == 3


def test_runs_move_only_from_the_status_they_are_expected_in(store: SqlMetadataStore) -> None:
    pipeline(store)
    run_id = start(store)
    run = store.get_run(run_id)
    assert (run.status, run.attempts, run.progress) == (RunStatus.QUEUED, 0, 0.0)
    moved = store.move_run(
        run_id, [RunStatus.QUEUED], event={"status": "running"}, status=RunStatus.RUNNING
    )
    assert moved.status is RunStatus.RUNNING
    with pytest.raises(IllegalTransition, match="is running, not queued"):
        store.move_run(run_id, [RunStatus.QUEUED], status=RunStatus.RUNNING)
    with pytest.raises(NotFound):
        store.move_run(999, [RunStatus.QUEUED], status=RunStatus.RUNNING)
    statuses = [e.data["status"] for e in store.run_events(run_id) if e.kind == "status"]
    assert statuses == ["queued", "running"]


def claim(store: SqlMetadataStore, run_id: int, owner: str, until: datetime) -> None:
    store.move_run(
        run_id, [RunStatus.QUEUED], status=RunStatus.RUNNING, owner=owner, lease_expires_at=until
    )


def test_a_lease_renewed_in_time_keeps_its_run_and_an_expired_one_is_requeued_once(
    store: SqlMetadataStore,
) -> None:
    pipeline(store)
    kept, lapsed, legacy = start(store), start(store), start(store)
    claim(store, kept, "host:1:alive", NOW + timedelta(seconds=10))
    claim(store, lapsed, "host:1:dead", NOW + timedelta(seconds=10))
    store.move_run(legacy, [RunStatus.QUEUED], status=RunStatus.RUNNING, owner="host:7")
    assert store.get_run(kept).lease_expires_at == NOW + timedelta(seconds=10)
    later = NOW + timedelta(seconds=15)
    assert store.renew_leases("host:1:alive", later + timedelta(seconds=10)) == {kept}
    # Two servers sweep at the same moment: each run is requeued by exactly one of them.
    first = store.requeue_expired(later, "lease expired")
    second = store.requeue_expired(later, "lease expired")
    assert sorted(first) == sorted([lapsed, legacy]) and second == []
    assert store.get_run(kept).status is RunStatus.RUNNING
    back = store.get_run(lapsed)
    assert (back.status, back.owner, back.lease_expires_at) == (RunStatus.QUEUED, None, None)
    reasons = [e.data.get("reason") for e in store.run_events(lapsed) if e.kind == "status"]
    assert reasons[-1] == "lease expired"
    # The owner that lost it holds nothing: no renewal, and no move it makes lands.
    assert store.renew_leases("host:1:dead", later) == set()
    claim(store, lapsed, "host:2:new", later + timedelta(seconds=10))
    with pytest.raises(IllegalTransition, match="no longer held by host:1:dead"):
        store.move_run(lapsed, [RunStatus.RUNNING], held_by="host:1:dead", status="failed")
    assert store.get_run(lapsed).status is RunStatus.RUNNING


def test_an_expired_finishing_run_is_taken_over_once_and_a_live_one_is_kept(
    store: SqlMetadataStore,
) -> None:
    pipeline(store)
    kept, lapsed = start(store), start(store)
    claim(store, kept, "host:1:alive", NOW + timedelta(seconds=10))
    claim(store, lapsed, "host:1:dead", NOW + timedelta(seconds=10))
    for run_id in (kept, lapsed):
        store.move_run(run_id, [RunStatus.RUNNING], status=RunStatus.FINISHING)
    later = NOW + timedelta(seconds=15)
    # A finishing run's lease is renewed like a running one's.
    assert store.renew_leases("host:1:alive", later + timedelta(seconds=10)) == {kept}
    until = later + timedelta(seconds=10)
    first = store.claim_expired_finishing("host:2:new", later, until)
    second = store.claim_expired_finishing("host:3:other", later, until)
    assert (first, second) == ([lapsed], [])
    taken = store.get_run(lapsed)
    assert (taken.status, taken.owner, taken.lease_expires_at) == (
        RunStatus.FINISHING,
        "host:2:new",
        until,
    )
    assert store.get_run(kept).owner == "host:1:alive"
    # A sweep of running runs leaves finishing ones alone: they are not trained again.
    assert store.requeue_expired(later + timedelta(hours=1), "lease expired") == []
    assert store.renew_leases("host:1:dead", later) == set()


def test_the_queue_listing_holds_only_queued_runs(store: SqlMetadataStore) -> None:
    pipeline(store)
    first = start(store, Priority.HIGH, cpus=0.5)
    second = start(store)
    store.move_run(second, [RunStatus.QUEUED], status=RunStatus.CANCELLED)
    queued = store.queued_runs()
    assert [(q.id, q.priority, q.resources.cpus, q.attempts) for q in queued] == [
        (first, Priority.HIGH, 0.5, 0)
    ]
    assert [r.id for r in store.list_runs([RunStatus.CANCELLED])] == [second]
    assert [r.id for r in store.list_runs(limit=1)] == [second]  # newest first


def test_progress_of_several_runs_lands_in_one_batch(store: SqlMetadataStore) -> None:
    pipeline(store)
    a, b = start(store), start(store)
    points = [
        MetricPoint(name="loss", step=1, value=0.5, at=NOW),
        MetricPoint(name="loss", step=2, value=float("nan"), at=NOW),
    ]
    store.record_progress_batch(
        [
            Progress(a, {"step": 2, "progress": 50.0, "metrics": {"loss": 0.5}}, points),
            Progress(b, {"step": 7}, (), [("progress", {"step": 7})]),
        ]
    )
    assert (store.get_run(a).step, store.get_run(a).progress, store.get_run(b).step) == (
        2,
        50.0,
        7,
    )
    stored = store.metric_points(a, "loss")
    assert [p.step for p in stored] == [1, 2] and stored[0].value == 0.5
    assert math.isnan(stored[1].value)
    after = store.run_events(b)[-1]
    assert after.kind == "progress" and store.run_events(b, after=after.id) == []


def test_one_metric_of_many_runs_is_read_at_once(store: SqlMetadataStore) -> None:
    pipeline(store)
    a, b, quiet = start(store), start(store), start(store)
    speed = [MetricPoint(name="samples_per_s", step=s, value=100.0 * s, at=NOW) for s in (1, 2)]
    loss = [MetricPoint(name="loss", step=1, value=0.3, at=NOW)]
    store.record_progress_batch(
        [Progress(a, {}, speed + loss), Progress(b, {}, speed[:1]), Progress(quiet, {}, loss)]
    )
    assert store.metric_values([a, b, quiet], "samples_per_s") == {a: [100.0, 200.0], b: [100.0]}
    assert store.metric_values([], "samples_per_s") == {}


def test_checkpoints_are_kept_dropped_and_referenced(store: SqlMetadataStore) -> None:
    pipeline(store)
    run_id = start(store)
    for step, best in ((10, False), (20, False), (20, True)):
        store.add_checkpoint(
            Checkpoint(
                run_id=run_id,
                step=step,
                digest=f"{step}{int(best)}".rjust(64, "0"),
                size=5,
                best=best,
                metric=0.1 if best else None,
                created_at=NOW,
            )
        )
    assert len(store.list_checkpoints(run_id)) == 3
    dropped = store.drop_checkpoints(run_id, keep={(20, False), (20, True)})
    assert dropped == ["100".rjust(64, "0")]
    assert {c.digest for c in store.list_checkpoints(run_id)} <= store.referenced_digests()


def test_an_alert_fires_once_until_resolved(store: SqlMetadataStore) -> None:
    first = store.fire_alert("run:1", "stalled", "warning", "no progress")
    assert store.fire_alert("run:1", "stalled", "warning", "again").id == first.id
    assert store.resolve_alerts("run:1", "stalled") == 1
    assert store.list_alerts("run:1", firing_only=True) == []
    assert store.fire_alert("run:1", "stalled", "warning", "later").id != first.id


def test_upgrading_from_0005_names_the_owner_as_author_of_existing_pipelines(
    metadata_url: str,
) -> None:
    from sqlalchemy import text

    from modelhub.stores.metadata.engine import make_engine
    from modelhub.stores.metadata.migrate import upgrade

    engine = make_engine(metadata_url)
    try:
        upgrade(engine, "0005")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO pipelines (name, version, type, trainer, priority, spec,"
                    " created_by, created_at, updated_at) VALUES ('old', 3, 'pre_training',"
                    " 'tabular_classifier', 'normal', '{}', 'alice', :at, :at)"
                ),
                {"at": NOW},
            )
        upgrade(engine)
    finally:
        engine.dispose()
    store = SqlMetadataStore(metadata_url)
    try:
        old = store.get_pipeline("old")
        assert (old.version, old.created_by, old.updated_by) == (3, "alice", "alice")
    finally:
        store.close()


def test_runs_are_paged_counted_and_summed_up_per_pipeline(store: SqlMetadataStore) -> None:
    pipeline(store)
    ids = [start(store) for _ in range(5)]
    store.move_run(ids[-1], [RunStatus.QUEUED], status=RunStatus.CANCELLED)
    page, total = store.page_runs(offset=1, limit=2)
    assert ([r.id for r in page], total) == ([ids[3], ids[2]], 5)
    page, total = store.page_runs([RunStatus.QUEUED], "p", offset=3, limit=2)
    assert ([r.id for r in page], total) == ([ids[0]], 4)
    assert store.page_runs(pipeline="q") == ([], 0)
    assert store.pipeline_run_summaries() == {"p": (5, RunStatus.CANCELLED)}
    assert store.last_run_event_id(ids[-1]) == store.run_events(ids[-1])[-1].id
    assert store.last_run_event_id(10**9) == 0
