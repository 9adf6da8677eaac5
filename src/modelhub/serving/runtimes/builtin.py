"""The built-in runtime providers, registered under `modelhub.runtimes` like a plugin.

Each claims a path from metadata only (config.json's "trainer" and "format",
modules.json, the .onnx suffix) and loads it without executing anything in it.
A trainer's ONNX export (config.json `"format": "onnx"`) is served by the ONNX
Runtime twin of the trainer's runtime, with the same name and signature.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelhub.errors import InvalidInput
from modelhub.serving.runtimes.base import Runtime


def _tabular(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.tabular import TabularRuntime

    return TabularRuntime(folder)


def _char_lm(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.generation import TextGenerationRuntime

    return TextGenerationRuntime(folder)


def _text_classifier(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.sentence import TextClassificationRuntime

    return TextClassificationRuntime(folder)


def _exported_tabular(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.exported import OnnxTabularRuntime

    return OnnxTabularRuntime(folder)


def _exported_char_lm(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.exported import OnnxTextGenerationRuntime

    return OnnxTextGenerationRuntime(folder)


def _exported_text_classifier(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.exported import OnnxTextClassificationRuntime

    return OnnxTextClassificationRuntime(folder)


# modelhub trainer (config.json "trainer") -> the runtime that serves its output.
RUNTIMES_BY_TRAINER: dict[str, Callable[[Path], Runtime]] = {
    "tabular_classifier": _tabular,
    "char_lm": _char_lm,
    "text_classifier": _text_classifier,
}
# The same for a trainer's ONNX export (config.json "format": "onnx").
EXPORTED_RUNTIMES_BY_TRAINER: dict[str, Callable[[Path], Runtime]] = {
    "tabular_classifier": _exported_tabular,
    "char_lm": _exported_char_lm,
    "text_classifier": _exported_text_classifier,
}


def trainer_config(folder: Path) -> tuple[str | None, str | None]:
    """config.json's "trainer" and "format" (None where absent)."""
    config_path = folder / "config.json"
    if not config_path.is_file():
        return None, None
    try:
        config: Any = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"{config_path} cannot be read as JSON: {exc}", {"path": str(config_path)}
        ) from exc
    if not isinstance(config, dict) or "trainer" not in config:
        return None, None
    form = config.get("format")
    return str(config["trainer"]), None if form is None else str(form)


class TrainerOutputProvider:
    """A modelhub trainer's output folder, or its ONNX export."""

    def claims(self, path: Path) -> bool:
        return path.is_dir() and trainer_config(path)[0] is not None

    def load(self, path: Path, *, trusted: bool) -> Runtime:
        trainer, form = trainer_config(path)
        assert trainer is not None
        if form is not None and form != "onnx":
            raise InvalidInput(
                f"{path.name} holds a {trainer} model in format {form!r}; served formats are"
                " the trainer's own and onnx",
                {"path": str(path), "format": form},
            )
        by_trainer = RUNTIMES_BY_TRAINER if form is None else EXPORTED_RUNTIMES_BY_TRAINER
        load = by_trainer.get(trainer)
        if load is None:
            raise InvalidInput(_unserved_trainer(trainer), {"path": str(path), "trainer": trainer})
        return load(path)


class SentenceTransformersProvider:
    """A sentence-transformers folder (modules.json): embeddings."""

    def claims(self, path: Path) -> bool:
        return path.is_dir() and (path / "modules.json").is_file()

    def load(self, path: Path, *, trusted: bool) -> Runtime:
        from modelhub.serving.runtimes.sentence import SentenceEmbeddingsRuntime

        return SentenceEmbeddingsRuntime(path)


class OnnxProvider:
    """One ONNX graph, as a file or alone in a folder, on ONNX Runtime."""

    def claims(self, path: Path) -> bool:
        if path.is_file():
            return path.suffix.lower() == ".onnx"
        return path.is_dir() and any(_graphs(path))

    def load(self, path: Path, *, trusted: bool) -> Runtime:
        from modelhub.serving.runtimes.onnx_model import OnnxRuntime

        if path.is_file():
            return OnnxRuntime(path, in_folder=False)
        graphs = _graphs(path)
        if len(graphs) > 1:
            names = ", ".join(p.name for p in graphs)
            raise InvalidInput(
                f"{path.name} holds {len(graphs)} ONNX graphs ({names}); serve one file",
                {"path": str(path)},
            )
        return OnnxRuntime(graphs[0], in_folder=True)


def _graphs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".onnx" and p.is_file())


def _unserved_trainer(trainer: str) -> str:
    if trainer == "script":
        return (
            "no runtime serves a script trainer's output: its model class lives in the"
            " user's code, which serving never runs; export the model to ONNX instead"
        )
    served = ", ".join(sorted(RUNTIMES_BY_TRAINER))
    return f"no runtime serves the output of trainer {trainer!r} (served: {served})"


trainer_output = TrainerOutputProvider()
sentence_transformers = SentenceTransformersProvider()
onnx = OnnxProvider()
