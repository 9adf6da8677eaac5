"""JSON from model files, parsed with bounds: nesting depth, integer digits, no NaN.

Model files carry JSON written by whoever uploaded them (safetensors headers, Hugging
Face configs, shard indexes). The standard parser turns a 4,301-digit integer into a
ValueError about interpreter limits and a 100,000-deep array into a RecursionError;
here both, and everything else a JSON document could do to us, become one
`JsonRefused` (a ValueError) whose message is a predicate ("is not valid JSON (...)",
"nests deeper than 64 levels") that each reader puts after the file it read.
"""

from __future__ import annotations

import json
from typing import Any

from modelhub.domain.bounded_json import nesting_exceeds

MAX_DEPTH = 64  # a real config nests a handful of levels; a safetensors header three
MAX_INT_DIGITS = 40  # u64 offsets need 20; anything near the 4,300 limit is an attack


class JsonRefused(ValueError):
    """The text is not JSON, or is JSON beyond the bounds a model file needs."""


def loads_bounded(
    text: str | bytes, *, max_depth: int = MAX_DEPTH, max_int_digits: int = MAX_INT_DIGITS
) -> Any:
    """Parse `text` as JSON within the bounds; raise JsonRefused naming what broke them."""

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > max_int_digits:
            raise JsonRefused(
                f"holds an integer of {len(digits)} digits (at most {max_int_digits})"
            )
        return int(digits)

    def parse_constant(name: str) -> Any:
        raise JsonRefused(f"holds {name}, which is not a JSON number")

    try:
        value = json.loads(text, parse_int=parse_int, parse_constant=parse_constant)
    except RecursionError as exc:  # the C scanner's own guard, far beyond max_depth
        raise JsonRefused(f"nests deeper than {max_depth} levels") from exc
    except JsonRefused:
        raise
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise JsonRefused(f"is not valid JSON ({_first_line(exc)})") from exc
    if nesting_exceeds(value, max_depth):
        raise JsonRefused(f"nests deeper than {max_depth} levels")
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
