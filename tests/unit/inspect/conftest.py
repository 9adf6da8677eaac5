"""Fixtures shared by the inspection tests."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from tests.unit.inspect.builders import Evil


@pytest.fixture
def evil_payload(tmp_path: Path) -> tuple[bytes, Path]:
    """A malicious pickle (made by pickling, which does not run it) and its marker file."""
    marker = tmp_path / "pwned"
    return pickle.dumps(Evil(marker), protocol=4), marker


@pytest.fixture
def no_unpickling(evil_payload: tuple[bytes, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if anything in the test calls os.system (as unpickling Evil would).

    Depends on evil_payload so the payload is pickled before os.system is replaced.
    """
    import posix

    def refuse(command: str) -> int:
        raise AssertionError(f"model code was executed: {command}")

    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(posix, "system", refuse)
