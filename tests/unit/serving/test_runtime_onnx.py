"""The ONNX runtime reads its signature from the graph; the tabular export's bare graph
computes what the tabular runtime does."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from modelhub.errors import InvalidInput, Unavailable
from modelhub.serving.runtimes import load_runtime
from modelhub.serving.runtimes.onnx_model import OnnxRuntime
from tests.unit.serving.builders import no_unpickling, texts


def save_graph(
    path: Path, nodes: list[object], inputs: list[object], outputs: list[object]
) -> Path:
    from onnx import helper, save_model

    graph = helper.make_graph(nodes, "test", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, str(path))
    return path


def test_the_export_matches_the_tabular_runtime(tabular_folder: Path, onnx_file: Path) -> None:
    with no_unpickling():
        exported = load_runtime(onnx_file)
    native = load_runtime(tabular_folder)
    x = np.random.default_rng(3).normal(5.0, 20.0, size=(6, 4)).astype(np.float32)
    for batch in (x, x[:1]):
        got = exported.infer({"input": batch}, {})
        want = native.infer({"input": batch}, {})
        assert set(got) == {"logits", "probabilities"}
        assert np.allclose(got["logits"], want["logits"], atol=1e-5)
        assert np.allclose(got["probabilities"], want["probabilities"], atol=1e-5)


def test_signature_info_of_the_export(onnx_file: Path) -> None:
    info = load_runtime(onnx_file).info
    assert info.runtime == "onnx"
    assert info.blocking is False
    assert info.memory_bytes == onnx_file.stat().st_size
    assert [(s.name, s.dtype, s.shape) for s in info.signature.inputs] == [
        ("input", "FP32", [-1, 4])
    ]
    assert [(s.name, s.dtype, s.shape) for s in info.signature.outputs] == [
        ("logits", "FP32", [-1, 3]),
        ("probabilities", "FP32", [-1, 3]),
    ]


def test_the_export_went_into_the_folder_asked(onnx_file: Path) -> None:
    assert onnx_file.name == "model.onnx" and onnx_file.parent.name == "exported"
    assert sorted(p.name for p in onnx_file.parent.iterdir()) == ["config.json", "model.onnx"]
    assert [p.name for p in onnx_file.parent.parent.iterdir()] == ["exported"]  # no staging left


def test_a_folder_with_one_graph_is_served(onnx_file: Path, tmp_path: Path) -> None:
    shutil.copy(onnx_file, tmp_path / "model.onnx")
    (tmp_path / "README.md").write_text("a model")
    runtime = load_runtime(tmp_path)
    assert runtime.info.runtime == "onnx"
    assert runtime.info.memory_bytes == onnx_file.stat().st_size + len("a model")
    assert runtime.infer({"input": np.zeros((1, 4), np.float32)}, {})["logits"].shape == (1, 3)


def test_a_folder_with_two_graphs_is_refused(onnx_file: Path, tmp_path: Path) -> None:
    shutil.copy(onnx_file, tmp_path / "a.onnx")
    shutil.copy(onnx_file, tmp_path / "b.onnx")
    with pytest.raises(InvalidInput, match=r"a\.onnx, b\.onnx"):
        load_runtime(tmp_path)


def test_symbolic_dims_and_text_and_integer_tensors(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    path = save_graph(
        tmp_path / "echo.onnx",
        [helper.make_node("Identity", ["words"], ["same"]), helper.make_node("Neg", ["n"], ["m"])],
        [
            helper.make_tensor_value_info("words", TensorProto.STRING, ["batch"]),
            helper.make_tensor_value_info("n", TensorProto.INT64, [None, 2]),
        ],
        [
            helper.make_tensor_value_info("same", TensorProto.STRING, ["batch"]),
            helper.make_tensor_value_info("m", TensorProto.INT64, [None, 2]),
        ],
    )
    runtime = load_runtime(path)
    signature = runtime.info.signature
    assert [(s.name, s.dtype, s.shape) for s in signature.inputs] == [
        ("words", "BYTES", [-1]),
        ("n", "INT64", [-1, 2]),
    ]
    out = runtime.infer({"words": texts("a", "b"), "n": np.array([[1, 2], [3, 4]])}, {})
    assert out["same"].tolist() == ["a", "b"]
    assert out["m"].tolist() == [[-1, -2], [-3, -4]]


def test_a_graph_with_a_non_tensor_output_is_refused(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    path = save_graph(
        tmp_path / "seq.onnx",
        [helper.make_node("SequenceConstruct", ["x"], ["s"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, [2])],
    )
    with pytest.raises(InvalidInput, match="cannot carry") as caught:
        load_runtime(path)
    assert caught.value.details["output"] == "s"


def test_a_damaged_graph_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(InvalidInput, match=r"broken\.onnx"):
        load_runtime(tmp_path / "broken.onnx")


def test_inputs_onnx_runtime_refuses_are_invalid(onnx_file: Path) -> None:
    runtime = load_runtime(onnx_file)
    for inputs in ({}, {"input": np.zeros((1, 5), np.float32)}, {"input": np.zeros((1, 4))}):
        with pytest.raises(InvalidInput):
            runtime.infer(inputs, {})


def test_large_graphs_run_off_the_event_loop(onnx_file: Path) -> None:
    size = onnx_file.stat().st_size
    assert load_runtime(onnx_file).info.blocking is False  # a small graph runs inline
    assert OnnxRuntime(onnx_file, blocking_bytes=size).info.blocking is True
    assert OnnxRuntime(onnx_file, blocking_bytes=size + 1).info.blocking is False


def test_an_unloaded_runtime_says_so(onnx_file: Path) -> None:
    runtime = load_runtime(onnx_file)
    runtime.unload()
    with pytest.raises(Unavailable):
        runtime.infer({"input": np.zeros((1, 4), np.float32)}, {})
