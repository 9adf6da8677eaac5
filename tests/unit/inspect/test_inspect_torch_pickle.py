from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from modelhub.domain.enums import Framework, Precision
from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model

# A pickle naming an sklearn estimator, written opcode by opcode (sklearn need not exist):
# PROTO 2, GLOBAL, EMPTY_TUPLE, NEWOBJ, EMPTY_DICT, BUILD, STOP.
SKLEARN_PICKLE = b"\x80\x02csklearn.linear_model._base\nLinearRegression\n)\x81}b."


def test_state_dict(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "model.pt"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.weight": torch.zeros(10, 8)}, path)
    ins = inspect_model(path)
    assert ins.framework is Framework.PYTORCH
    assert ins.parameters == 8 * 27 + 80
    assert ins.tensor_count == 2
    assert ins.precision is Precision.FP32
    assert ins.architecture == "cnn"
    assert ins.requires_trust is False


def test_nested_checkpoint(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "checkpoint.pth"
    state = {"layers.0.weight": torch.zeros(4, 4, dtype=torch.float16)}
    torch.save({"state_dict": state, "epoch": 3, "optimizer": {"lr": 0.1}}, path)
    ins = inspect_model(path)
    assert ins.parameters == 16
    assert ins.precision is Precision.FP16
    assert ins.details["state_dict_key"] == "state_dict"


def test_module_needing_globals_requires_trust(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "full_model.pt"
    torch.save(torch.nn.Linear(4, 2), path)
    ins = inspect_model(path)
    assert ins.framework is Framework.PYTORCH
    assert ins.requires_trust is True
    assert ins.parameters is None
    assert any("torch.nn.modules.linear.Linear" in f for f in ins.pickle_findings)
    assert "weights_only" in ins.details["trust_reason"]


def test_legacy_torch_file_goes_through_the_pickle_scan(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, path, _use_new_zipfile_serialization=False)
    ins = inspect_model(path)
    assert ins.framework is Framework.PYTORCH
    assert ins.requires_trust is True
    assert ins.details["format"] == "pickle"


def test_random_bytes_named_pt(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(np.random.default_rng(2).bytes(1024).replace(b"\x80", b"\x81"))
    with pytest.raises(InvalidInput, match=r"^model\.pt is not a valid PyTorch file: neither"):
        inspect_model(path)


def test_corrupt_torch_zip(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInput, match=r"^model\.pt is not a valid PyTorch file"):
        inspect_model(path)


@pytest.mark.usefixtures("no_unpickling")
def test_malicious_pickle_is_flagged_not_run(
    tmp_path: Path, evil_payload: tuple[bytes, Path]
) -> None:
    payload, marker = evil_payload
    path = tmp_path / "model.pkl"
    path.write_bytes(payload)
    ins = inspect_model(path)
    assert ins.requires_trust is True
    assert ins.framework is Framework.CUSTOM
    assert "dangerous: posix.system" in ins.pickle_findings
    assert ins.details["pickle_scan"]["dangerous"] == 1
    assert not marker.exists()


@pytest.mark.usefixtures("no_unpickling")
def test_malicious_pickle_detected_by_content(
    tmp_path: Path, evil_payload: tuple[bytes, Path]
) -> None:
    payload, marker = evil_payload
    path = tmp_path / "payload"
    path.write_bytes(payload)
    ins = inspect_model(path)
    assert ins.requires_trust is True
    assert ins.pickle_findings[0].startswith("dangerous:")
    assert not marker.exists()


def test_sklearn_pickle(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(SKLEARN_PICKLE)
    ins = inspect_model(path)
    assert ins.framework is Framework.SKLEARN
    assert ins.requires_trust is True
    assert ins.pickle_findings == ["suspicious: sklearn.linear_model._base.LinearRegression"]
    assert ins.resources is not None and "file size" in ins.resources.notes


def test_plain_pickle_is_custom_or_what_was_declared(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "model.pickle"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}))
    assert inspect_model(path).framework is Framework.CUSTOM
    assert inspect_model(path, Framework.SKLEARN).framework is Framework.SKLEARN
    with pytest.raises(InvalidInput, match="declared as onnx"):
        inspect_model(path, Framework.ONNX)


def test_compressed_joblib_is_refused(tmp_path: Path) -> None:
    import zlib

    path = tmp_path / "model.joblib"
    path.write_bytes(zlib.compress(SKLEARN_PICKLE))
    with pytest.raises(InvalidInput, match="compressed"):
        inspect_model(path)


def test_text_named_pkl(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_text("hello")
    with pytest.raises(InvalidInput, match=r"^model\.pkl is not a valid pickle"):
        inspect_model(path)
