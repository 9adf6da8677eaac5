from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from modelhub.domain.enums import Framework
from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model
from tests.unit.inspect.builders import mlp_onnx_model, save_numpy_safetensors, save_onnx


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(InvalidInput) as info:
        inspect_model(missing)
    # Only the name: the server's folders are nobody's business.
    assert info.value.message == "no such file or directory: nope.safetensors"
    assert str(tmp_path) not in str(info.value.details)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.touch()
    with pytest.raises(InvalidInput, match=r"^model\.onnx is not a valid ONNX model: .*empty"):
        inspect_model(path)


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no recognised model file"):
        inspect_model(tmp_path)


def test_folder_of_unrelated_files(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(InvalidInput, match="no recognised model file"):
        inspect_model(tmp_path)


def test_unknown_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a model")
    with pytest.raises(InvalidInput, match="not a recognised model file"):
        inspect_model(path)


def test_safetensors_content_named_onnx(tmp_path: Path) -> None:
    path = save_numpy_safetensors(tmp_path / "weights.onnx", {"w": np.zeros(4, np.float32)})
    with pytest.raises(
        InvalidInput, match=r"^weights\.onnx is not a valid ONNX model: .*safetensors"
    ):
        inspect_model(path)


def test_onnx_content_named_safetensors(tmp_path: Path) -> None:
    path = save_onnx(tmp_path / "weights.safetensors", mlp_onnx_model())
    with pytest.raises(InvalidInput, match=r"^weights\.safetensors is not a valid safetensors"):
        inspect_model(path)


def test_safetensors_without_extension(tmp_path: Path) -> None:
    path = save_numpy_safetensors(tmp_path / "blob", {"w": np.zeros(4, np.float32)})
    assert inspect_model(path).framework is Framework.SAFETENSORS


@pytest.mark.parametrize(
    ("declared", "accepted"),
    [
        (Framework.SAFETENSORS, True),
        (Framework.PYTORCH, True),
        (Framework.ONNX, False),
        (Framework.SKLEARN, False),
        (Framework.HUGGINGFACE, False),
    ],
)
def test_declared_framework_for_safetensors(
    tmp_path: Path, declared: Framework, accepted: bool
) -> None:
    path = save_numpy_safetensors(tmp_path / "m.safetensors", {"w": np.zeros(4, np.float32)})
    if accepted:
        assert inspect_model(path, declared).framework is Framework.SAFETENSORS
    else:
        with pytest.raises(InvalidInput, match="declared as"):
            inspect_model(path, declared)


def test_onnx_declared_pytorch(tmp_path: Path) -> None:
    path = save_onnx(tmp_path / "mlp.onnx", mlp_onnx_model())
    with pytest.raises(InvalidInput, match=r"^mlp\.onnx was declared as pytorch"):
        inspect_model(path, Framework.PYTORCH)


def test_folder_without_config_aggregates(tmp_path: Path) -> None:
    save_onnx(tmp_path / "model.onnx", mlp_onnx_model(hidden=64))
    (tmp_path / "extra").mkdir()
    save_numpy_safetensors(tmp_path / "extra" / "head.safetensors", {"w": np.zeros(3, np.float32)})
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "junk.onnx").write_text("ignored")
    ins = inspect_model(tmp_path)
    assert ins.framework is Framework.ONNX
    assert ins.parameters == 4 * 64 + 64 + 64 * 2 + 2 + 3
    assert ins.details["main_file"] == "model.onnx"
    assert set(ins.details["files"]) == {"model.onnx", "extra/head.safetensors"}
    assert ins.signature.inputs[0].name == "X"
    json.dumps(ins.details)


def test_folder_with_a_lying_file_is_refused(tmp_path: Path) -> None:
    save_onnx(tmp_path / "model.onnx", mlp_onnx_model())
    (tmp_path / "weights.safetensors").write_text("not really")
    with pytest.raises(InvalidInput, match=r"^weights\.safetensors is not a valid"):
        inspect_model(tmp_path)


@pytest.mark.usefixtures("no_unpickling")
def test_folder_with_a_pickle_requires_trust(
    tmp_path: Path, evil_payload: tuple[bytes, Path]
) -> None:
    payload, marker = evil_payload
    save_numpy_safetensors(tmp_path / "model.safetensors", {"w": np.zeros(1000, np.float32)})
    (tmp_path / "extra.pkl").write_bytes(payload)
    ins = inspect_model(tmp_path)
    assert ins.framework is Framework.SAFETENSORS
    assert ins.requires_trust is True
    assert "extra.pkl: dangerous: posix.system" in ins.pickle_findings
    assert not marker.exists()


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "model.onnx"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="not a regular file"):
        inspect_model(fifo)


def test_errors_name_paths_relative_to_what_was_inspected(tmp_path: Path) -> None:
    folder = tmp_path / "upload"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    with pytest.raises(InvalidInput) as info:
        inspect_model(folder)
    assert info.value.details["path"] == "sub/w.safetensors"
    assert str(tmp_path) not in info.value.message + json.dumps(info.value.details)
