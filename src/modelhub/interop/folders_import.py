"""Read a Hugging Face model folder or an ONNX file for import.

A Hugging Face folder is config.json beside its weights (safetensors; pickled .bin
files are scanned and need trust like any pickle) and tokenizer files; its README.md
is the model card, whose YAML front matter may name the license and the task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.errors import InvalidInput
from modelhub.inspect.bounded_json import JsonRefused, loads_bounded
from modelhub.interop.bounded_yaml import YamlRefused, load_yaml_bounded
from modelhub.interop.plan import ImportPlan, no_links_out, plain_text, read_text

CARD = "README.md"
PIPELINE_TYPES = {
    "text-classification": "classification",
    "token-classification": "classification",
    "image-classification": "classification",
    "text-generation": "generation",
    "text2text-generation": "generation",
    "feature-extraction": "embedding_model",
    "sentence-similarity": "embedding_model",
    "fill-mask": "language_model",
}
ARCHITECTURE_TYPES = (
    ("ForSequenceClassification", "classification"),
    ("ForTokenClassification", "classification"),
    ("ForImageClassification", "classification"),
    ("ForCausalLM", "generation"),
    ("ForConditionalGeneration", "generation"),
    ("ForMaskedLM", "language_model"),
)


def read_huggingface(folder: Path) -> ImportPlan:
    """The import plan of a Hugging Face folder; InvalidInput when it is not one."""
    if not folder.is_dir():
        raise InvalidInput(
            f"{folder.name} is not a folder: a Hugging Face model is a folder with config.json",
            {"path": folder.name},
        )
    no_links_out(folder)
    if not (folder / "config.json").is_file():
        raise InvalidInput(
            f"{folder.name} has no config.json, so it is not a Hugging Face model folder",
            {"path": "config.json"},
        )
    try:
        config = loads_bounded(read_text(folder / "config.json", "config.json"))
    except JsonRefused as exc:
        raise InvalidInput(f"config.json {exc}", {"path": "config.json"}) from exc
    if not isinstance(config, dict):
        raise InvalidInput("config.json is not a JSON object", {"path": "config.json"})
    card = read_text(folder / CARD, CARD) if (folder / CARD).is_file() else None
    front = front_matter(card) if card else {}
    files = [
        (path.relative_to(folder).as_posix(), path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.relative_to(folder).as_posix() != CARD
    ]
    architectures = config.get("architectures")
    first = architectures[0] if isinstance(architectures, list) and architectures else None
    details: dict[str, Any] = {"from": "huggingface"}
    for key in ("model_type", "transformers_version"):
        if isinstance(config.get(key), str):
            details[key] = plain_text(config[key])
    if isinstance(first, str):
        details["architecture"] = plain_text(first)
    tokenizer = [name for name, _ in files if name.startswith("tokenizer") or name == "vocab.txt"]
    details["tokenizer_files"] = [plain_text(name) for name in tokenizer[:20]]
    pipeline = front.get("pipeline_tag")
    if isinstance(pipeline, str):
        details["pipeline_tag"] = plain_text(pipeline)
    license = front.get("license")
    return ImportPlan(
        files=files,
        framework=Framework.HUGGINGFACE,
        details=details,
        license=plain_text(license, 1000) if isinstance(license, str) else None,
        card=card,
        model_type=_model_type(pipeline, first),
    )


def front_matter(card: str) -> dict[str, Any]:
    """The YAML between a card's opening and closing `---` lines ({} when none)."""
    lines = card.splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == "---")
    except StopIteration:
        return {}
    try:
        parsed = load_yaml_bounded("\n".join(lines[1:end]).encode())
    except YamlRefused as exc:
        raise InvalidInput(f"README.md's front matter {exc}", {"path": CARD}) from exc
    return parsed if isinstance(parsed, dict) else {}


def _model_type(pipeline: Any, architecture: Any) -> str | None:
    if isinstance(pipeline, str) and pipeline in PIPELINE_TYPES:
        return PIPELINE_TYPES[pipeline]
    if isinstance(architecture, str):
        for suffix, model_type in ARCHITECTURE_TYPES:
            if architecture.endswith(suffix):
                return model_type
    return None


def read_onnx(source: Path) -> ImportPlan:
    """An .onnx file, or a folder holding one .onnx graph (and its external data)."""
    if source.is_file():
        if source.suffix.lower() != ".onnx":
            raise InvalidInput(f"{source.name} is not an .onnx file", {"path": source.name})
        return ImportPlan(files=[(source.name, source)], framework=Framework.ONNX,
                          details={"from": "onnx"})  # fmt: skip
    if not source.is_dir():
        raise InvalidInput(f"no such file or directory: {source.name}", {"path": source.name})
    no_links_out(source)
    graphs = sorted(p.name for p in source.iterdir() if p.suffix.lower() == ".onnx")
    if len(graphs) != 1:
        raise InvalidInput(
            f"{source.name} holds {len(graphs)} .onnx files at its top; an ONNX import takes one",
            {"path": source.name, "graphs": graphs[:20]},
        )
    files = [
        (p.relative_to(source).as_posix(), p) for p in sorted(source.rglob("*")) if p.is_file()
    ]
    card = read_text(source / CARD, CARD) if (source / CARD).is_file() else None
    files = [(name, path) for name, path in files if name != CARD]
    return ImportPlan(files=files, framework=Framework.ONNX, details={"from": "onnx"}, card=card)
