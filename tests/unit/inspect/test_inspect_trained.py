from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelhub.domain.enums import Framework
from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model
from modelhub.samples import write_mlp_safetensors


def test_a_modelhub_trainer_folder_is_described_by_its_trainer(tmp_path: Path) -> None:
    write_mlp_safetensors(tmp_path / "model.safetensors")
    config = {"trainer": "tabular_classifier", "classes": ["a", "b"], "hidden": [32], "mean": [0]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    found = inspect_model(tmp_path)
    assert found.framework == Framework.SAFETENSORS
    assert found.architecture == "tabular_classifier" and found.parameters == 676
    assert found.details == {
        "format": "modelhub",
        "trainer": "tabular_classifier",
        "classes": ["a", "b"],
        "hidden": [32],
    }


def test_a_trainer_folder_without_weights_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"trainer": "char_lm"}))
    with pytest.raises(InvalidInput, match=r"holds no model\.safetensors"):
        inspect_model(tmp_path)
