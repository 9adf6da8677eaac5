"""Model folders built once for all serving tests, torch on one thread, Hugging Face offline."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.unit.serving.builders import no_unpickling, write_char_lm, write_tabular


@pytest.fixture(autouse=True, scope="package")
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="package")
def offline() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("TRANSFORMERS_OFFLINE", "1")
        yield


@pytest.fixture(scope="package")
def tabular_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tabular(tmp_path_factory.mktemp("tabular"))


@pytest.fixture(scope="package")
def char_lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_char_lm(tmp_path_factory.mktemp("char_lm"))


@pytest.fixture(scope="package")
def tabular_onnx(tabular_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX folder exported from `tabular_folder`."""
    from modelhub.serving.export import export_onnx

    return export_onnx(tabular_folder, tmp_path_factory.mktemp("onnx") / "exported")


@pytest.fixture(scope="package")
def onnx_file(tabular_onnx: Path) -> Path:
    """The bare graph of the tabular export."""
    return tabular_onnx / "model.onnx"


@pytest.fixture(scope="package")
def minilm() -> Path:
    from modelhub.samples import minilm_folder

    return minilm_folder()


@pytest.fixture(scope="package")
def embeddings_runtime(minilm: Path) -> Iterator[Any]:
    """MiniLM loaded once for the whole folder (about a second), with unpickling refused."""
    from modelhub.serving.runtimes import load_runtime

    with no_unpickling():
        runtime = load_runtime(minilm)
    yield runtime
    runtime.unload()
