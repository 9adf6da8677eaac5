"""Sentence embeddings from the shipped MiniLM, and a text classifier's head over them.

MiniLM loads once for the folder (the `embeddings_runtime` fixture); the classifier
loads it once more, here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from modelhub.errors import InvalidInput
from modelhub.serving.runtimes import Runtime, load_runtime
from tests.unit.serving.builders import no_unpickling, texts, write_text_classifier

CLASSES = ["greeting", "farewell"]


def test_embeddings_signature_and_info(embeddings_runtime: Runtime) -> None:
    info = embeddings_runtime.info
    assert info.runtime == "sentence_embeddings"
    assert info.blocking is True
    assert [(s.name, s.dtype, s.shape) for s in info.signature.inputs] == [("text", "BYTES", [-1])]
    assert [(s.name, s.dtype, s.shape) for s in info.signature.outputs] == [
        ("embedding", "FP32", [-1, 384])
    ]
    assert 80e6 < info.memory_bytes < 100e6  # 22.7M float32 parameters


def test_embeddings_for_a_batch_and_one_row(embeddings_runtime: Runtime) -> None:
    batch = embeddings_runtime.infer({"text": texts("hello there", "the stock fell")}, {})
    one = embeddings_runtime.infer({"text": texts("hello there")}, {})
    vectors = batch["embedding"]
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # MiniLM normalises
    assert np.allclose(one["embedding"][0], vectors[0], atol=1e-5)
    similar = embeddings_runtime.infer({"text": texts("hi there")}, {})["embedding"][0]
    assert similar @ vectors[0] > similar @ vectors[1]


def test_embeddings_of_no_text(embeddings_runtime: Runtime) -> None:
    assert embeddings_runtime.infer({"text": texts()}, {})["embedding"].shape == (0, 384)


@pytest.fixture(scope="module")
def classifier(
    embeddings_runtime: Runtime, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Runtime, np.ndarray]:
    prototypes = embeddings_runtime.infer({"text": texts("hello, nice to meet you", "goodbye")}, {})
    weight = prototypes["embedding"]
    folder = write_text_classifier(tmp_path_factory.mktemp("classifier"), weight, CLASSES)
    with no_unpickling():
        return load_runtime(folder), weight


def test_classifier_signature(classifier: tuple[Runtime, np.ndarray]) -> None:
    info = classifier[0].info
    assert info.runtime == "text_classification"
    assert info.blocking is True
    assert [(s.name, s.dtype, s.shape) for s in info.signature.outputs] == [
        ("probabilities", "FP32", [-1, 2]),
        ("label", "BYTES", [-1]),
    ]
    assert info.details["classes"] == CLASSES


def test_classifier_for_a_batch_and_one_row(
    classifier: tuple[Runtime, np.ndarray], embeddings_runtime: Runtime
) -> None:
    runtime, weight = classifier
    sentences = texts("hi, how are you", "see you tomorrow, bye", "hello friend")
    out = runtime.infer({"text": sentences}, {})
    assert out["label"].tolist() == ["greeting", "farewell", "greeting"]
    assert out["probabilities"].shape == (3, 2) and out["probabilities"].dtype == np.float32
    embedded = embeddings_runtime.infer({"text": sentences}, {})["embedding"]
    logits = embedded @ (weight * 10.0).T
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert np.allclose(out["probabilities"], expected, atol=1e-5)
    one = runtime.infer({"text": sentences[:1]}, {})
    assert one["label"].tolist() == ["greeting"]
    assert np.allclose(one["probabilities"], out["probabilities"][:1], atol=1e-5)
    empty = runtime.infer({"text": texts()}, {})
    assert empty["probabilities"].shape == (0, 2) and empty["label"].shape == (0,)


def test_a_modules_json_naming_foreign_code_is_refused(minilm: Path, tmp_path: Path) -> None:
    folder = tmp_path / "encoder"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(minilm / name, folder / name)
    (folder / "model.safetensors").symlink_to(minilm / "model.safetensors")
    modules = [{"idx": 0, "name": "0", "path": "", "type": "os.system"}]
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(InvalidInput, match=r"os\.system"):
        load_runtime(folder)
