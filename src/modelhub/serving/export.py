"""Export a modelhub-trained model folder to an "ONNX folder" that serves like the source.

An ONNX folder holds `model.onnx` (one file, weights inside, dynamic batch), the
source's config.json plus `"format": "onnx"` and `"onnx_file": "model.onnx"`, and the
non-weight files its runtime needs (the text classifier's tokenizer). `load_runtime`
serves it with ONNX Runtime under the same signature, runtime name and outputs as the
source, so an exported version is a drop-in replacement behind a deployment. Another
graph with the same inputs and outputs (an int8-quantised one) may replace model.onnx,
with `"quantization"` added to config.json; it is served the same way.

The export is written beside the target under a temporary name, checked against the
source on a few deterministic sample inputs (`compare_outputs`), and only then renamed
into place: a failed or mismatching export leaves nothing behind.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

from modelhub.errors import IntegrityError, InvalidInput

__all__ = ["EXPORTABLE", "ONNX_FILE", "TOLERANCE", "compare_outputs", "export_onnx"]

ONNX_FILE = "model.onnx"
EXPORTABLE = ("tabular_classifier", "text_classifier", "char_lm")
# Largest absolute difference allowed between the source's and the export's outputs
# (logits and probabilities). fp32 graphs differ by ~1e-6; a wrong graph by far more.
TOLERANCE = 1e-3


def export_onnx(folder: Path, target: Path, tolerance: float = TOLERANCE) -> Path:
    """Export the trained model in `folder` to the ONNX folder `target`; returns target.

    Raises InvalidInput when `folder` is not an exportable trainer output (the message
    names what it holds) or `target` exists and is not an empty folder; IntegrityError
    when the export's outputs differ from the source's by more than `tolerance`.
    Nothing is left at `target` on any failure.
    """
    from modelhub.serving.export_graphs import write_export

    if not tolerance >= 0:
        raise InvalidInput(f"tolerance must be >= 0, got {tolerance}", {"field": "tolerance"})
    config = _source_config(folder)
    _check_target(target)
    created = _first_missing(target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir()
        write_export(folder, config, staging / ONNX_FILE)
        exported = {**config, "format": "onnx", "onnx_file": ONNX_FILE}
        (staging / "config.json").write_text(json.dumps(exported, indent=2), encoding="utf-8")
        difference = compare_outputs(folder, staging)
        if difference > tolerance:
            raise IntegrityError(
                f"the ONNX export of {folder.name} differs from the source by {difference:.3g}"
                f" on sample inputs (tolerance {tolerance:g}); nothing was written",
                {"path": str(folder), "max_abs_diff": difference, "tolerance": tolerance},
            )
        if target.is_dir():
            target.rmdir()  # checked empty above
        staging.rename(target)
    except BaseException:
        shutil.rmtree(created or staging, ignore_errors=True)
        raise
    return target


def compare_outputs(source: Path, exported: Path, samples: int = 8) -> float:
    """The largest absolute difference between the numeric outputs of the model in
    `source` and of the ONNX folder `exported`, over `samples` deterministic inputs
    (the same on every call): logits and probabilities for the classifiers, the
    next-token logits over the whole window for char_lm.

    Works for any ONNX folder with the export's inputs and outputs, a quantised one
    included. Raises InvalidInput when `source` is not an exportable model.
    """
    from modelhub.serving.export_graphs import sample_outputs

    if samples < 1:
        raise InvalidInput(f"samples must be at least 1, got {samples}", {"field": "samples"})
    config = _source_config(source)
    want = sample_outputs(source, config, samples, onnx=False)
    got = sample_outputs(exported, config, samples, onnx=True)
    difference = 0.0
    for name, expected in want.items():
        actual = got[name]
        if actual.shape != expected.shape:
            raise IntegrityError(
                f"the export's {name} has shape {list(actual.shape)}, the source's"
                f" {list(expected.shape)}",
                {"path": str(exported), "output": name},
            )
        if expected.size:
            gap = float(abs(actual.astype("float64") - expected.astype("float64")).max())
            difference = max(difference, gap if gap == gap else float("inf"))  # NaN: inf
    return difference


def is_onnx_folder(config: dict[str, Any]) -> bool:
    """True when a trained folder's config.json says it holds an ONNX export."""
    return config.get("format") == "onnx"


def _source_config(folder: Path) -> dict[str, Any]:
    """The config.json of an exportable model folder; InvalidInput naming what it holds."""
    if not folder.is_dir():
        raise InvalidInput(f"no model folder at {folder}", {"path": str(folder)})
    path = folder / "config.json"
    if not path.is_file():
        raise InvalidInput(
            f"ONNX export covers {_covered()} models; {folder.name} has no config.json naming"
            " a modelhub trainer (pickle files and foreign formats are not exported)",
            {"path": str(folder)},
        )
    try:
        config: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path} cannot be read as JSON: {exc}", {"path": str(path)}) from exc
    trainer = config.get("trainer") if isinstance(config, dict) else None
    if trainer not in EXPORTABLE:
        held = f"a {trainer!r} model" if trainer else "no modelhub trainer output"
        raise InvalidInput(
            f"ONNX export covers {_covered()} models; {folder.name} holds {held}",
            {"path": str(folder), "trainer": trainer},
        )
    if is_onnx_folder(config):
        raise InvalidInput(
            f"{folder.name} already holds an ONNX export of a {trainer} model",
            {"path": str(folder), "format": "onnx"},
        )
    return dict(config)


def _check_target(target: Path) -> None:
    if target.is_dir():
        if any(target.iterdir()):
            raise InvalidInput(
                f"{target} exists and is not empty; export into a new or empty folder",
                {"path": str(target)},
            )
    elif target.exists():
        raise InvalidInput(f"{target} exists and is not a folder", {"path": str(target)})


def _first_missing(folder: Path) -> Path | None:
    """The outermost of `folder` and its parents that does not exist yet (None if it
    exists): what to remove, with the staging folder inside it, when an export fails."""
    missing = None
    for path in (folder, *folder.parents):
        if path.exists():
            break
        missing = path
    return missing


def _covered() -> str:
    return ", ".join(EXPORTABLE[:-1]) + " and " + EXPORTABLE[-1]
