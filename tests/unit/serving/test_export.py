"""`export_onnx` turns each built-in trainer's output into an ONNX folder that
`load_runtime` serves with the source's runtime name, signature and outputs; the
export is checked against the source, and bad input leaves nothing behind."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from modelhub.errors import IntegrityError, InvalidInput
from modelhub.serving.export import compare_outputs, export_onnx
from modelhub.serving.runtimes import load_runtime
from tests.unit.serving.builders import (
    no_unpickling,
    texts,
    write_tabular,
    write_text_classifier,
)


@pytest.fixture(scope="module")
def text_classifier(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A text classifier over MiniLM and its export (the export takes a few seconds)."""
    root = tmp_path_factory.mktemp("text")
    prototypes = np.eye(2, 384, dtype=np.float32)
    source = write_text_classifier(root / "source", prototypes, ["greeting", "farewell"])
    return source, export_onnx(source, root / "exported")


@pytest.fixture(scope="module")
def char_lm_onnx(char_lm_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(char_lm_folder, tmp_path_factory.mktemp("char") / "exported")


def served_alike(source: Path, exported: Path) -> tuple[object, object]:
    """Both runtimes, after checking they present the same face to a client."""
    with no_unpickling():
        theirs, ours = load_runtime(source), load_runtime(exported)
    assert ours.info.runtime == theirs.info.runtime
    assert ours.info.signature == theirs.info.signature
    assert ours.info.parameters == theirs.info.parameters
    assert ours.info.details["format"] == "onnx"
    return theirs, ours


def test_a_tabular_export_serves_what_its_source_serves(
    tabular_folder: Path, tabular_onnx: Path
) -> None:
    assert sorted(p.name for p in tabular_onnx.iterdir()) == ["config.json", "model.onnx"]
    config = json.loads((tabular_onnx / "config.json").read_text())
    source_config = json.loads((tabular_folder / "config.json").read_text())
    assert config == {**source_config, "format": "onnx", "onnx_file": "model.onnx"}
    theirs, ours = served_alike(tabular_folder, tabular_onnx)
    x = np.random.default_rng(3).normal(5.0, 20.0, size=(7, 4)).astype(np.float32)
    for batch in (x, x[:1], x[:0]):
        want = theirs.infer({"input": batch}, {})  # type: ignore[attr-defined]
        got = ours.infer({"input": batch}, {})  # type: ignore[attr-defined]
        assert set(got) == set(want) == {"logits", "probabilities", "label"}
        np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-5)
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-6)
        assert got["label"].tolist() == want["label"].tolist()
    with pytest.raises(InvalidInput, match=r"\[rows, 4\]"):
        ours.infer({"input": np.zeros((2, 5), np.float32)}, {})  # type: ignore[attr-defined]
    assert compare_outputs(tabular_folder, tabular_onnx) < 1e-5


def test_a_text_classifier_export_tokenizes_and_classifies_as_the_source(
    text_classifier: tuple[Path, Path],
) -> None:
    source, exported = text_classifier
    files = sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*"))
    assert files == ["config.json", "model.onnx", "tokenizer", "tokenizer/tokenizer.json"]
    theirs, ours = served_alike(source, exported)
    # padding in a batch, odd spacing, non-ASCII, the empty text, truncation at 256 tokens
    rows = texts("hello there", "  goodbye  ", "", "東京 café", "word " * 300)
    want = theirs.infer({"text": rows}, {})  # type: ignore[attr-defined]
    got = ours.infer({"text": rows}, {})  # type: ignore[attr-defined]
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-5)
    assert got["label"].tolist() == want["label"].tolist()
    assert ours.infer({"text": texts()}, {})["probabilities"].shape == (0, 2)  # type: ignore[attr-defined]
    with pytest.raises(InvalidInput, match="not a string"):
        ours.infer({"text": np.array([1, 2], dtype=object)}, {})  # type: ignore[attr-defined]


def test_a_char_lm_export_generates_the_source_text(
    char_lm_folder: Path, char_lm_onnx: Path
) -> None:
    theirs, ours = served_alike(char_lm_folder, char_lm_onnx)
    prompts = texts("abc", "", "h" * 40)  # the last is longer than the 16-character window
    for parameters in (
        {"max_tokens": 24, "temperature": 0},
        {"max_tokens": 24, "seed": 7},
        {"max_tokens": 24, "seed": 7, "top_k": 3, "temperature": 0.7},
    ):
        want = theirs.infer({"text": prompts}, parameters)  # type: ignore[attr-defined]
        got = ours.infer({"text": prompts}, parameters)  # type: ignore[attr-defined]
        assert got["text"].tolist() == want["text"].tolist()
    with pytest.raises(InvalidInput, match="max_tokens"):
        ours.infer({"text": prompts}, {"max_tokens": 0})  # type: ignore[attr-defined]
    assert compare_outputs(char_lm_folder, char_lm_onnx) < 1e-5


