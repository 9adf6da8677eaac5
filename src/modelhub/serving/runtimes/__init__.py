"""Runtimes: one loaded model behind the `Runtime` interface (see `base`).

`load_runtime` picks the runtime from what a folder or file holds, by reading
metadata only (config.json's "trainer" and "format", modules.json, the .onnx suffix):
nothing in the folder is executed, and pickle files (.pt, .bin, .pkl ...) are never
loaded. A trainer's ONNX export (config.json `"format": "onnx"`) is served by the
ONNX Runtime twin of the trainer's runtime, with the same name and signature.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelhub.errors import InvalidInput, ModelhubError
from modelhub.serving.runtimes.base import Runtime, RuntimeInfo

__all__ = [
    "EXPORTED_RUNTIMES_BY_TRAINER",
    "RUNTIMES_BY_TRAINER",
    "Runtime",
    "RuntimeInfo",
    "load_runtime",
]

PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".joblib"})


def _tabular(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.tabular import TabularRuntime

    return TabularRuntime(folder)


def _char_lm(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.generation import TextGenerationRuntime

    return TextGenerationRuntime(folder)


def _text_classifier(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.sentence import TextClassificationRuntime

    return TextClassificationRuntime(folder)


def _sentence_embeddings(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.sentence import SentenceEmbeddingsRuntime

    return SentenceEmbeddingsRuntime(folder)


def _exported_tabular(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.exported import OnnxTabularRuntime

    return OnnxTabularRuntime(folder)


def _exported_char_lm(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.exported import OnnxTextGenerationRuntime

    return OnnxTextGenerationRuntime(folder)


def _exported_text_classifier(folder: Path) -> Runtime:
    from modelhub.serving.runtimes.exported import OnnxTextClassificationRuntime

    return OnnxTextClassificationRuntime(folder)


def _onnx(path: Path, in_folder: bool) -> Runtime:
    from modelhub.serving.runtimes.onnx_model import OnnxRuntime

    return OnnxRuntime(path, in_folder=in_folder)


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


def load_runtime(path: Path) -> Runtime:
    """Load the model at `path` (a folder or a single file) into the runtime that serves it.

    Raises InvalidInput when no runtime serves what the path holds (the message says
    what is missing) or when the files are damaged.
    """
    if path.is_file():
        if path.suffix.lower() == ".onnx":
            return _onnx(path, in_folder=False)
        raise InvalidInput(_unservable_file(path), {"path": str(path)})
    if not path.is_dir():
        raise InvalidInput(f"no model file or folder at {path}", {"path": str(path)})
    trainer, form = _trainer(path)
    if trainer is not None:
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
        what = f"a {trainer} model" if form is None else f"an ONNX export of a {trainer} model"
        return _loading(load, path, what)
    if (path / "modules.json").is_file():
        return _loading(_sentence_embeddings, path, "a sentence-transformers model")
    graphs = sorted(p for p in path.iterdir() if p.suffix.lower() == ".onnx" and p.is_file())
    if len(graphs) == 1:
        return _onnx(graphs[0], in_folder=True)
    if len(graphs) > 1:
        names = ", ".join(p.name for p in graphs)
        raise InvalidInput(
            f"{path.name} holds {len(graphs)} ONNX graphs ({names}); serve one file",
            {"path": str(path)},
        )
    raise InvalidInput(_unservable_folder(path), {"path": str(path)})


def _loading(load: Callable[[Path], Runtime], folder: Path, what: str) -> Runtime:
    """`load(folder)`, a damaged file or config (missing key, bad tensor) made InvalidInput."""
    try:
        return load(folder)
    except ModelhubError:
        raise
    except Exception as exc:  # safetensors, torch and transformers each raise their own
        raise InvalidInput(
            f"{folder.name} cannot be loaded as {what}: {type(exc).__name__}: {exc}",
            {"path": str(folder)},
        ) from exc


def _trainer(folder: Path) -> tuple[str | None, str | None]:
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


def _unserved_trainer(trainer: str) -> str:
    if trainer == "script":
        return (
            "no runtime serves a script trainer's output: its model class lives in the"
            " user's code, which serving never runs; export the model to ONNX instead"
        )
    served = ", ".join(sorted(RUNTIMES_BY_TRAINER))
    return f"no runtime serves the output of trainer {trainer!r} (served: {served})"


def _unservable_file(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return (
            f"{path.name} is a pickle-based file, which is never loaded for serving (unpickling"
            " can run code); export the model to ONNX or serve a modelhub-trained folder"
        )
    if suffix == ".safetensors":
        return (
            f"{path.name} holds weights but not the architecture that uses them; serve a"
            ' folder with a modelhub config.json ("trainer"), or an ONNX export'
        )
    return f"no runtime serves {path.name}: serve an .onnx file or a model folder"


def _unservable_folder(folder: Path) -> str:
    names = {p.name for p in folder.iterdir()}
    suffixes = {p.suffix.lower() for p in folder.iterdir()}
    if "config.json" in names:
        return (
            f"{folder.name} looks like a Hugging Face folder but has no modules.json: only"
            " sentence-transformers folders, modelhub trainer outputs and ONNX graphs are served"
        )
    if ".safetensors" in suffixes:
        return (
            f"{folder.name} holds safetensors weights but no config.json naming a modelhub"
            " trainer, so no runtime knows the architecture; export it to ONNX"
        )
    if suffixes & PICKLE_SUFFIXES:
        return (
            f"{folder.name} holds only pickle-based files, which are never loaded for serving;"
            " export the model to ONNX or safetensors"
        )
    return (
        f"{folder.name} holds no servable model: expected a modelhub config.json, a"
        " sentence-transformers modules.json or one .onnx file"
    )
