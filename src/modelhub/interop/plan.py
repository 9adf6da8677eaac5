"""What an import registers: the files, laid out, and what the foreign layout said."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelhub.domain.enums import Framework
from modelhub.domain.names import check_relative_path
from modelhub.domain.records import Signature
from modelhub.errors import InvalidInput

# What an import keeps of a text file (a card, requirements): enough for any real one.
MAX_TEXT_BYTES = 256 * 1024


@dataclass(frozen=True)
class ImportPlan:
    """The version's files as (path inside the version, file on disk), and the metadata.

    `signature` is what the foreign layout declares; the registry keeps the one the
    files themselves declare (an ONNX graph's) when there is one. `details` lands in
    the version's inspection under "imported".
    """

    files: list[tuple[str, Path]]
    framework: Framework | None = None
    signature: Signature | None = None
    details: dict[str, Any] = field(default_factory=dict)
    license: str | None = None
    card: str | None = None
    model_type: str | None = None


def lay_out(plan: ImportPlan, target: Path, move: bool = False) -> Path:
    """Place the plan's files under `target`, moved (files the caller owns, such as an
    upload's) or copied; the caller registers `target` and removes it afterwards.

    Never hard links: ONNX's checker refuses external data with more than one link."""
    seen: set[str] = set()
    for relative, source in plan.files:
        clean = check_relative_path(relative)
        if clean in seen:
            raise InvalidInput(f"two files of the import would both be {clean}", {"path": clean})
        seen.add(clean)
        placed = target / clean
        placed.parent.mkdir(parents=True, exist_ok=True)
        if move:
            os.replace(source, placed)
        else:
            shutil.copyfile(source, placed)
    return target


def plain_text(value: Any, limit: int = 200) -> str:
    """`value` as text any database stores: at most `limit` characters, no NUL, no lone
    surrogate (a YAML or JSON escape can make either)."""
    text = str(value)[:limit].replace("\x00", "")
    return text.encode("utf-8", "replace").decode("utf-8")


def read_text(path: Path, what: str) -> str:
    """A small UTF-8 text file of the import, refused when it is not one."""
    if path.is_symlink() or not path.is_file():
        raise InvalidInput(f"{what} is not a regular file", {"path": what})
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InvalidInput(
            f"{what} is {size} bytes; an import reads at most {MAX_TEXT_BYTES}", {"path": what}
        )
    try:
        return path.read_text(encoding="utf-8").replace("\x00", "")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{what} is not UTF-8 text", {"path": what}) from exc


def requirement_lines(text: str) -> list[str]:
    """The requirements of a requirements.txt: one per line, comments and blanks left out."""
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [plain_text(line, 500) for line in lines if line][:500]


def no_links_out(folder: Path) -> None:
    """Refuse a folder holding a symbolic link: an import reads only its own files."""
    for path in folder.rglob("*"):
        if path.is_symlink():
            relative = path.relative_to(folder).as_posix()
            raise InvalidInput(
                f"{relative} is a symbolic link; an import reads only files inside the folder",
                {"path": relative},
            )
