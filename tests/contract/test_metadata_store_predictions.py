"""The prediction log part of the MetadataStore contract, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelhub.domain.deployments import Deployment, DeploymentStatus, Environment, TrafficShare
from modelhub.domain.predictions import (
    LabelDraft,
    LoggedPrediction,
    PredictionLogFile,
    PredictionLogPolicy,
)
from modelhub.errors import NotFound
from modelhub.stores.metadata.base import AuditDraft, AuditQuery
from modelhub.stores.metadata.sql import SqlMetadataStore

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(migrated_metadata_url: str) -> Iterator[SqlMetadataStore]:
    s = SqlMetadataStore(migrated_metadata_url)
    yield s
    s.close()


def log_file(digest: str, version: int = 1, minutes: tuple[int, int] = (0, 5)) -> PredictionLogFile:
    return PredictionLogFile(
        digest=digest,
        deployment="web",
        model="intents",
        version=version,
        rows=3,
        requests=3,
        size=1234,
        first_at=T0 + timedelta(minutes=minutes[0]),
        last_at=T0 + timedelta(minutes=minutes[1]),
        ingested_at=T0 + timedelta(minutes=10),
    )


def logged(
    request_id: str, digest: str, minute: int = 0, version: int = 1, **fields: Any
) -> LoggedPrediction:
    values: dict[str, Any] = {
        "request_id": request_id,
        "model": "intents",
        "version": version,
        "deployment": "web",
        "at": T0 + timedelta(minutes=minute),
        "latency_ms": 1.25,
        "rows": 1,
        "prediction": "c1",
        "kind": "class",
        "file_digest": digest,
    }
    return LoggedPrediction(**{**values, **fields})


def digest(n: int) -> str:
    return "sha256:" + f"{n:x}".rjust(64, "0")


def test_a_file_is_indexed_once_by_digest(store: SqlMetadataStore) -> None:
    d = digest(1)
    records = [logged("a", d, 0), logged("b", d, 2), logged("c", d, 4)]
    assert store.record_prediction_file(log_file(d), records) is True
    assert store.record_prediction_file(log_file(d), records) is False
    assert [f.digest for f in store.prediction_files("intents", T0, T0 + timedelta(hours=1))] == [d]
    assert len(store.list_predictions("intents", T0, T0 + timedelta(hours=1))) == 3
    assert d in store.prediction_digests()


def test_a_numeric_prediction_keeps_its_kind(store: SqlMetadataStore) -> None:
    d = digest(1)
    store.record_prediction_file(log_file(d), [logged("a", d, prediction=1.0, kind="number")])
    found = store.logged_predictions("intents", ["a"])["a"]
    assert found.kind == "number" and found.prediction == 1


def test_a_request_id_keeps_its_first_record(store: SqlMetadataStore) -> None:
    store.record_prediction_file(log_file(digest(1)), [logged("a", digest(1), prediction="c1")])
    store.record_prediction_file(log_file(digest(2)), [logged("a", digest(2), prediction="c9")])
    found = store.logged_predictions("intents", ["a", "never"])
    assert list(found) == ["a"] and found["a"].prediction == "c1"


def test_files_and_predictions_are_found_by_window_and_version(store: SqlMetadataStore) -> None:
    store.record_prediction_file(log_file(digest(1), 1, (0, 5)), [logged("a", digest(1), 1)])
    store.record_prediction_file(
        log_file(digest(2), 2, (30, 40)), [logged("b", digest(2), 35, version=2, rows=3)]
    )
    window = (T0 + timedelta(minutes=20), T0 + timedelta(minutes=60))
    assert [f.version for f in store.prediction_files("intents", *window)] == [2]
    assert store.prediction_files("intents", *window, version=1) == []
    assert [p.request_id for p in store.list_predictions("intents", T0, window[1])] == ["b", "a"]
    assert store.list_predictions("intents", T0, window[1], limit=1)[0].request_id == "b"
    assert store.logged_rows("intents", T0, window[1]) == {1: 1, 2: 3}
    assert store.logged_rows("intents", T0, window[1], version=2) == {2: 3}
    assert store.list_predictions("other", T0, window[1]) == []


def test_labels_replace_and_are_audited(store: SqlMetadataStore) -> None:
    d = digest(1)
    store.record_prediction_file(log_file(d), [logged("a", d, 0), logged("b", d, 1)])
    end = T0 + timedelta(hours=1)
    assert store.store_labels(
        "intents",
        [LabelDraft(request_id="a", label="c1")],
        AuditDraft("bob", "predictions.feedback", "intents"),
    ) == (1, 0)
    assert store.store_labels(
        "intents",
        [LabelDraft(request_id="a", label="c2"), LabelDraft(request_id="b", label="c1")],
        AuditDraft("bob", "predictions.feedback", "intents"),
    ) == (2, 1)
    labelled = store.labelled_predictions("intents", T0, end)
    assert [(p.request_id, p.label) for p in labelled] == [("a", "c2"), ("b", "c1")]
    assert labelled[0].labelled_at is not None
    events = store.list_audit(AuditQuery(action="predictions.feedback"))
    assert len(events) == 2 and events[0].actor == "bob"


def test_a_label_for_an_id_never_logged_stores_nothing(store: SqlMetadataStore) -> None:
    d = digest(1)
    store.record_prediction_file(log_file(d), [logged("a", d, 0)])
    with pytest.raises(NotFound):
        store.store_labels(
            "intents",
            [LabelDraft(request_id="a", label="c1"), LabelDraft(request_id="zz", label="c1")],
            AuditDraft("bob", "predictions.feedback", "intents"),
        )
    assert store.labelled_predictions("intents", T0, T0 + timedelta(hours=1)) == []


def test_a_deployment_keeps_its_prediction_log_policy(store: SqlMetadataStore) -> None:
    policy = PredictionLogPolicy(rate=0.25, max_per_minute=50)
    created = store.create_deployment(
        Deployment(
            name="web",
            model="intents",
            environment=Environment.STAGING,
            traffic=[TrafficShare(version=1, percent=100)],
            replicas=1,
            status=DeploymentStatus.DEPLOYING,
            prediction_log=policy,
            created_by="alice",
            created_at=T0,
            updated_at=T0,
        ),
        AuditDraft("alice", "deployments.create", "web"),
    )
    assert created.prediction_log == policy
    off = PredictionLogPolicy(rate=0.0)
    store.update_deployment("web", {"prediction_log": off}, audit=AuditDraft("a", "x", "web"))
    assert store.get_deployment("web").prediction_log == off


def test_files_older_than_the_cut_off_go_with_their_requests_and_labels(
    store: SqlMetadataStore,
) -> None:
    old, new = digest(1), digest(2)
    store.record_prediction_file(log_file(old, 1, (0, 5)), [logged("a", old, 1)])
    store.record_prediction_file(log_file(new, 1, (30, 40)), [logged("b", new, 35)])
    store.store_labels(
        "intents", [LabelDraft(request_id="a", label="c1")], AuditDraft("bob", "x", "intents")
    )
    # A file goes only when its newest request is older: 5 minutes is not before 5.
    assert store.purge_predictions(T0 + timedelta(minutes=5)) == 0
    assert store.purge_predictions(T0 + timedelta(minutes=20)) == 1
    end = T0 + timedelta(hours=1)
    assert [f.digest for f in store.prediction_files("intents", T0, end)] == [new]
    assert [p.request_id for p in store.list_predictions("intents", T0, end)] == ["b"]
    assert store.labelled_predictions("intents", T0, end) == []
    assert old not in store.prediction_digests() and new in store.prediction_digests()
    assert store.purge_predictions(T0 + timedelta(minutes=20)) == 0


def test_the_artifact_gc_keeps_indexed_log_files(store: SqlMetadataStore) -> None:
    """A log file's blob is referenced while it is indexed (a regression: the list of
    referenced blobs once lost prediction logs, and a GC would have deleted live logs)."""
    store.record_prediction_file(log_file(digest(7)), [])
    assert digest(7) in store.prediction_digests()
    assert digest(7) in store.referenced_digests()
