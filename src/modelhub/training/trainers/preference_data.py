"""Preference pairs for the char LM preference trainer, read from a JSONL dataset.

Each line is a JSON object of one of two kinds (extra fields are ignored, so rows
built from persona interactions may carry their ids):

- a pair: `{"prompt": str, "chosen": str, "rejected": str}`, the chosen response
  preferred to the rejected one;
- a rated response: `{"prompt": str, "response": str, "rating": number}`. The
  responses to one prompt are sorted by rating and paired best with worst, second
  best with second worst ..., each pair only where the ratings differ.

Every problem names its line: a line that is not a JSON object, a missing or
non-text field, an empty response, chosen equal to rejected, a rating that is not
a finite number. No torch here: the trainer encodes the pairs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelhub.errors import InvalidInput

MAX_ERRORS_SHOWN = 5


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str


@dataclass(frozen=True)
class _Rated:
    line: int
    response: str
    rating: float


def read_pairs(path: Path) -> list[Pair]:
    """The preference pairs of a JSONL file, pairs first in file order, then the pairs
    made from rated responses (by prompt, in the order each prompt first appears).

    Raises InvalidInput naming the first bad lines, or when no pair results.
    """
    if path.suffix.lower() != ".jsonl":
        raise InvalidInput(
            f"a preference dataset is JSONL (prompt, chosen, rejected per line), not "
            f"{path.suffix.removeprefix('.') or 'a file without a suffix'}",
            {"dataset": path.name},
        )
    pairs: list[Pair] = []
    rated: dict[str, list[_Rated]] = {}
    problems: list[str] = []
    with open(path, encoding="utf-8", errors="strict") as lines:
        try:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    _read_row(line, number, pairs, rated)
                except InvalidInput as exc:
                    problems.append(exc.message)
                    if len(problems) >= MAX_ERRORS_SHOWN:
                        break
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"the dataset is not UTF-8 text: {exc.reason}") from None
    if problems:
        raise InvalidInput(
            "bad preference rows: " + "; ".join(problems),
            {"errors": problems, "dataset": path.name},
        )
    from_ratings = [pair for prompt, rows in rated.items() for pair in _paired(prompt, rows)]
    if rated and not from_ratings and not pairs:
        raise InvalidInput(
            "no prompt has two responses with different ratings: nothing to prefer",
            {"dataset": path.name},
        )
    pairs += from_ratings
    if not pairs:
        raise InvalidInput("the dataset holds no preference rows", {"dataset": path.name})
    return pairs


def _json_object(line: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON ({exc.msg})") from None
    except RecursionError:  # a hostile row nested deeper than the parser goes
        raise InvalidInput("JSON nested too deeply") from None
    if not isinstance(row, dict):
        raise InvalidInput(f"a {type(row).__name__}, not a JSON object")
    return row


def _read_row(line: str, number: int, pairs: list[Pair], rated: dict[str, list[_Rated]]) -> None:
    try:
        row = _json_object(line)
        if "chosen" in row or "rejected" in row:
            prompt, chosen, rejected = (_text(row, key) for key in ("prompt", "chosen", "rejected"))
            for key, value in (("chosen", chosen), ("rejected", rejected)):
                if not value:
                    raise InvalidInput(f'"{key}" is empty')
            if chosen == rejected:
                raise InvalidInput('"chosen" and "rejected" are the same text: nothing to prefer')
            pairs.append(Pair(prompt, chosen, rejected))
        elif "response" in row or "rating" in row:
            prompt, response = _text(row, "prompt"), _text(row, "response")
            if not response:
                raise InvalidInput('"response" is empty')
            rating = row.get("rating")
            if not isinstance(rating, int | float) or isinstance(rating, bool):
                raise InvalidInput('"rating" must be a number')
            if not math.isfinite(rating):
                raise InvalidInput('"rating" must be a finite number')
            rated.setdefault(prompt, []).append(_Rated(number, response, float(rating)))
        else:
            raise InvalidInput(
                'needs "prompt", "chosen" and "rejected" (or "prompt", "response" and "rating")'
            )
    except InvalidInput as exc:
        raise InvalidInput(f"line {number}: {exc.message}", {"line": number}) from None


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str):
        shown = "missing" if key not in row else f"a {type(value).__name__}"
        raise InvalidInput(f'"{key}" must be text, it is {shown}')
    return value


def _paired(prompt: str, responses: list[_Rated]) -> list[Pair]:
    ranked = sorted(responses, key=lambda r: (-r.rating, r.line))
    pairs = []
    for best, worst in zip(ranked, reversed(ranked), strict=True):
        if best.rating <= worst.rating:  # met in the middle, or the rest are ties
            break
        if best.response != worst.response:
            pairs.append(Pair(prompt, best.response, worst.response))
    return pairs
