"""The history part of the MetadataStore contract (roll-ups, resource samples,
retention), on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from modelhub.domain.monitoring import ResourceSample, RollupColumns, RollupRecord
from modelhub.errors import InvalidInput
from modelhub.monitoring import sketches
from modelhub.monitoring.rollup import combine
from modelhub.stores.metadata.base_history import RollupQuery
from modelhub.stores.metadata.sql import SqlMetadataStore

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _latency() -> bytes:
    sketch = sketches.new_sketch()
    for value in (1.0, 2.0, 40.0):
        sketch.add(value)
    return sketches.encode(sketch)


LATENCY = _latency()


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def minute(
    at: datetime, deployment: str = "d", version: int = 1, model: str = "m", requests: int = 10
) -> RollupRecord:
    return RollupRecord(
        deployment=deployment,
        model=model,
        version=version,
        start=at,
        requests=requests,
        errors_by_kind={"internal": 1, "invalid_input": 2},
        rows=requests * 3,
        batches=4,
        batch_rows=requests * 3,
        in_flight_peak=5,
        latency=LATENCY,
    )


def sample(at: datetime, pid: int, cpu_seconds: float, **extra: object) -> ResourceSample:
    values: dict[str, object] = {
        "kind": "training",
        "subject": "7",
        "pid": pid,
        "at": at,
        "cpu_percent": 50.0,
        "cpu_seconds": cpu_seconds,
        "rss_bytes": 1000,
        "interval_seconds": 10.0,
    }
    values.update(extra)
    return ResourceSample(**values)  # type: ignore[arg-type]


def test_rollups_round_trip_and_list_by_window_model_and_version(store: SqlMetadataStore) -> None:
    records = [minute(T0 + timedelta(minutes=i)) for i in range(3)]
    records.append(minute(T0, version=2))
    records.append(minute(T0, deployment="other", model="n"))
    store.put_rollups(records, [minute(T0)])
    query = RollupQuery("minute", T0, T0 + timedelta(minutes=2), model="m")
    found = store.list_rollups(query)
    assert [(r.version, r.start) for r in found] == [
        (1, T0),
        (2, T0),
        (1, T0 + timedelta(minutes=1)),
    ]
    assert found[0] == records[0]  # every field, the sketch bytes and the errors by kind
    assert found[0].errors == 3
    only_v2 = store.list_rollups(RollupQuery("minute", T0, T0 + timedelta(hours=1), version=2))
    assert [r.version for r in only_v2] == [2]
    by_deployment = store.list_rollups(
        RollupQuery("minute", T0, T0 + timedelta(hours=1), deployment="other")
    )
    assert [r.model for r in by_deployment] == ["n"]
    assert store.list_rollups(RollupQuery("hour", T0, T0 + timedelta(hours=1))) == [minute(T0)]


def test_put_replaces_a_key_and_get_reads_only_existing_keys(store: SqlMetadataStore) -> None:
    store.put_rollups([minute(T0, requests=1)], [])
    store.put_rollups([minute(T0, requests=9)], [])
    keys = [("m", "d", 1, T0), ("m", "d", 1, T0 + timedelta(minutes=1)), ("n", "d", 1, T0)]
    [found] = store.get_rollups("minute", keys)
    assert found.requests == 9


def test_merge_adds_pieces_to_stored_rows_in_one_transaction(store: SqlMetadataStore) -> None:
    hour = T0.replace(minute=0)
    store.merge_rollups([minute(T0, requests=2)], [minute(hour, requests=2)], combine)
    store.merge_rollups(
        [minute(T0, requests=3), minute(T0, requests=4), minute(T0, deployment="")],
        [minute(hour, requests=7)],
        combine,
    )
    [merged] = store.get_rollups("minute", [("m", "d", 1, T0)])
    assert (merged.requests, merged.errors_by_kind) == (9, {"internal": 3, "invalid_input": 6})
    assert store.get_rollups("minute", [("m", "", 1, T0)])[0].requests == 10
    [hour_row] = store.get_rollups("hour", [("m", "d", 1, hour)])
    assert hour_row.requests == 9
    with pytest.raises(InvalidInput, match="boundary"):
        store.merge_rollups([minute(T0, requests=1)], [minute(T0 + timedelta(minutes=1))], combine)
    assert store.get_rollups("minute", [("m", "d", 1, T0)])[0].requests == 9  # unchanged


def test_times_in_another_zone_are_the_same_instant(store: SqlMetadataStore) -> None:
    paris = timezone(timedelta(hours=1))
    store.put_rollups([minute(T0.astimezone(paris))], [])
    [found] = store.get_rollups("minute", [("m", "d", 1, T0)])
    assert found.start == T0 and found.start.tzinfo is not None


def test_bad_rollups_are_refused_and_nothing_is_written(store: SqlMetadataStore) -> None:
    good = minute(T0)
    off_boundary = minute(T0 + timedelta(seconds=30))
    with pytest.raises(InvalidInput, match="boundary"):
        store.put_rollups([good, off_boundary], [])
    with pytest.raises(InvalidInput, match="hour boundary"):
        store.put_rollups([good], [minute(T0 + timedelta(minutes=5))])
    with pytest.raises(InvalidInput, match="negative"):
        store.put_rollups([minute(T0, requests=-1)], [])
    with pytest.raises(InvalidInput, match="resolution"):
        store.list_rollups(RollupQuery("day", T0, T0 + timedelta(days=1)))
    assert store.get_rollups("minute", [("m", "d", 1, T0)]) == []
    assert store.list_rollups(RollupQuery("hour", T0, T0 + timedelta(hours=1))) == []


def test_resource_samples_and_their_totals(store: SqlMetadataStore) -> None:
    store.add_resource_samples(
        [
            sample(T0, pid=10, cpu_seconds=1.0, rss_bytes=500),
            sample(T0 + timedelta(seconds=10), pid=10, cpu_seconds=6.0, gpu_util=50.0),
            sample(T0 + timedelta(seconds=10), pid=11, cpu_seconds=2.5, rss_bytes=4000),
            sample(T0, pid=99, cpu_seconds=100.0, subject="8"),
        ]
    )
    totals = store.resource_totals("training", "7")
    assert totals.cpu_seconds == pytest.approx(8.5)  # the last cumulative figure per pid
    assert totals.gpu_seconds == pytest.approx(5.0)  # 50 % of a 10 s interval
    assert totals.peak_rss_bytes == 4000
    assert store.resource_totals("training", "nothing").cpu_seconds == 0.0
    listed = store.list_resource_samples("training", ["7"], T0, T0 + timedelta(minutes=1))
    assert [(s.pid, s.gpu_util) for s in listed] == [(10, None), (10, 50.0), (11, None)]
    assert store.list_resource_samples("training", [], T0, T0 + timedelta(minutes=1)) == []
    with pytest.raises(InvalidInput, match="kind"):
        store.add_resource_samples([sample(T0, pid=1, cpu_seconds=0.0, kind="gpu")])


def test_purge_deletes_by_age_per_table(store: SqlMetadataStore) -> None:
    store.put_rollups(
        [minute(T0 - timedelta(days=8)), minute(T0)],
        [minute(T0 - timedelta(days=91)), minute(T0 - timedelta(days=8))],
    )
    store.add_resource_samples([sample(T0 - timedelta(days=91), 1, 1.0), sample(T0, 1, 2.0)])
    purged = store.purge_history(
        minutes_before=T0 - timedelta(days=7),
        hours_before=T0 - timedelta(days=90),
        samples_before=T0 - timedelta(days=90),
    )
    assert (purged.minutes, purged.hours, purged.samples) == (1, 1, 1)
    year = RollupQuery("minute", T0 - timedelta(days=365), T0 + timedelta(days=1))
    assert [r.start for r in store.list_rollups(year)] == [T0]
    hours = store.list_rollups(RollupQuery("hour", year.start, year.end))
    assert [r.start for r in hours] == [T0 - timedelta(days=8)]


def test_rollup_columns_hold_what_list_rollups_holds(store: SqlMetadataStore) -> None:
    records = [minute(T0 + timedelta(minutes=i), version=1 + i % 2) for i in range(4)]
    clean = replace(minute(T0, deployment="e"), errors_by_kind={})
    store.put_rollups([*records, clean], [])
    query = RollupQuery("minute", T0, T0 + timedelta(hours=1), model="m")
    columns = store.rollup_columns(query)
    assert columns == RollupColumns.of(store.list_rollups(query))
    assert len(columns) == 5 and all(at.tzinfo is not None for at in columns.start)
    assert columns.errors_by_kind[0] == {"internal": 1, "invalid_input": 2}
    empty = store.rollup_columns(RollupQuery("hour", T0, T0 + timedelta(hours=1)))
    assert len(empty) == 0
