"""Inspect a folder of loose weight files (no config.json) and combine the answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelhub.domain.records import Inspection
from modelhub.errors import InvalidInput
from modelhub.inspect.files import inspect_file, is_model_file
from modelhub.inspect.tensors import precision_of


def model_files(folder: Path) -> list[Path]:
    """Weight files under `folder` by name, skipping hidden files and folders."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and is_model_file(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def inspect_folder(folder: Path) -> Inspection:
    files = model_files(folder)
    if not files:
        raise InvalidInput(
            f"{folder.name} holds no recognised model file "
            "(.safetensors, .onnx, .pt/.pth/.bin/.ckpt, .pkl/.pickle/.joblib)",
            {"path": str(folder)},
        )
    # ONNX models first: the external data files they name (often *.bin) are theirs,
    # not PyTorch files of their own.
    parts: list[tuple[Path, Inspection]] = []
    external: set[Path] = set()
    for path in sorted(files, key=lambda p: p.suffix.lower() != ".onnx"):
        if path in external:
            continue
        inspection = inspect_file(path)
        external.update(path.parent / f for f in inspection.details.get("external_data", []))
        parts.append((path, inspection))
    return combine(folder, parts)


def combine(folder: Path, parts: list[tuple[Path, Inspection]]) -> Inspection:
    """One answer for several weight files: the largest file decides the framework."""
    main_path, main = max(parts, key=lambda part: part[0].stat().st_size)
    dtypes: dict[str, int] = {}
    for _, ins in parts:
        for dtype, count in ins.dtypes.items():
            dtypes[dtype] = dtypes.get(dtype, 0) + count
    known = [ins.parameters for _, ins in parts if ins.parameters is not None]
    counts = [ins.tensor_count for _, ins in parts if ins.tensor_count is not None]
    precision, precision_details = precision_of(dtypes)
    if not dtypes:
        precision = main.precision
    findings = [
        f"{path.relative_to(folder)}: {finding}"
        for path, ins in parts
        for finding in ins.pickle_findings
    ]
    files: dict[str, Any] = {
        str(path.relative_to(folder)): {
            "framework": ins.framework.value,
            "parameters": ins.parameters,
            "requires_trust": ins.requires_trust,
        }
        for path, ins in parts
    }
    architecture = main.architecture or next(
        (ins.architecture for _, ins in parts if ins.architecture), None
    )
    return Inspection(
        framework=main.framework,
        architecture=architecture,
        parameters=sum(known) if known else None,
        precision=precision,
        dtypes=dtypes,
        tensor_count=sum(counts) if counts else None,
        signature=main.signature,
        details={
            "main_file": str(main_path.relative_to(folder)),
            "main": main.details,
            "files": files,
            **precision_details,
        },
        requires_trust=any(ins.requires_trust for _, ins in parts),
        pickle_findings=findings,
    )
