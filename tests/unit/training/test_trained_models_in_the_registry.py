"""A trained model goes into the registry, comes back out, and predicts the same."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from modelhub.domain.records import Lineage
from modelhub.services import build_services
from modelhub.services.registry import RegisterRequest
from modelhub.settings import Settings
from modelhub.training.context import LocalContext
from modelhub.training.trainers import trainer_module
from tests.unit.training.test_tabular import blobs


def test_tabular_model_round_trips_through_the_registry(tmp_path: Path) -> None:
    data = blobs(tmp_path / "blobs.csv")
    ctx = LocalContext(
        run_dir=tmp_path / "run", hyperparameters={"epochs": 3}, datasets={"blobs": data}, seed=1
    )
    tabular = trainer_module("tabular_classifier")
    result = tabular.train(ctx)

    services = build_services(Settings(home=tmp_path / "home"))
    try:
        version = services.registry.register(
            RegisterRequest(
                name="persona-tabular",
                type="classification",
                lineage=Lineage(source_run="run-1", datasets=["blobs"]),
                metrics=result.metrics,
            ),
            result.output_dir,
            "trainer",
        )
        assert (version.framework.value, version.architecture) == (
            "safetensors",
            "tabular_classifier",
        )
        assert (
            version.inspection["classes"]
            == json.loads((result.output_dir / "config.json").read_text())["classes"]
        )
        _, files = services.registry.download("persona-tabular@latest", tmp_path / "served")
        assert {f.name for f in files} == {"model.safetensors", "config.json"}
    finally:
        services.close()

    with open(data, newline="") as handle:
        rows = [
            {k: float(v) for k, v in row.items() if k != "label"}
            for row in list(csv.DictReader(handle))[:50]
        ]
    trained = tabular.load(result.output_dir)
    served = tabular.load(tmp_path / "served")
    assert served.predict(rows) == trained.predict(rows)
    assert served.predict_proba(rows) == trained.predict_proba(rows)
