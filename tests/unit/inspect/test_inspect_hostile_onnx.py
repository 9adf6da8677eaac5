"""Hostile ONNX files, and external data that must come from the upload and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model
from tests.unit.inspect.builders import mlp_onnx_model, save_onnx


def test_unknown_element_type_of_an_input(tmp_path: Path) -> None:
    model = mlp_onnx_model()
    model.graph.input[0].type.tensor_type.elem_type = 99
    path = save_onnx(tmp_path / "model.onnx", model)
    with pytest.raises(
        InvalidInput,
        match=r"^model\.onnx is not a valid ONNX model: 'X' has unknown element type 99",
    ):
        inspect_model(path)


def test_unknown_element_type_of_an_initializer(tmp_path: Path) -> None:
    model = mlp_onnx_model()
    model.graph.initializer[0].data_type = 99
    path = save_onnx(tmp_path / "model.onnx", model)
    with pytest.raises(InvalidInput, match="initializer 'W1' has unknown element type 99"):
        inspect_model(path)


def test_producer_name_not_utf8(tmp_path: Path) -> None:
    raw = mlp_onnx_model().SerializeToString()
    path = tmp_path / "model.onnx"
    path.write_bytes(raw.replace(b"modelhub-tests", b"modelhub\xff\xfeests"))
    with pytest.raises(InvalidInput, match="producer_name is not valid UTF-8"):
        inspect_model(path)


def _with_external_data(folder: Path, location: str = "weights.bin") -> Path:
    """An MLP whose initializers live in `location` beside it (made by onnx itself)."""
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.onnx"
    onnx.save(
        mlp_onnx_model(),
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=location,
        size_threshold=0,
    )
    return path


def _relocate(path: Path, location: str) -> None:
    """Point every external tensor of the model at `path` to `location`."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(path))


def test_external_data_is_read_beside_the_model_not_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _with_external_data(tmp_path / "upload")
    monkeypatch.chdir(tmp_path)  # the server's working directory is elsewhere
    ins = inspect_model(path)
    assert ins.parameters == 4 * 8 + 8 + 8 * 2 + 2
    assert ins.details["external_data"] == ["weights.bin"]


def test_external_data_in_the_cwd_does_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _with_external_data(tmp_path / "upload")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (path.parent / "weights.bin").rename(cwd / "weights.bin")
    monkeypatch.chdir(cwd)
    with pytest.raises(InvalidInput, match=r"external data file 'weights\.bin' is missing"):
        inspect_model(path)


def test_external_data_outside_the_upload_is_refused(tmp_path: Path) -> None:
    path = _with_external_data(tmp_path / "upload")
    _relocate(path, "../../etc/passwd")
    with pytest.raises(
        InvalidInput,
        match=r"external data location '\.\./\.\./etc/passwd' must be a relative path inside",
    ):
        inspect_model(path)


def test_external_data_through_a_link_leading_out_is_refused(tmp_path: Path) -> None:
    path = _with_external_data(tmp_path / "upload")
    os.replace(path.parent / "weights.bin", tmp_path / "outside.bin")
    (path.parent / "weights.bin").symlink_to(tmp_path / "outside.bin")
    with pytest.raises(InvalidInput, match=r"'weights\.bin' leads outside the model folder"):
        inspect_model(path)


def test_external_data_shorter_than_claimed(tmp_path: Path) -> None:
    path = _with_external_data(tmp_path / "upload")
    data = path.parent / "weights.bin"
    data.write_bytes(data.read_bytes()[:16])
    with pytest.raises(InvalidInput, match=r"reads past the end of 'weights\.bin'"):
        inspect_model(path)


def test_a_folder_with_external_data_named_bin_is_one_onnx_model(tmp_path: Path) -> None:
    path = _with_external_data(tmp_path / "upload")
    ins = inspect_model(path.parent)
    assert ins.framework.value == "onnx"
    assert ins.details["main_file"] == "model.onnx"
