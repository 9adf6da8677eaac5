"""What the deployments CLI reads from its options: autoscale bounds, inference requests,
the prediction log policy.

Kept apart from the Typer commands so it is plain functions over text and files.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelhub.domain.predictions import PredictionLogPolicy


def parse_autoscale(text: str | None) -> tuple[int, int] | None:
    """`MIN:MAX` replicas as typed after --autoscale; InvalidInput naming the option."""
    from modelhub.errors import InvalidInput

    if text is None:
        return None
    low, sep, high = text.partition(":")
    try:
        bounds = (int(low), int(high)) if sep else None
    except ValueError:
        bounds = None
    if bounds is None or min(bounds) < 1:
        raise InvalidInput(
            f"--autoscale wants MIN:MAX replicas (two whole numbers from 1, e.g. 1:4), "
            f"not {text!r}",
            {"field": "autoscale", "value": text},
        )
    return bounds


def read_request(input: str | None, file: Path | None) -> bytes:
    """The inference request from --input (JSON text) or --file (a JSON file), checked to
    be a JSON object so a typo is named here rather than by the model server."""
    from modelhub.errors import InvalidInput

    if (input is None) == (file is None):
        raise InvalidInput(
            "give the request with either --input JSON or --file PATH (one of them)",
            {"field": "input"},
        )
    if file is not None:
        option, raw = f"--file {file}", file.read_bytes()
    else:
        option, raw = "--input", (input or "").encode()
    try:
        parsed = jsonlib.loads(raw)
    except ValueError as exc:
        raise InvalidInput(f"{option} is not valid JSON: {exc}", {"field": "input"}) from None
    if not isinstance(parsed, dict):
        raise InvalidInput(
            f'{option} must be a JSON object such as {{"inputs": [...]}}', {"field": "input"}
        )
    return raw


def log_policy(rate: float | None, max_per_minute: int | None) -> PredictionLogPolicy | None:
    """The prediction log policy the options name (None: the server's default)."""
    from pydantic import ValidationError

    from modelhub.domain.predictions import (
        DEFAULT_LOG_MAX_PER_MINUTE,
        DEFAULT_LOG_RATE,
        PredictionLogPolicy,
    )
    from modelhub.errors import InvalidInput

    if rate is None and max_per_minute is None:
        return None
    try:
        return PredictionLogPolicy(
            rate=DEFAULT_LOG_RATE if rate is None else rate,
            max_per_minute=DEFAULT_LOG_MAX_PER_MINUTE if max_per_minute is None else max_per_minute,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidInput(
            f"--log-{str(error['loc'][0]).replace('_', '-')}: {error['msg']}",
            {"field": "prediction_log"},
        ) from None
