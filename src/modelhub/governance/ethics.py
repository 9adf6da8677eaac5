"""The ethics review record: what a model is for, whom it touches, its risks, a verdict.

`parse_ethics(text)` reads the reviewer's YAML through the bounded loader and
validates it; every missing or malformed field is named in one InvalidInput.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from modelhub.domain.limits import load_yaml_mapping
from modelhub.errors import InvalidInput

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)]
Item = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


class EthicsDecision(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


class Risk(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    risk: Item
    mitigation: Item


class EthicsRecord(BaseModel):
    """One ethics review of a version, as the reviewer wrote it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intended_use: Text
    out_of_scope_uses: list[Item] = Field(min_length=1, max_length=100)
    affected_groups: list[Item] = Field(min_length=1, max_length=100)
    risks: list[Risk] = Field(min_length=1, max_length=100)
    human_oversight: Text
    contact: Item
    decision: EthicsDecision
    notes: Annotated[str, StringConstraints(max_length=10_000)] = ""


REQUIRED_FIELDS = tuple(
    name for name, field in EthicsRecord.model_fields.items() if field.is_required()
)


def parse_ethics(text: str) -> EthicsRecord:
    """An ethics record from YAML; InvalidInput naming every missing or bad field."""
    data = load_yaml_mapping(text, "ethics file", "ethics", REQUIRED_FIELDS)
    try:
        return EthicsRecord.model_validate(data)
    except ValidationError as exc:
        errors = [_problem(error) for error in exc.errors()]
        missing = [e["field"] for e in errors if e["type"] == "missing"]
        listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:8])
        more = f" (and {len(errors) - 8} more)" if len(errors) > 8 else ""
        raise InvalidInput(
            f"invalid ethics file: {listed}{more}",
            {"field": "ethics", "missing": missing, "errors": errors[:50]},
        ) from None


def _problem(error: Any) -> dict[str, str]:
    path = ".".join(str(part) for part in error["loc"]) or "ethics"
    message = str(error["msg"])
    if error["type"] == "missing":
        message = "required field missing"
    elif error["type"] == "extra_forbidden":
        known = ", ".join(EthicsRecord.model_fields)
        message = f"unknown field (known: {known})"
    return {"field": path[:200], "message": message, "type": str(error["type"])}
