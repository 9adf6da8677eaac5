"""Reading MLflow model directories: what is kept, and every bad directory refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelhub.domain.enums import Framework
from modelhub.errors import InvalidInput
from modelhub.interop.mlflow_import import read_mlflow
from tests.unit.interop.layouts import MLMODEL_ONNX, write_mlflow_onnx


def test_an_onnx_flavor_keeps_its_metadata(tmp_path: Path) -> None:
    plan = read_mlflow(write_mlflow_onnx(tmp_path / "model"))
    assert [name for name, _ in plan.files] == ["model.onnx"]
    assert plan.framework is Framework.ONNX
    assert plan.license == "mit"
    assert plan.signature is not None
    assert plan.signature.inputs[0].dtype == "float32"
    assert plan.signature.inputs[0].shape == [-1, 4]
    assert plan.details["run_id"] == "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    assert plan.details["mlflow_version"] == "2.19.0"
    assert plan.details["requirements"] == ["mlflow==2.19.0", "onnx==1.17.0"]
    assert plan.details["flavors"] == ["onnx", "python_function"]


def test_requirements_come_from_conda_yaml_without_requirements_txt(tmp_path: Path) -> None:
    folder = write_mlflow_onnx(tmp_path / "model")
    (folder / "requirements.txt").unlink()
    assert read_mlflow(folder).details["requirements"] == [
        "python=3.11.7",
        "pip",
        "mlflow==2.19.0",
        "onnx==1.17.0",
    ]


def test_column_signatures_become_typed_inputs(tmp_path: Path) -> None:
    columns = (
        '[{"type": "double", "name": "age", "required": true},'
        ' {"type": "string", "name": "city", "required": true}]'
    )
    tensor = """'[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'"""
    mlmodel = MLMODEL_ONNX.replace(f"  inputs: {tensor}", f"  inputs: '{columns}'")
    plan = read_mlflow(write_mlflow_onnx(tmp_path / "model", mlmodel))
    assert plan.signature is not None
    assert [(s.name, s.dtype) for s in plan.signature.inputs] == [
        ("age", "float64"),
        ("city", "string"),
    ]


def test_a_transformers_flavor_is_laid_out_as_one_folder(tmp_path: Path) -> None:
    from tests.unit.interop.layouts import write_huggingface

    folder = tmp_path / "model"
    write_huggingface(folder / "model")
    (folder / "model" / "README.md").unlink()
    tokenizer = folder / "components" / "tokenizer"
    tokenizer.mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (folder / "model" / name).rename(tokenizer / name)
    (folder / "MLmodel").write_text(
        "flavors:\n  transformers:\n    components:\n    - tokenizer\n    framework: pt\n"
        "    model_binary: model\n    task: text-classification\n"
        "    transformers_version: 4.44.0\n  python_function:\n"
        "    loader_module: mlflow.transformers\nmlflow_version: 2.19.0\n"
    )
    plan = read_mlflow(folder)
    assert sorted(name for name, _ in plan.files) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
    ]
    assert plan.framework is Framework.HUGGINGFACE
    assert plan.model_type == "classification"
    assert plan.details["transformers"]["task"] == "text-classification"


def refusal(folder: Path) -> str:
    with pytest.raises(InvalidInput) as caught:
        read_mlflow(folder)
    return caught.value.message


def test_a_folder_without_mlmodel_is_refused(tmp_path: Path) -> None:
    folder = write_mlflow_onnx(tmp_path / "model")
    (folder / "MLmodel").unlink()
    assert "has no MLmodel file" in refusal(folder)


def test_an_unknown_flavor_is_named_with_the_supported_ones(tmp_path: Path) -> None:
    folder = write_mlflow_onnx(tmp_path / "model")
    (folder / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n  python_function:\n"
        "    loader_module: mlflow.sklearn\n"
    )
    message = refusal(folder)
    assert "flavor sklearn" in message
    assert "onnx, transformers, pytorch, python_function" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flavors: [unclosed", "is not valid YAML"),
        ("- just\n- a list\n", "is not a YAML mapping"),
        ("flavors:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 40)) + "  " * 40 + "v: 1\n",
         "nests deeper than"),
        ("a: &x [1, 2]\nb: *x\n", "uses a YAML alias"),
        ("flavors: {}\n", "names no flavors"),
    ],
)  # fmt: skip
def test_malformed_mlmodel_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    folder = write_mlflow_onnx(tmp_path / "model")
    (folder / "MLmodel").write_text(text)
    assert expected in refusal(folder)


def test_a_huge_mlmodel_is_refused_unread(tmp_path: Path) -> None:
    folder = write_mlflow_onnx(tmp_path / "model")
    (folder / "MLmodel").write_text("x: '" + "a" * (2 * 1024 * 1024) + "'\n")
    assert "bytes, more than" in refusal(folder)


@pytest.mark.parametrize("data", ["../../etc/passwd", "/etc/passwd", "sub/../../x.onnx"])
def test_a_data_path_leading_out_is_refused(tmp_path: Path, data: str) -> None:
    folder = write_mlflow_onnx(tmp_path / "model")
    (folder / "MLmodel").write_text(MLMODEL_ONNX.replace("data: model.onnx", f"data: {data}"))
    assert "inside the model folder" in refusal(folder) or "outside" in refusal(folder)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = write_mlflow_onnx(tmp_path / "model")
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(b"not yours")
    (folder / "model.onnx").unlink()
    os.symlink(secret, folder / "model.onnx")
    assert "symbolic link" in refusal(folder)


def test_a_pt2_pytorch_model_is_refused_with_the_way_out(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "model.pt2").write_bytes(b"PK\x03\x04")
    (folder / "MLmodel").write_text(
        "flavors:\n  pytorch:\n    model_data: data\n  python_function:\n"
        "    loader_module: mlflow.pytorch\n    data: data\n"
    )
    message = refusal(folder)
    assert "model.pt2" in message
    assert "serialization_format='pickle'" in message


def test_a_python_function_only_model_keeps_its_pickle_for_the_scanner(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    (folder / "artifacts").mkdir(parents=True)
    (folder / "python_model.pkl").write_bytes(b"\x80\x04N.")  # pickle of None
    (folder / "artifacts" / "lookup.json").write_text("{}")
    (folder / "requirements.txt").write_text("scikit-learn==1.5.0\n")
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n"
        "    python_model: python_model.pkl\n"
        "    artifacts:\n      lookup: {path: artifacts/lookup.json}\n"
    )
    plan = read_mlflow(folder)
    assert sorted(name for name, _ in plan.files) == ["artifacts/lookup.json", "python_model.pkl"]
    assert plan.framework is None  # the registry's inspection detects the pickle
    assert plan.details["flavor"] == "python_function"
    (folder / "MLmodel").write_text(
        "flavors:\n  python_function:\n    python_model: python_model.pkl\n"
        "    artifacts:\n      lookup: {path: ../../outside.json}\n"
    )
    assert "inside the model folder" in refusal(folder) or "outside" in refusal(folder)


def test_text_no_database_stores_is_cleaned_and_odd_conda_files_are_read_safely(
    tmp_path: Path,
) -> None:
    folder = write_mlflow_onnx(tmp_path / "model")
    mlmodel = MLMODEL_ONNX.replace(
        "run_id: 0a1b2c3d4e5f60718293a4b5c6d7e8f9", 'run_id: "run\\0with\\ud800odd"'
    )
    (folder / "MLmodel").write_text(mlmodel)
    (folder / "requirements.txt").unlink()
    (folder / "conda.yaml").write_text("dependencies: 7\n")
    plan = read_mlflow(folder)
    assert plan.details["run_id"] == "runwith?odd"
    assert "requirements" not in plan.details
