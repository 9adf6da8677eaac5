"""Runtimes: one loaded model behind the `Runtime` interface (see `base`).

`load_runtime` asks the `modelhub.runtimes` extension point's providers, built-ins
first (a modelhub trainer's output, a sentence-transformers folder, an ONNX graph;
see `builtin`) and then installed plugins by name, which one claims the path, and
lets the first that does load it. Claiming reads metadata only; nothing in the
folder is executed by modelhub, and a path that holds a pickle is never handed to
a plugin unless the version is trusted (the built-ins never unpickle at all).
"""

from __future__ import annotations

from pathlib import Path

from modelhub.errors import InvalidInput, ModelhubError, UnsafeModel
from modelhub.plugins import Registry, needs
from modelhub.serving.runtimes.base import Runtime, RuntimeInfo, RuntimeProvider

__all__ = [
    "RUNTIMES",
    "Runtime",
    "RuntimeInfo",
    "RuntimeProvider",
    "load_runtime",
]

PICKLE_SUFFIXES = frozenset({".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".joblib"})


def _provider(obj: object) -> RuntimeProvider:
    needs(obj, "claims", "load")
    return obj  # type: ignore[return-value]


RUNTIMES: Registry[RuntimeProvider] = Registry(
    "runtimes",
    _provider,
    [
        (
            "trainer_output",
            "modelhub.serving.runtimes.builtin:trainer_output",
            "a modelhub trainer's output folder, or its ONNX export",
        ),
        (
            "sentence_transformers",
            "modelhub.serving.runtimes.builtin:sentence_transformers",
            "sentence-transformers folders (modules.json): embeddings",
        ),
        (
            "onnx",
            "modelhub.serving.runtimes.builtin:onnx",
            "one ONNX graph, as a file or alone in a folder, on ONNX Runtime",
        ),
    ],
)


def load_runtime(path: Path, *, trusted: bool = False) -> Runtime:
    """Load the model at `path` (a folder or a single file) into the runtime that serves it.

    `trusted` is the version's trust mark (an admin accepted its pickles). Raises
    InvalidInput when no runtime serves what the path holds (the message says what is
    missing) or when the files are damaged, UnsafeModel when a plugin would be handed
    an untrusted pickle.
    """
    if not path.exists():
        raise InvalidInput(f"no model file or folder at {path}", {"path": str(path)})
    for name, provider, builtin in RUNTIMES.loaded():
        if not _claims(name, provider, path, builtin):
            continue
        if not builtin and not trusted:
            pickles = holds_pickle(path)
            if pickles:
                raise UnsafeModel(
                    f"{path.name} holds pickle-based files ({', '.join(pickles[:3])}) that the"
                    f" runtime plugin {name!r} would load, and the version is not trusted;"
                    " an admin must register it with --trust",
                    {"path": str(path), "runtime": name},
                )
        return _loading(name, provider, path, trusted)
    if path.is_file():
        raise InvalidInput(_unservable_file(path), {"path": str(path)})
    raise InvalidInput(_unservable_folder(path), {"path": str(path)})


def holds_pickle(path: Path) -> list[str]:
    """The names under `path` that are pickle-based, by suffix or by their first bytes."""
    from modelhub.inspect.sniff import Kind, sniff

    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    found = []
    for file in files:
        if file.suffix.lower() in PICKLE_SUFFIXES or (
            file.stat().st_size > 0 and sniff(file) in (Kind.PICKLE, Kind.TORCH_ZIP)
        ):
            found.append(file.name if path.is_file() else str(file.relative_to(path)))
    return found


def _claims(name: str, provider: RuntimeProvider, path: Path, builtin: bool) -> bool:
    if builtin:
        return bool(provider.claims(path))
    try:
        return bool(provider.claims(path))
    except Exception as exc:  # a plugin may raise anything; say whose fault it is
        raise InvalidInput(
            f"runtime plugin {name!r} failed while looking at {path.name}:"
            f" {type(exc).__name__}: {exc}",
            {"path": str(path), "runtime": name},
        ) from exc


def _loading(name: str, provider: RuntimeProvider, path: Path, trusted: bool) -> Runtime:
    """`provider.load`, a damaged file or config (missing key, bad tensor) made InvalidInput."""
    try:
        return provider.load(path, trusted=trusted)
    except ModelhubError:
        raise
    except Exception as exc:  # safetensors, torch, transformers and plugins raise their own
        raise InvalidInput(
            f"{path.name} cannot be loaded by the {name} runtime: {type(exc).__name__}: {exc}",
            {"path": str(path), "runtime": name},
        ) from exc


def _unservable_file(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        return (
            f"{path.name} is a pickle-based file, which no installed runtime serves (the"
            " built-ins never unpickle); export the model to ONNX, serve a modelhub-trained"
            " folder, or install a runtime plugin for it (docs/plugins.md)"
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
            f"{folder.name} holds only pickle-based files, which no installed runtime serves;"
            " export the model to ONNX or safetensors"
        )
    return (
        f"{folder.name} holds no servable model: expected a modelhub config.json, a"
        " sentence-transformers modules.json or one .onnx file"
    )
