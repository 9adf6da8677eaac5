"""The tabular runtime answers like the trainer's own predictor, for a batch and one row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelhub.errors import InvalidInput, Unavailable
from modelhub.serving.codec import decode_request, encode_response
from modelhub.serving.runtimes import load_runtime
from modelhub.training.trainers import tabular
from tests.unit.serving.builders import FEATURES, no_unpickling


def rows(count: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mean, scale = np.array([10.0, -3.0, 0.5, 100.0]), np.array([2.0, 0.5, 1.0, 25.0])
    return (mean + scale * rng.standard_normal((count, len(FEATURES)))).astype(np.float32)


def test_signature_and_info(tabular_folder: Path) -> None:
    with no_unpickling():
        runtime = load_runtime(tabular_folder)
    info = runtime.info
    assert info.runtime == "tabular_classifier"
    assert info.blocking is False
    assert info.parameters == ()
    assert [(s.name, s.dtype, s.shape) for s in info.signature.inputs] == [
        ("input", "FP32", [-1, 4])
    ]
    assert [(s.name, s.dtype, s.shape) for s in info.signature.outputs] == [
        ("logits", "FP32", [-1, 3]),
        ("probabilities", "FP32", [-1, 3]),
        ("label", "BYTES", [-1]),
    ]
    # 4*8 + 8 + 8*3 + 3 float32 parameters
    assert info.memory_bytes == (32 + 8 + 24 + 3) * 4
    assert info.details["classes"] == ["cat", "dog", "7"]  # labels travel as strings


@pytest.mark.parametrize("count", [5, 1])
def test_outputs_match_the_trainers_predictor(tabular_folder: Path, count: int) -> None:
    runtime = load_runtime(tabular_folder)
    x = rows(count)
    out = runtime.infer({"input": x}, {})
    predictor = tabular.load(tabular_folder)
    as_dicts = [dict(zip(FEATURES, row, strict=True)) for row in x.tolist()]
    expected = np.array(predictor.predict_proba(as_dicts), dtype=np.float32)
    assert out["logits"].shape == (count, 3) and out["logits"].dtype == np.float32
    assert np.allclose(out["probabilities"], expected, atol=1e-5)
    assert out["label"].dtype == object
    assert out["label"].tolist() == [str(label) for label in predictor.predict(as_dicts)]
    assert np.allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-6)


def test_a_batch_gives_each_row_what_it_gets_alone(tabular_folder: Path) -> None:
    runtime = load_runtime(tabular_folder)
    x = rows(4)
    batch = runtime.infer({"input": x}, {})["logits"]
    alone = np.concatenate([runtime.infer({"input": x[i : i + 1]}, {})["logits"] for i in range(4)])
    assert np.allclose(batch, alone, atol=1e-6)


def test_any_array_layout_is_accepted(tabular_folder: Path) -> None:
    runtime = load_runtime(tabular_folder)
    x = rows(3)
    expected = runtime.infer({"input": x}, {})["logits"]
    read_only = x.copy()
    read_only.flags.writeable = False
    for variant in (read_only, np.asfortranarray(x), x.astype(np.float64), x[::-1][::-1]):
        assert np.allclose(runtime.infer({"input": variant}, {})["logits"], expected)


def test_zero_rows_give_zero_rows(tabular_folder: Path) -> None:
    out = load_runtime(tabular_folder).infer({"input": np.zeros((0, 4), np.float32)}, {})
    assert out["logits"].shape == (0, 3) and out["label"].shape == (0,)


def test_wrong_input_is_invalid(tabular_folder: Path) -> None:
    runtime = load_runtime(tabular_folder)
    for inputs in ({}, {"input": np.zeros((2, 5), np.float32)}, {"input": np.zeros(4)}):
        with pytest.raises(InvalidInput) as caught:
            runtime.infer(inputs, {})
        assert caught.value.details["field"] == "input"


def test_an_unloaded_runtime_says_so(tabular_folder: Path) -> None:
    runtime = load_runtime(tabular_folder)
    runtime.unload()
    with pytest.raises(Unavailable):
        runtime.infer({"input": rows(1)}, {})


def test_a_request_goes_through_codec_and_runtime(tabular_folder: Path) -> None:
    runtime = load_runtime(tabular_folder)
    x = rows(2)
    raw = json.dumps(
        {
            "id": "q",
            "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": x.tolist()}],
            "outputs": [{"name": "label"}],
        }
    ).encode()
    request = decode_request(raw, runtime.info.signature, runtime.info.parameters)
    outputs = runtime.infer(request.inputs, request.parameters)
    response = json.loads(encode_response("pets", "1", request.id, outputs, request.outputs))
    assert response["id"] == "q"
    assert response["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [2], "data": outputs["label"].tolist()}
    ]
