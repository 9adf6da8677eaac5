"""A command's flags as one of the services' request models, with flag-named errors."""

from __future__ import annotations

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