def test_a_quantised_graph_in_the_folder_is_served_and_compared(
    tabular_folder: Path, tabular_onnx: Path, tmp_path: Path
) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = shutil.copytree(tabular_onnx, tmp_path / "int8")
    quantize_dynamic(
        tabular_onnx / "model.onnx", folder / "model.onnx", weight_type=QuantType.QInt8
    )
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "quantization": "int8-dynamic"}))
    _, ours = served_alike(tabular_folder, folder)
    assert ours.info.details["quantization"] == "int8-dynamic"  # type: ignore[attr-defined]
    x = np.random.default_rng(4).normal(5.0, 20.0, size=(5, 4)).astype(np.float32)
    got = ours.infer({"input": x}, {})  # type: ignore[attr-defined]
    assert got["probabilities"].shape == (5, 3)
    difference = compare_outputs(tabular_folder, folder)
    assert 0.0 < difference < 0.5  # int8 weights move the outputs, a little


def test_an_fp16_graph_with_fp16_inputs_is_served_as_fp32(
    tabular_folder: Path, tabular_onnx: Path, tmp_path: Path
) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    folder = shutil.copytree(tabular_onnx, tmp_path / "fp16")
    graph = convert_float_to_float16(onnx.load(folder / "model.onnx"), keep_io_types=False)
    onnx.save(graph, folder / "model.onnx")
    _, ours = served_alike(tabular_folder, folder)
    x = np.random.default_rng(4).normal(5.0, 20.0, size=(5, 4)).astype(np.float32)
    got = ours.infer({"input": x}, {})  # type: ignore[attr-defined]
    assert got["logits"].dtype == got["probabilities"].dtype == np.float32
    assert 0.0 < compare_outputs(tabular_folder, folder) < 1e-2


def test_a_graph_of_another_model_fails_the_comparison(tabular_onnx: Path, tmp_path: Path) -> None:
    other = write_tabular(tmp_path / "other", seed=1)
    assert compare_outputs(other, tabular_onnx) > 1e-2


def test_an_export_beyond_tolerance_is_refused_and_removed(
    char_lm_folder: Path, tmp_path: Path
) -> None:
    target = tmp_path / "new" / "parents" / "out"
    with pytest.raises(IntegrityError, match="differs from the source") as caught:
        export_onnx(char_lm_folder, target, tolerance=0.0)  # fp32 kernels differ by ~1e-8
    assert caught.value.details["max_abs_diff"] > 0.0
    assert list(tmp_path.iterdir()) == []  # neither the staging folder nor the parents made
    with pytest.raises(InvalidInput, match="tolerance"):
        export_onnx(char_lm_folder, target, tolerance=-1.0)


def test_an_empty_target_folder_is_used(tabular_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    assert export_onnx(tabular_folder, tmp_path / "out") == tmp_path / "out"
    assert (tmp_path / "out" / "model.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def make_script_output(folder: Path) -> None:
    (folder / "config.json").write_text(json.dumps({"trainer": "script"}))
    (folder / "model.safetensors").write_bytes(b"")


def make_pickle_only(folder: Path) -> None:
    (folder / "model.pt").write_bytes(pickle.dumps({"weights": [1.0]}))


def make_weights_only(folder: Path) -> None:
    from modelhub.samples import write_mlp_safetensors

    write_mlp_safetensors(folder / "mlp.safetensors")


def make_hugging_face(folder: Path) -> None:
    (folder / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (make_script_output, "holds a 'script' model"),
        (make_pickle_only, "no config.json"),
        (make_weights_only, "no config.json"),
        (make_hugging_face, "no modelhub trainer output"),
    ],
)
def test_what_cannot_be_exported_is_named(make: object, said: str, tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    make(source)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match="ONNX export covers tabular_classifier") as caught:
        export_onnx(source, tmp_path / "out")
    assert said in caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]


def test_a_non_empty_target_or_an_export_is_refused(
    tabular_folder: Path, tabular_onnx: Path, tmp_path: Path
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInput, match="not empty"):
        export_onnx(tabular_folder, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInput, match="not a folder"):
        export_onnx(tabular_folder, tmp_path / "file")
    with pytest.raises(InvalidInput, match="already holds an ONNX export"):
        export_onnx(tabular_onnx, tmp_path / "again")
    with pytest.raises(InvalidInput, match="no model folder"):
        export_onnx(tmp_path / "missing", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "full"]


def test_the_export_is_inspected_as_onnx_and_needs_no_trust(tabular_onnx: Path) -> None:
    from modelhub.inspect import inspect_model

    inspection = inspect_model(tabular_onnx)
    assert inspection.framework.value == "onnx"
    assert inspection.architecture == "tabular_classifier"
    assert inspection.requires_trust is False
    assert inspection.parameters == 4 * 8 + 8 + 8 * 3 + 3
    assert inspection.details["format"] == "onnx"
    assert inspection.details["graph_signature"]["inputs"][0]["name"] == "input"


def test_a_damaged_onnx_folder_is_refused_by_name(tabular_onnx: Path, tmp_path: Path) -> None:
    from modelhub.inspect import inspect_model

    folder = shutil.copytree(tabular_onnx, tmp_path / "copy")
    config = json.loads((folder / "config.json").read_text())
    for change, said in (
        ({"onnx_file": "../model.onnx"}, "onnx_file"),
        ({"onnx_file": "gone.onnx"}, "gone.onnx"),
        ({"format": "tflite"}, "tflite"),
    ):
        (folder / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(InvalidInput, match=said):
            load_runtime(folder)
        with pytest.raises(InvalidInput):
            inspect_model(folder)
