"""Hostile torch zips and pickles: each is refused with InvalidInput naming the problem.

The weights-only unpickler and the zip reader raise whatever Python raises on bytes
they do not expect; every case below escaped as that exception before.
"""

from __future__ import annotations

import pickle
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from modelhub.errors import InvalidInput
from modelhub.inspect import inspect_model
from tests.unit.inspect.builders import pickle_unicode, torch_zip_with_pickle

STORAGE = pickle_unicode("storage")

MALFORMED = {
    # BINGET of a memo slot nobody PUT.
    "KeyError": b"\x80\x02]q\x00(h\x05e.",
    # REDUCE with nothing on the stack.
    "IndexError": b"\x80\x02)R.",
    # BININT cut short.
    "error": b"\x80\x02J\x00",
    # A persistent id that is an int, not a tuple.
    "AssertionError": b"\x80\x02K\x05Q.",
    # OrderedDict(*5).
    "TypeError": b"\x80\x02ccollections\nOrderedDict\nK\x05R.",
    # A persistent id whose storage type is an int.
    "AttributeError": b"\x80\x02("
    + STORAGE
    + b"K\x05"
    + pickle_unicode("0")
    + pickle_unicode("cpu")
    + b"K\x01tQ.",
}


@pytest.mark.parametrize("error", sorted(MALFORMED))
def test_malformed_pickle_in_a_torch_zip(tmp_path: Path, error: str) -> None:
    path = torch_zip_with_pickle(tmp_path / "model.pt", MALFORMED[error])
    with pytest.raises(
        InvalidInput,
        match=rf"^model\.pt is not a valid PyTorch file: its pickled data is malformed \({error}",
    ):
        inspect_model(path)


def test_self_referencing_list(tmp_path: Path) -> None:
    import torch

    loop: list[object] = []
    loop.append(loop)
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(2), "loop": loop}, path)
    with pytest.raises(
        InvalidInput,
        match=r"^model\.pt is not a valid PyTorch file: loop\.0 refers back .* \(a cycle\)",
    ):
        inspect_model(path)


def test_deep_nesting(tmp_path: Path) -> None:
    import torch

    deep: list[object] = [torch.zeros(1)]
    for _ in range(100):
        deep = [deep]
    path = tmp_path / "model.pt"
    torch.save(deep, path)
    with pytest.raises(InvalidInput, match="nest deeper than 64 levels"):
        inspect_model(path)


def test_shared_sublists_cannot_explode(tmp_path: Path) -> None:
    import torch

    level: list[object] = [torch.zeros(1)]
    for _ in range(40):  # 2^40 leaves when walked naively
        level = [level, level]
    path = tmp_path / "model.pt"
    torch.save({"tree": level}, path)
    assert inspect_model(path).tensor_count == 1  # each shared list walked once


def _zip_with_entry_name(path: Path, name: bytes) -> Path:
    """A torch-like zip whose second entry is called `name` (bytes, flagged UTF-8)."""
    placeholder = "é" * (len(name) // 2)  # non-ASCII, so zipfile sets the UTF-8 flag
    assert len(placeholder.encode()) == len(name)
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
        out.writestr(f"archive/{placeholder}", b"x")
    path.write_bytes(path.read_bytes().replace(placeholder.encode(), name))
    return path


def test_zip_entry_name_not_utf8(tmp_path: Path) -> None:
    path = _zip_with_entry_name(tmp_path / "model.pt", b"\xff\xfe")
    with pytest.raises(InvalidInput, match="zip entry names are not valid UTF-8"):
        inspect_model(path)


def test_zip_entry_of_unsupported_version(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as out:
        out.writestr("archive/data.pkl", pickle.dumps({}, protocol=2))
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6 : central + 8] = struct.pack("<H", 99)  # version needed to extract: 9.9
    path.write_bytes(bytes(data))
    with pytest.raises(
        InvalidInput, match=r"^model\.pt is not a valid PyTorch file: unreadable zip"
    ):
        inspect_model(path)


def test_pickle_length_claiming_2_to_the_54_bytes(tmp_path: Path) -> None:
    # PROTO 4, BINBYTES8 with a length of 2^54: 11 bytes in all.
    path = tmp_path / "model.pt"
    path.write_bytes(b"\x80\x04\x8e" + struct.pack("<Q", 2**54))
    ins = inspect_model(path)  # a pickle nobody can read: it would need trust, and finds nothing
    assert ins.requires_trust is True
    assert ins.pickle_findings == []


def test_pickle_scanner_value_error(tmp_path: Path) -> None:
    # PROTO 4, STACK_GLOBAL with no module or name before it.
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04\x93.")
    with pytest.raises(
        InvalidInput,
        match=r"^model\.pkl is not a valid pickle: the pickle scanner cannot read it \(ValueError",
    ):
        inspect_model(path)


def test_pickle_scanner_bad_zip(tmp_path: Path) -> None:
    # A pickle ending in a zip's end-of-central-directory record pointing nowhere.
    end_record = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, 1, 1, 46, 0, 0)
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x02}q\x00." + end_record)
    with pytest.raises(InvalidInput, match=r"pickle scanner cannot read it \(BadZipFile"):
        inspect_model(path)


def test_another_pickle_protocol_is_no_error(tmp_path: Path) -> None:
    # torch warns about protocols other than 2; a warning is not an answer.
    path = torch_zip_with_pickle(tmp_path / "model.pt", pickle.dumps({"epoch": 1}, protocol=3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inspect_model(path).details["non_tensor_entries"] == 1
