"""The parser contract, per format: any bytes either inspect to sensible values or raise
a modelhub error. Every other exception fails the property.

Inputs are valid small files made here, then mutated (bytes overwritten, cut short,
lengths replaced by extremes), plus JSON documents built from scratch for the formats
whose structure is JSON. The fixed-seed profile from tests/conftest.py keeps the
examples the same on every run; each family has a small budget.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhub.errors import ModelhubError
from modelhub.inspect import inspect_model
from tests.unit.inspect.builders import mlp_onnx_model, save_numpy_safetensors

EXTREMES = [0, 1, 2**31 - 1, 2**32, 2**54, 2**63, 2**64 - 1]


def holds_contract(path: Path) -> None:
    try:
        ins = inspect_model(path)
    except ModelhubError:
        return
    assert ins.parameters is None or ins.parameters >= 0
    assert ins.context_length is None or ins.context_length >= 1
    assert ins.tensor_count is None or ins.tensor_count >= 0
    assert ins.resources is not None and ins.resources.memory_bytes > 0
    json.dumps(ins.model_dump(mode="json"))


def mutations(base: bytes) -> st.SearchStrategy[bytes]:
    """`base` with a few bytes overwritten, an 8-byte extreme spliced in, maybe cut short."""

    def apply(edits: list[tuple[int, int]], extreme: tuple[int, int] | None, cut: int) -> bytes:
        data = bytearray(base)
        for position, value in edits:
            data[position % len(data)] = value
        if extreme is not None:
            position, value = extreme
            position %= len(data)
            data[position : position + 8] = struct.pack("<Q", value)
        return bytes(data[: max(1, len(data) - cut)])

    return st.builds(
        apply,
        st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), max_size=6),
        st.none() | st.tuples(st.integers(0, 2**20), st.sampled_from(EXTREMES)),
        st.integers(0, 16) | st.just(0),
    )


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.sampled_from(EXTREMES)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


# Raw JSON values the generators above never make: nesting and digits beyond the bounds.
POISON = st.sampled_from(["[" * 2000 + "]" * 2000, "9" * 5000, "NaN", "-Infinity", "1e999"])


def with_poison(document: Any, poison: str | None) -> str:
    """`document` as JSON text, with one more member holding `poison` when it is an object."""
    text = json.dumps(document)
    if poison is None or not isinstance(document, dict):
        return text
    return text[:-1] + (", " if document else "") + f'"poison": {poison}}}'


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("properties")


# -- safetensors header bytes ------------------------------------------------------


@pytest.fixture(scope="module")
def safetensors_bytes(workdir: Path) -> bytes:
    tensors = {"a.weight": np.ones((3, 2), np.float32), "b": np.zeros(4, np.float16)}
    return save_numpy_safetensors(workdir / "seed.safetensors", tensors).read_bytes()


@settings(max_examples=60)
@given(data=st.data())
def test_safetensors_bytes(workdir: Path, safetensors_bytes: bytes, data: st.DataObject) -> None:
    path = workdir / "model.safetensors"
    path.write_bytes(data.draw(mutations(safetensors_bytes)))
    holds_contract(path)


ENTRY = st.fixed_dictionaries(
    {},
    optional={
        "dtype": st.sampled_from(["F32", "F16", "BF16", "I8", "F4", "XX"]) | JSON_SCALARS,
        "shape": st.lists(st.integers(-2, 2**65), max_size=4) | JSON,
        "data_offsets": st.lists(st.sampled_from([0, 4, 8, 16, 2**64]), max_size=3) | JSON,
    },
)


@settings(max_examples=60)
@given(
    header=st.dictionaries(st.text(max_size=6), ENTRY | JSON, max_size=3),
    data_size=st.sampled_from([0, 4, 8, 16]),
    poison=st.none() | POISON,
)
def test_safetensors_headers(
    workdir: Path, header: dict[str, Any], data_size: int, poison: str | None
) -> None:
    raw = with_poison(header, poison).encode()
    path = workdir / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * data_size)
    holds_contract(path)


# -- torch zips and pickles -------------------------------------------------------


@pytest.fixture(scope="module")
def torch_zip(workdir: Path) -> tuple[bytes, bytes]:
    """(the whole archive, its data.pkl) of a small real torch.save file."""
    import torch

    path = workdir / "seed.pt"
    torch.save({"w": torch.ones(2, 3), "meta": {"epoch": 1, "names": ["a", "b"]}}, path)
    with zipfile.ZipFile(path) as archive:
        [name] = [n for n in archive.namelist() if n.endswith("data.pkl")]
        return path.read_bytes(), archive.read(name)


def _replace_data_pkl(archive_bytes: bytes, data_pkl: bytes, target: Path) -> None:
    source = target.with_suffix(".seed")
    source.write_bytes(archive_bytes)
    with zipfile.ZipFile(source) as archive, zipfile.ZipFile(target, "w") as out:
        for name in archive.namelist():
            out.writestr(name, data_pkl if name.endswith("data.pkl") else archive.read(name))


@settings(max_examples=40)
@given(data=st.data())
def test_torch_zip_pickles(
    workdir: Path, torch_zip: tuple[bytes, bytes], data: st.DataObject
) -> None:
    archive, data_pkl = torch_zip
    path = workdir / "model.pt"
    _replace_data_pkl(archive, data.draw(mutations(data_pkl)), path)
    holds_contract(path)


@settings(max_examples=40)
@given(data=st.data())
def test_torch_zip_bytes(
    workdir: Path, torch_zip: tuple[bytes, bytes], data: st.DataObject
) -> None:
    path = workdir / "model.pt"
    path.write_bytes(data.draw(mutations(torch_zip[0])))
    holds_contract(path)


@settings(max_examples=50)
@given(data=st.data(), suffix=st.sampled_from([".pkl", ".pt", ".bin", ".joblib"]))
def test_pickle_bytes(workdir: Path, data: st.DataObject, suffix: str) -> None:
    seed = pickle.dumps({"weights": [1.0, 2.0], "name": "m", "n": 2**40}, protocol=4)
    path = workdir / f"model{suffix}"
    path.write_bytes(data.draw(mutations(seed)))
    holds_contract(path)


# -- ONNX bytes --------------------------------------------------------------------


@settings(max_examples=50)
@given(data=st.data())
def test_onnx_bytes(workdir: Path, data: st.DataObject) -> None:
    path = workdir / "model.onnx"
    path.write_bytes(data.draw(mutations(mlp_onnx_model().SerializeToString())))
    holds_contract(path)


# -- Hugging Face config JSON ------------------------------------------------------

CONFIG_KEYS = [
    "architectures", "model_type", "torch_dtype", "dtype", "text_config",
    "max_position_embeddings", "n_positions", "hidden_size", "num_hidden_layers",
    "vocab_size", "trainer", "context_length", "classes",
]  # fmt: skip


@settings(max_examples=50)
@given(
    config=st.dictionaries(st.sampled_from(CONFIG_KEYS), JSON, max_size=5),
    modules=st.none() | JSON | st.lists(st.dictionaries(st.sampled_from(["type", "path"]), JSON)),
    pooling=JSON,
    index=st.none() | JSON,
    poison=st.none() | POISON,
)
def test_huggingface_configs(
    workdir: Path,
    config: dict[str, Any],
    modules: Any,
    pooling: Any,
    index: Any,
    poison: str | None,
) -> None:
    folder = workdir / "hf"
    if not folder.exists():
        (folder / "1_Pooling").mkdir(parents=True)
        save_numpy_safetensors(folder / "model.safetensors", {"w": np.zeros((2, 2), np.float32)})
    (folder / "config.json").write_text(with_poison(config, poison))
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    for name, content in (("modules.json", modules), ("model.safetensors.index.json", index)):
        if content is None:
            (folder / name).unlink(missing_ok=True)
        else:
            (folder / name).write_text(json.dumps(content))
    holds_contract(folder)
