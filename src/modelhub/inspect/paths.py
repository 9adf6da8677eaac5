"""Paths that a model's own files name (shard indexes, modules.json), kept inside the model.

A config can say `"path": "../../etc"`; following it would make inspection read, or
report the existence of, files outside the upload. Every such path goes through
`inside` first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelhub.domain.names import MAX_PATH_COMPONENT_BYTES, check_relative_path
from modelhub.errors import InvalidInput


def inside(root: Path, relative: Any, where: str) -> Path:
    """`root / relative` when `relative` is a plain relative path that stays under `root`.

    `where` names the file and field for the message (e.g. "modules.json: path").
    Raises InvalidInput for anything else: not a string, absolute, `..`, a name
    longer than a filesystem allows, or a link leading out.
    """
    if not isinstance(relative, str):
        raise InvalidInput(
            f"{where} must be a relative path, not {type(relative).__name__}",
            {"field": where},
        )
    # Said apart from the other path rules, so the message names what is wrong.
    if any(
        len(part.encode(errors="surrogatepass")) > MAX_PATH_COMPONENT_BYTES
        for part in relative.split("/")
    ):
        raise InvalidInput(
            f"{where} {relative[:100]!r} has a name longer than {MAX_PATH_COMPONENT_BYTES} bytes",
            {"field": where},
        )
    try:
        clean = check_relative_path(relative)
    except InvalidInput as exc:
        raise InvalidInput(
            f"{where} {relative[:100]!r} must be a relative path inside the model folder",
            {"field": where},
        ) from exc
    target = root / clean
    base = root.resolve()
    if not target.resolve().is_relative_to(base):
        raise InvalidInput(
            f"{where} {relative[:100]!r} leads outside the model folder", {"field": where}
        )
    return target
