"""PredictionService over real stores: idempotent ingest, reading windows, feedback
rules and accuracy. Log files are written by the replica's own writer."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from modelhub.domain.auth import Caller, Role
from modelhub.domain.monitoring import Window
from modelhub.errors import InvalidInput, PermissionDenied
from modelhub.services import Services
from modelhub.services.registry import RegisterRequest
from modelhub.serving.predlog import Entry, LogTarget, write_file
from tests.stores import blob_digests

NOW = datetime.now(UTC)
ADMIN = Caller(name="admin", role=Role.ADMIN)


def entries(version: int, count: int, start: int = 0, rows: int = 1) -> list[Entry]:
    return [
        Entry(
            name="web",
            version=version,
            request_id=f"v{version}-{i}",
            at=(NOW - timedelta(minutes=30)).timestamp() + i,
            latency_ms=2.0,
            rows=rows,
            inputs={"x": np.full((rows, 3), float(i), np.float32)},
            outputs={"label": np.array([f"c{i % 2}"] * rows, dtype=object)},
        )
        for i in range(start, start + count)
    ]


def spool_file(services: Services, version: int, items: list[Entry]) -> Path:
    spool = services.settings.prediction_spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    return write_file(spool, LogTarget("web", "intents", 1.0, 1000), version, items)


@pytest.fixture
def model(services: Services, onnx_file: Path) -> str:
    services.registry.register(
        RegisterRequest(name="intents", type="classification"), onnx_file, "alice"
    )
    return "intents"


def window() -> Window:
    return Window.last(timedelta(hours=1), datetime.now(UTC))


def test_ingest_is_idempotent_by_digest(services: Services, model: str, tmp_path: Path) -> None:
    path = spool_file(services, 1, entries(1, 4))
    kept = tmp_path / "copy.parquet"
    shutil.copy(path, kept)
    assert services.predictions.ingest_spool() == 1
    assert not path.exists()
    # A crash after indexing but before the spool file was deleted: ingested again.
    shutil.copy(kept, path)
    assert services.predictions.ingest_spool() == 0
    assert not path.exists()
    found = services.predictions.predictions(ADMIN, model, window(), limit=100)
    assert sorted(p.request_id for p in found) == [f"v1-{i}" for i in range(4)]


def test_a_file_that_is_no_log_is_set_aside_and_the_rest_ingested(
    services: Services, model: str
) -> None:
    spool = services.settings.prediction_spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "0-garbage.parquet").write_bytes(b"not parquet at all")
    spool_file(services, 1, entries(1, 2))
    assert services.predictions.ingest_spool() == 1
    assert sorted(p.name for p in spool.iterdir()) == ["0-garbage.parquet.rejected"]
    assert len(services.predictions.predictions(ADMIN, model, window())) == 2


def test_inputs_and_outputs_of_a_window(services: Services, model: str) -> None:
    spool_file(services, 1, entries(1, 3, rows=2))
    spool_file(services, 2, entries(2, 5))
    services.predictions.ingest_spool()
    inputs = services.predictions.inputs(model, 1, window())
    assert inputs["x"].shape == (6, 3)
    outputs = services.predictions.outputs(model, 2, window())
    assert outputs["label"].dtype == object and len(outputs["label"]) == 5
    later = Window(datetime.now(UTC), datetime.now(UTC) + timedelta(hours=1))
    assert services.predictions.inputs(model, 1, later) == {}


def write_lines(path: Path, items: list[object]) -> list[str]:
    lines = [item if isinstance(item, str) else json.dumps(item) for item in items]
    path.write_text("\n".join(lines))
    return lines


def test_feedback_joins_counts_unknown_ids_and_replaces(services: Services, model: str) -> None:
    spool_file(services, 1, entries(1, 4))
    services.predictions.ingest_spool()
    lines = [
        json.dumps({"request_id": "v1-0", "label": "c0"}),
        json.dumps({"request_id": "v1-1", "label": "c0"}),
        json.dumps({"request_id": "nobody", "label": "c0"}),
    ]
    outcome = services.predictions.feedback(ADMIN, model, lines)
    assert (outcome.stored, outcome.replaced, outcome.unknown) == (2, 0, 1)
    assert outcome.unknown_ids == ["nobody"]
    summary = services.predictions.accuracy(model, window())
    assert (summary.metric, summary.value, summary.labelled, summary.predictions) == (
        "accuracy",
        0.5,
        2,
        4,
    )
    again = services.predictions.feedback(
        ADMIN, model, [json.dumps({"request_id": "v1-1", "label": "c1"})]
    )
    assert (again.stored, again.replaced) == (1, 1)
    assert services.predictions.accuracy(model, window()).value == 1.0


def test_a_bad_label_refuses_the_whole_file(services: Services, model: str) -> None:
    spool_file(services, 1, entries(1, 3))
    services.predictions.ingest_spool()
    lines = [
        json.dumps({"request_id": "v1-0", "label": "c0"}),
        json.dumps({"request_id": "v1-1", "label": 3}),
        "not json",
        json.dumps({"request_id": "v1-2"}),
    ]
    with pytest.raises(InvalidInput) as caught:
        services.predictions.feedback(ADMIN, model, lines)
    assert caught.value.details["bad_lines"] == [2, 3, 4]
    assert "not a string" in caught.value.message
    assert services.predictions.accuracy(model, window()).labelled == 0


def test_regression_labels_must_be_numbers_and_give_mae(services: Services, model: str) -> None:
    items = entries(1, 3)
    numeric = [
        Entry(e.name, e.version, e.request_id, e.at, e.latency_ms, e.rows, e.inputs,
              {"value": np.array([float(i)], np.float32)})
        for i, e in enumerate(items)
    ]  # fmt: skip
    spool_file(services, 1, numeric)
    services.predictions.ingest_spool()
    with pytest.raises(InvalidInput):
        services.predictions.feedback(
            ADMIN, model, [json.dumps({"request_id": "v1-0", "label": "x"})]
        )
    services.predictions.feedback(
        ADMIN,
        model,
        [
            json.dumps({"request_id": "v1-0", "label": 1.0}),
            json.dumps({"request_id": "v1-2", "label": 2}),
        ],
    )
    summary = services.predictions.accuracy(model, window())
    assert summary.metric == "mae" and summary.value == pytest.approx(0.5)


def test_a_viewer_may_read_but_not_send_feedback(services: Services, model: str) -> None:
    viewer = Caller(name="vic", role=Role.VIEWER)
    assert services.predictions.predictions(viewer, model, window()) == []
    with pytest.raises(PermissionDenied):
        services.predictions.feedback(
            viewer, model, [json.dumps({"request_id": "a", "label": "c"})]
        )


def test_private_inputs_are_left_out_of_the_windows_inputs(services: Services, model: str) -> None:
    spool = services.settings.prediction_spool_dir
    private = LogTarget("web", "intents", 1.0, 1000, {1: frozenset({"x"})})
    items = [
        Entry(e.name, e.version, e.request_id, e.at, e.latency_ms, e.rows,
              {**e.inputs, "y": np.array([1.0], np.float32)}, e.outputs)
        for e in entries(1, 3)
    ]  # fmt: skip
    write_file(spool, private, 1, items)
    services.predictions.ingest_spool()
    assert list(services.predictions.inputs(model, 1, window())) == ["y"]


def test_the_log_older_than_its_retention_is_dropped_and_its_blob_collected(
    services: Services, model: str
) -> None:
    spool_file(services, 1, entries(1, 3))
    services.predictions.ingest_spool()
    [logged] = services.predictions.predictions(ADMIN, model, window(), limit=1)
    retention = services.settings.prediction_log_retention
    assert services.predictions.cleanup(NOW + retention - timedelta(hours=1)) == 0
    assert services.predictions.cleanup(NOW + retention) == 1
    assert services.predictions.predictions(ADMIN, model, window()) == []
    assert services.registry.gc(grace_seconds=0).blobs_deleted == 1  # the Parquet file
    assert services.predictions.inputs(model, 1, window()) == {}
    assert logged.file_digest not in blob_digests(services)
