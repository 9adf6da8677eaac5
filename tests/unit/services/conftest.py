"""Real services over real stores in tmp_path, and real model files to register."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from modelhub.services import Services, build_services
from modelhub.settings import Settings
from tests.stores import Stores, stores_of
from tests.unit.inspect.builders import mlp_onnx_model, save_numpy_safetensors, save_onnx


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    built = build_services(Settings(home=tmp_path / "home", gc_grace_seconds=3600))
    yield built
    built.close()


@pytest.fixture
def safetensors_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    return save_numpy_safetensors(
        tmp_path / "src" / "model.safetensors",
        {"w": rng.standard_normal((4, 3)).astype(np.float32), "b": np.zeros(3, np.float32)},
    )


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    return save_onnx(tmp_path / "src" / "mlp.onnx", mlp_onnx_model())


@pytest.fixture(autouse=True)
def _src_folder(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir(exist_ok=True)


@pytest.fixture
def stores(services: Services) -> Iterator[Stores]:
    """The stores under `services`, for tests that check what landed in them."""
    with stores_of(services) as opened:
        yield opened
