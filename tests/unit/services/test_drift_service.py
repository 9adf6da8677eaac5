"""DriftService over real stores: references from files and training data, checks, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from modelhub.domain.auth import Caller, Role
from modelhub.domain.drift import DriftTest, ReferenceStatus
from modelhub.domain.monitoring import Window
from modelhub.domain.records import Lineage, ModelVersion
from modelhub.errors import InvalidInput, NotFound, PermissionDenied
from modelhub.services import Services
from modelhub.services.registry import RegisterRequest
from tests.stores import Stores

ADMIN = Caller(name="alice", role=Role.ADMIN)
VIEWER = Caller(name="victor", role=Role.VIEWER)
FEATURES = ["a", "b", "c"]


def tabular_folder(folder: Path) -> Path:
    """What the tabular trainer writes: its features and label in config.json."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    save_file(
        {"0.weight": rng.standard_normal((4, 3)).astype(np.float32)},
        str(folder / "model.safetensors"),
    )
    config = {
        "trainer": "tabular_classifier",
        "features": FEATURES,
        "label": "y",
        "classes": [0, 1],
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def register(services: Services, tmp_path: Path, lineage: Lineage | None = None) -> ModelVersion:
    request = RegisterRequest(name="churn", type="classification", lineage=lineage)
    source = tabular_folder(tmp_path / f"model-{len(list(tmp_path.iterdir()))}")
    return services.registry.register(request, source, actor="alice")


def write_csv(path: Path, columns: dict[str, np.ndarray]) -> Path:
    names = list(columns)
    lines = [",".join(names)]
    lines += [
        ",".join(f"{columns[n][i]:.5g}" for n in names) for i in range(len(columns[names[0]]))
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def data(rng: np.random.Generator, rows: int, shift: float = 0.0) -> dict[str, np.ndarray]:
    return {
        "a": rng.normal(size=rows),
        "b": rng.normal(loc=shift, size=rows),
        "c": rng.exponential(size=rows),
        "y": rng.integers(0, 2, size=rows).astype(float),
    }


def test_a_reference_from_a_file_then_compare_names_the_shifted_feature(
    services: Services, tmp_path: Path, stores: Stores
) -> None:
    register(services, tmp_path)
    rng = np.random.default_rng(1)
    reference = services.drift.set_reference(
        ADMIN, "churn", 1, write_csv(tmp_path / "eval.csv", data(rng, 800))
    )
    assert reference.status is ReferenceStatus.READY and reference.source == "eval.csv"
    assert (reference.rows, reference.columns) == (800, ["a", "b", "c", "output.label"])
    assert reference.digest is not None and stores.artifacts.exists(reference.digest)
    assert services.drift.reference(VIEWER, "churn", 1) == reference

    quiet = services.drift.compare_file(
        VIEWER, "churn", 1, write_csv(tmp_path / "q.csv", data(rng, 400))
    )
    assert not quiet.drifted and {v.feature for v in quiet.features} == set(reference.columns)
    moved = services.drift.compare_file(
        VIEWER, "churn", 1, write_csv(tmp_path / "m.csv", data(rng, 400, shift=0.6))
    )
    assert moved.drifted_features == ["b"]
    b = next(v for v in moved.features if v.feature == "b")
    assert (
        b.test is DriftTest.KS
        and b.adjusted_p_value is not None
        and b.adjusted_p_value < b.threshold
    )
    label = next(v for v in moved.features if v.feature == "output.label")
    assert label.role == "output" and label.test is DriftTest.CHI2


def test_columns_that_do_not_match_the_signature_store_nothing(
    services: Services, tmp_path: Path, stores: Stores
) -> None:
    register(services, tmp_path)
    rng = np.random.default_rng(2)
    columns = data(rng, 100)
    del columns["c"]
    columns["d"] = rng.normal(size=100)
    blobs_before = {b.digest for b in stores.artifacts.list_blobs()}
    with pytest.raises(InvalidInput, match="missing c; unexpected d") as raised:
        services.drift.set_reference(ADMIN, "churn", 1, write_csv(tmp_path / "bad.csv", columns))
    assert raised.value.details["missing"] == ["c"] and raised.value.details["unexpected"] == ["d"]
    with pytest.raises(NotFound, match="has no drift reference"):
        services.drift.reference(ADMIN, "churn", 1)
    assert {b.digest for b in stores.artifacts.list_blobs()} == blobs_before


def test_writing_a_reference_needs_the_right_to_update_the_model(
    services: Services, tmp_path: Path
) -> None:
    register(services, tmp_path)
    path = write_csv(tmp_path / "eval.csv", data(np.random.default_rng(3), 50))
    with pytest.raises(PermissionDenied):
        services.drift.set_reference(VIEWER, "churn", 1, path)
    # Developers set references only on models they own, as they update them.
    with pytest.raises(PermissionDenied, match="own"):
        services.drift.set_reference(Caller(name="dora", role=Role.DEVELOPER), "churn", 1, path)
    assert services.drift.set_reference(Caller(name="alice", role=Role.DEVELOPER), "churn", 1, path)
    with pytest.raises(NotFound, match="churn@9"):
        services.drift.set_reference(ADMIN, "churn", 9, path)


class Window24h:
    """The prediction log's answer for one window, from data this test made."""

    def __init__(self, inputs: np.ndarray, labels: np.ndarray) -> None:
        self.inputs_ = inputs
        self.labels = labels
        self.asked: list[tuple[str, int, Window]] = []

    def inputs(self, model: str, version: int, window: Window) -> dict[str, np.ndarray]:
        self.asked.append((model, version, window))
        return {"input": self.inputs_}

    def outputs(self, model: str, version: int, window: Window) -> dict[str, np.ndarray]:
        return {"label": self.labels}


def test_check_reads_the_window_through_the_prediction_log(
    services: Services, tmp_path: Path
) -> None:
    register(services, tmp_path)
    rng = np.random.default_rng(4)
    services.drift.set_reference(
        ADMIN, "churn", 1, write_csv(tmp_path / "eval.csv", data(rng, 800))
    )
    # The real prediction log is wired (build_services): without logged traffic every
    # feature is skipped for want of live values, and nothing is called drifted.
    quiet = services.drift.drift(VIEWER, "churn", 1, "1h")
    assert (quiet.live_rows, quiet.drifted, quiet.features) == (0, False, [])
    assert set(quiet.skipped.values()) == {"no live values"}

    live = data(rng, 300, shift=0.6)
    log = Window24h(np.stack([live[f] for f in FEATURES], axis=1), live["y"].astype(int))
    services.drift.live = log
    report = services.drift.drift(VIEWER, "churn", 1, "24h")
    assert report.drifted_features == ["b"] and report.live_rows == 300
    ((model, version, window),) = log.asked
    assert (model, version) == ("churn", 1) and window.seconds == 24 * 3600
    assert report.window_end is not None and report.window_end - datetime.now(UTC) < timedelta(
        seconds=5
    )
    with pytest.raises(InvalidInput, match="since"):
        services.drift.drift(VIEWER, "churn", 1, "yesterday")


def test_a_trained_version_gets_its_reference_from_its_dataset(
    services: Services, tmp_path: Path
) -> None:
    columns = data(np.random.default_rng(5), 300)
    dataset = services.datasets.register(ADMIN, write_csv(tmp_path / "train.csv", columns), "train")
    version = register(services, tmp_path, Lineage(dataset_versions=[f"train@{dataset.version}"]))
    made = services.drift.profile_trained(version, "alice")
    assert made is not None and made.status is ReferenceStatus.READY
    assert made.source == "train@1" and made.columns == ["a", "b", "c", "output.label"]


def test_a_failure_to_profile_is_recorded_not_raised(services: Services, tmp_path: Path) -> None:
    columns = data(np.random.default_rng(6), 100)
    del columns["b"]
    dataset = services.datasets.register(ADMIN, write_csv(tmp_path / "train.csv", columns), "train")
    version = register(services, tmp_path, Lineage(dataset_versions=[f"train@{dataset.version}"]))
    failed = services.drift.profile_trained(version, "alice")
    assert failed is not None and failed.status is ReferenceStatus.FAILED
    assert failed.error is not None and "missing b" in failed.error
    with pytest.raises(NotFound, match="no usable drift reference"):
        services.drift.compare(version.name, version.version, {"a": np.zeros(50)})
