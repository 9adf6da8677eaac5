"""`load_runtime` picks the runtime from what a path holds, explains what it cannot
serve, and never unpickles anything."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from modelhub.errors import InvalidInput, UnsafeModel
from modelhub.serving.runtimes import load_runtime
from tests.unit.serving.builders import no_unpickling


class Evil:
    """Unpickling this creates `marker` (pickling it runs nothing)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def refusal(path: Path) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        load_runtime(path)
    return caught.value


@pytest.mark.parametrize(
    ("fixture", "runtime"),
    [
        ("tabular_folder", "tabular_classifier"),
        ("char_lm_folder", "text_generation"),
        ("onnx_file", "onnx"),
    ],
)
def test_each_kind_of_model_gets_its_runtime(
    request: pytest.FixtureRequest, fixture: str, runtime: str
) -> None:
    path: Path = request.getfixturevalue(fixture)
    with no_unpickling():
        assert load_runtime(path).info.runtime == runtime


def test_the_unpickling_guard_works(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(1)}, tmp_path / "w.pt")
    with no_unpickling(), pytest.raises(AssertionError, match="unpickle"):
        torch.load(tmp_path / "w.pt", weights_only=True)
    with no_unpickling(), pytest.raises(AssertionError, match="unpickle"):
        pickle.loads(pickle.dumps(1))


@pytest.mark.parametrize("name", ["model.pt", "model.bin", "model.pkl", "pytorch_model.pth"])
def test_a_pickle_is_refused_and_never_opened(tmp_path: Path, name: str) -> None:
    """Refused whichever runtime would claim it: a built-in says no runtime serves a
    pickle; a runtime plugin that serves pickles (the sample sklearn one claims .pkl)
    is never handed an untrusted one."""
    marker = tmp_path / "pwned"
    (tmp_path / name).write_bytes(pickle.dumps(Evil(marker), protocol=4))
    for path in (tmp_path / name, tmp_path):
        with pytest.raises((InvalidInput, UnsafeModel)) as caught:
            load_runtime(path)
        assert "pickle" in caught.value.message
        assert caught.value.details["path"] == str(path)
    assert not marker.exists()


def test_a_bare_safetensors_file_lacks_an_architecture(tmp_path: Path) -> None:
    from modelhub.samples import write_mlp_safetensors

    path = write_mlp_safetensors(tmp_path / "mlp.safetensors")
    assert "architecture" in refusal(path).message
    assert "trainer" in refusal(tmp_path).message


def test_a_hugging_face_folder_without_modules_json(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert "modules.json" in refusal(tmp_path).message


@pytest.mark.parametrize(("trainer", "words"), [("script", "user's code"), ("gan", "'gan'")])
def test_trainers_without_a_runtime_are_named(tmp_path: Path, trainer: str, words: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"trainer": trainer}))
    error = refusal(tmp_path)
    assert words in error.message
    assert error.details["trainer"] == trainer


def test_unreadable_or_absent_things(tmp_path: Path) -> None:
    assert "no model" in refusal(tmp_path / "missing").message
    assert "no servable model" in refusal(tmp_path).message  # an empty folder
    (tmp_path / "notes.txt").write_text("hi")
    assert "notes.txt" in refusal(tmp_path / "notes.txt").message
    (tmp_path / "config.json").write_text("{trainer")
    assert "JSON" in refusal(tmp_path).message


def test_a_damaged_trainer_folder_is_not_a_crash(tabular_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes((tabular_folder / "config.json").read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    error = refusal(tmp_path)
    assert "cannot be loaded" in error.message
    assert error.details == {"path": str(tmp_path), "runtime": "trainer_output"}
    (tmp_path / "config.json").write_text(json.dumps({"trainer": "tabular_classifier"}))
    assert "cannot be loaded" in refusal(tmp_path).message  # a config missing its keys


def test_importing_the_codec_and_runtimes_stays_light() -> None:
    code = (
        "import sys, modelhub.serving.codec, modelhub.serving.runtimes, modelhub.serving.export;"
        "heavy = {'torch', 'onnxruntime', 'sentence_transformers'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
