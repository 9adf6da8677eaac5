"""Foreign model layouts written by the tests: an ONNX graph built with onnx.helper, MLflow
model directories with real MLmodel files, a Hugging Face folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

FEATURES = 4
OUTPUTS = 3
WEIGHTS = np.arange(FEATURES * OUTPUTS, dtype=np.float32).reshape(FEATURES, OUTPUTS) / 10
BIAS = np.array([0.5, -0.5, 0.0], dtype=np.float32)

MLMODEL_ONNX = """\
flavors:
  onnx:
    code: null
    data: model.onnx
    onnx_version: 1.17.0
    providers:
    - CPUExecutionProvider
  python_function:
    data: model.onnx
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.onnx
    python_version: 3.11.7
mlflow_version: 2.19.0
model_uuid: 5f0c2c3e3a7b4d8b9e1f0a2b3c4d5e6f
run_id: 0a1b2c3d4e5f60718293a4b5c6d7e8f9
artifact_path: model
signature:
  inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]'
  outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 3]}}]'
  params: null
utc_time_created: '2026-01-05 10:00:00.000000'
metadata:
  license: mit
"""


def write_graph(path: Path) -> Path:
    """A Gemm graph: out = input @ WEIGHTS + BIAS, input [batch, 4] float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("Gemm", ["input", "W", "B"], ["out"])],
        "gemm",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", FEATURES])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", OUTPUTS])],
        [numpy_helper.from_array(WEIGHTS, "W"), numpy_helper.from_array(BIAS, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_mlflow_onnx(folder: Path, mlmodel: str = MLMODEL_ONNX) -> Path:
    """An MLflow onnx-flavor directory as mlflow.onnx.save_model writes it."""
    write_graph(folder / "model.onnx")
    (folder / "MLmodel").write_text(mlmodel)
    (folder / "requirements.txt").write_text("mlflow==2.19.0\nonnx==1.17.0\n# a comment\n")
    (folder / "python_env.yaml").write_text(
        "python: 3.11.7\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
    )
    (folder / "conda.yaml").write_text(
        "channels:\n- conda-forge\ndependencies:\n- python=3.11.7\n- pip\n"
        "- pip:\n  - mlflow==2.19.0\n  - onnx==1.17.0\nname: mlflow-env\n"
    )
    return folder


def write_huggingface(folder: Path) -> Path:
    """config.json, safetensors weights, tokenizer files and a card with front matter."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["BertForSequenceClassification"],
        "model_type": "bert",
        "hidden_size": 8,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "vocab_size": 16,
        "max_position_embeddings": 32,
        "transformers_version": "4.44.0",
    }
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"classifier.weight": np.ones((2, 8), np.float32)}, str(folder / "model.safetensors"))
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": True}))
    (folder / "vocab.txt").write_text("\n".join(f"t{i}" for i in range(16)))
    (folder / "README.md").write_text(
        "---\nlicense: apache-2.0\npipeline_tag: text-classification\n---\n# Tiny BERT\n"
    )
    return folder
