"""Hostile JSON in model files: safetensors headers, Hugging Face configs, shard indexes,
modules.json. Each is refused with InvalidInput naming the file and the problem, and no
path a config names is followed outside the model folder."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model
from tests.unit.inspect.builders import save_numpy_safetensors

DEEP = "[" * 100_000 + "]" * 100_000
HUGE_INT = "9" * 4301


def _raw_safetensors(path: Path, header: bytes) -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    return path


def test_safetensors_header_with_a_4301_digit_int(tmp_path: Path) -> None:
    header = (
        b'{"w": {"dtype": "F32", "shape": [' + HUGE_INT.encode() + b'], "data_offsets": [0, 4]}}'
    )
    path = _raw_safetensors(tmp_path / "model.safetensors", header)
    with pytest.raises(
        InvalidInput,
        match=r"^model\.safetensors is not a valid safetensors file: header holds an integer "
        r"of 4301 digits",
    ):
        inspect_model(path)


def test_safetensors_header_100000_deep(tmp_path: Path) -> None:
    path = _raw_safetensors(tmp_path / "model.safetensors", DEEP.encode())
    with pytest.raises(InvalidInput, match="header nests deeper than 64 levels"):
        inspect_model(path)


def test_safetensors_header_with_nan(tmp_path: Path) -> None:
    header = b'{"__metadata__": {"x": NaN}}'
    path = _raw_safetensors(tmp_path / "model.safetensors", header)
    with pytest.raises(InvalidInput, match="header holds NaN, which is not a JSON number"):
        inspect_model(path)


def test_safetensors_dimension_beyond_u64(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2**64], "data_offsets": [0, 4]}})
    path = _raw_safetensors(tmp_path / "model.safetensors", header.encode())
    with pytest.raises(InvalidInput, match="malformed shape"):
        inspect_model(path)


def _hf_folder(folder: Path, config: str | dict[str, Any], **files: str | Any) -> Path:
    """A small Hugging Face folder: config.json, one safetensors file, and `files`."""
    folder.mkdir(exist_ok=True)
    text = config if isinstance(config, str) else json.dumps(config)
    (folder / "config.json").write_text(text)
    save_numpy_safetensors(folder / "model.safetensors", {"w": np.zeros((2, 2), np.float32)})
    for name, content in files.items():
        target = folder / name.replace("__", "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content if isinstance(content, str) else json.dumps(content))
    return folder


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"architectures": 5}, "config.json: architectures must be a list, not an integer"),
        ({"architectures": [{"a": 1}]}, "config.json: architectures must be a list of strings"),
        ({"text_config": "x"}, "config.json: text_config must be an object, not a string"),
        ({"model_type": ["bert"]}, "config.json: model_type must be a string, not a list"),
        ({"torch_dtype": 16}, "config.json: torch_dtype must be a string, not an integer"),
        (DEEP, "config.json nests deeper than 64 levels"),
        ('{"a": ' + DEEP + "}", "config.json nests deeper than 64 levels"),
        ('{"vocab_size": ' + HUGE_INT + "}", "config.json holds an integer of 4301 digits"),
        ({"max_position_embeddings": -5}, "max_position_embeddings must be between 1 and"),
        ({"text_config": {"n_positions": 0}}, "text_config: n_positions must be between 1 and"),
        ({"max_position_embeddings": 2**40}, "max_position_embeddings must be between 1 and"),
        ({"architectures": ["X" * 200]}, "architecture name 'XXX.* is longer than 128"),
    ],
)
def test_hostile_config(tmp_path: Path, config: str | dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        inspect_model(_hf_folder(tmp_path / "model", config))


def test_trained_folder_with_a_non_string_trainer(tmp_path: Path) -> None:
    folder = _hf_folder(tmp_path / "model", {"trainer": ["x"]})
    with pytest.raises(InvalidInput, match=r"config\.json: trainer must be a string, not a list"):
        inspect_model(folder)


def test_trained_folder_with_a_negative_context_length(tmp_path: Path) -> None:
    folder = _hf_folder(tmp_path / "model", {"trainer": "char_lm", "context_length": -1})
    with pytest.raises(InvalidInput, match="context_length must be between 1 and"):
        inspect_model(folder)


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        (
            {
                "modules.json": [{"type": "x.Pooling", "path": "1_Pooling"}],
                "1_Pooling__config.json": {"word_embedding_dimension": -3},
            },
            "1_Pooling/config.json: word_embedding_dimension must be between 1 and",
        ),
        (
            {
                "modules.json": [{"type": "x.Dense", "path": "2_Dense"}],
                "2_Dense__config.json": {"out_features": 0},
            },
            "2_Dense/config.json: out_features must be between 1 and",
        ),
        (
            {"modules.json": [], "sentence_bert_config.json": {"max_seq_length": -1}},
            "sentence_bert_config.json: max_seq_length must be between 1 and",
        ),
        ({"modules.json": {"a": 1}}, "modules.json must be a list of objects"),
        ({"modules.json": [{"path": 7}]}, "modules.json: path must be a string, not an integer"),
        ({"modules.json": DEEP}, "modules.json nests deeper than 64 levels"),
        (
            {"modules.json": [{"type": "x.Pooling", "path": "a" * 300}]},
            "modules.json: path 'a+' has a name longer than 255 bytes",
        ),
        (
            {"model.safetensors.index.json": {"weight_map": {"w": "a" * 300}}},
            "weight_map 'a+' has a name longer than 255 bytes",
        ),
        (
            {"model.safetensors.index.json": {"weight_map": ["model.safetensors"]}},
            "model.safetensors.index.json: weight_map must be an object, not a list",
        ),
        (
            {"model.safetensors.index.json": {"weight_map": {"w": 3}}},
            "weight_map must be a relative path, not int",
        ),
    ],
)
def test_hostile_sentence_transformers_and_index_files(
    tmp_path: Path, files: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidInput, match=problem):
        inspect_model(_hf_folder(tmp_path / "model", {}, **files))


def test_pooling_dimension_of_the_wrong_type_is_ignored(tmp_path: Path) -> None:
    files = {
        "modules.json": [{"type": "x.Pooling", "path": "1_Pooling"}],
        "1_Pooling__config.json": {"word_embedding_dimension": "big"},
    }
    ins = inspect_model(_hf_folder(tmp_path / "model", {}, **files))
    assert ins.signature.outputs[0].shape == [-1, -1]


def test_weight_map_cannot_look_outside_the_upload(tmp_path: Path) -> None:
    (tmp_path / "secret.safetensors").write_bytes(b"x")  # exists, but outside the model
    index = {"weight_map": {"w": "../secret.safetensors"}}
    folder = _hf_folder(tmp_path / "model", {}, **{"model.safetensors.index.json": index})
    with pytest.raises(InvalidInput, match="must be a relative path inside the model folder"):
        inspect_model(folder)


def test_modules_json_cannot_read_configs_outside_the_upload(tmp_path: Path) -> None:
    # A pooling config beside the upload, which inspection used to read and report.
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "config.json").write_text('{"word_embedding_dimension": 7}')
    modules = [{"type": "x.Pooling", "path": "../elsewhere"}]
    folder = _hf_folder(tmp_path / "model", {}, **{"modules.json": modules})
    with pytest.raises(
        InvalidInput, match=r"modules\.json: path '\.\./elsewhere' must be a relative"
    ):
        inspect_model(folder)


def test_a_link_inside_the_upload_cannot_lead_out(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "config.json").write_text('{"word_embedding_dimension": 7}')
    modules = [{"type": "x.Pooling", "path": "pool"}]
    folder = _hf_folder(tmp_path / "model", {}, **{"modules.json": modules})
    (folder / "pool").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InvalidInput, match=r"modules\.json: path 'pool' leads outside the model"):
        inspect_model(folder)
