"""A command's flags as one of the services' request models, with flag-named errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


def options_from(model: type[M], **flags: Any) -> M:
    """`model` built from the flags; InvalidInput naming the flag (`--baseline: ...`) when
    a value is refused, instead of pydantic's report."""
    from pydantic import ValidationError

    from modelhub.errors import InvalidInput

    try:
        return model.model_validate(flags)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "options"
        raise InvalidInput(
            f"--{field.replace('_', '-')}: {error['msg']}", {"field": field}
        ) from None


def read_text_file(path: Path, max_bytes: int, field: str) -> str:
    """A small UTF-8 file a command sends whole (a policy, an ethics review);
    InvalidInput naming the file when it is missing, too large or not text."""
    from modelhub.errors import InvalidInput

    if not path.is_file():
        raise InvalidInput(f"no such file: {path}", {"field": field, "path": str(path)})
    if path.stat().st_size > max_bytes:
        raise InvalidInput(
            f"{path} is larger than {max_bytes:,} bytes", {"field": field, "path": str(path)}
        )
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            f"{path} is not UTF-8 text", {"field": field, "path": str(path)}
        ) from None
