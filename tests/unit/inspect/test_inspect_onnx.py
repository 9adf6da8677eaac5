from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.enums import Framework, Precision
from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model
from tests.unit.inspect.builders import conv_onnx_model, mlp_onnx_model, save_onnx


def test_mlp_signature_parameters_and_opsets(tmp_path: Path) -> None:
    ins = inspect_model(save_onnx(tmp_path / "mlp.onnx", mlp_onnx_model()))
    assert ins.framework is Framework.ONNX
    assert ins.parameters == 4 * 8 + 8 + 8 * 2 + 2
    assert ins.tensor_count == 4
    assert ins.precision is Precision.FP32
    assert ins.architecture == "mlp"
    [x] = ins.signature.inputs
    [y] = ins.signature.outputs
    assert (x.name, x.dtype, x.shape) == ("X", "float32", ["batch", 4])
    assert (y.name, y.dtype, y.shape) == ("Y", "float32", ["batch", 2])
    assert ins.details["opsets"] == {"ai.onnx": 17}
    assert ins.details["producer"] == "modelhub-tests"
    assert ins.details["op_types"] == {"Gemm": 2, "Relu": 1}


def test_conv_is_cnn(tmp_path: Path) -> None:
    ins = inspect_model(save_onnx(tmp_path / "cnn.onnx", conv_onnx_model()))
    assert ins.architecture == "cnn"
    assert ins.parameters == 27


def test_detected_by_content_without_extension(tmp_path: Path) -> None:
    ins = inspect_model(save_onnx(tmp_path / "model", mlp_onnx_model()))
    assert ins.framework is Framework.ONNX


def test_text_file_named_onnx(tmp_path: Path) -> None:
    path = tmp_path / "weights.onnx"
    path.write_text("this is just some text, not a model\n")
    with pytest.raises(InvalidInput, match=r"^weights\.onnx is not a valid ONNX model: "):
        inspect_model(path)


def test_checker_failure(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["X"], ["Y"])],
        "bad",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = save_onnx(tmp_path / "bad.onnx", model)
    with pytest.raises(InvalidInput, match="checker failed"):
        inspect_model(path)
