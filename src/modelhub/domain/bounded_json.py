"""JSON from outside, parsed with bounds: a hostile document is an InvalidInput, never a crash.

The standard library's parser is the fast path and stays it. Its own limits already
bound the work: nesting deeper than the interpreter's recursion limit raises
RecursionError (checked at every level by the C scanner, so the C stack stays small and
the partial result, at most the size of the input, is dropped), and an integer of more
than `sys.get_int_max_str_digits()` digits raises ValueError. `loads` turns both, and
every syntax error, into one InvalidInput naming the field.

`max_depth` adds a bound for callers that walk what they parsed recursively (dedupe
keys, re-encoding): it costs one pass over the containers, so the inference data
plane, which never recurses into a body (numpy caps dimensions at 64, parameters must
be scalars), does not pass it.
"""

from __future__ import annotations

import json
from typing import Any

from modelhub.errors import InvalidInput

# Deep enough for any real record; shallow enough that code walking it recursively
# stays far below the interpreter's recursion limit.
MAX_JSON_DEPTH = 64


def loads(raw: bytes | str, field: str = "body", max_depth: int | None = None) -> Any:
    """`json.loads(raw)`, or InvalidInput naming `field` when it is not valid, bounded JSON."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise parse_error(exc, field) from None
    if max_depth is not None and nesting_exceeds(value, max_depth):
        raise InvalidInput(
            f"{field} is nested more than {max_depth} levels deep",
            {"field": field, "max_depth": max_depth},
        )
    return value


def parse_error(exc: ValueError | RecursionError, field: str = "body") -> InvalidInput:
    """The InvalidInput for what `json.loads` raised; for a hot path that calls
    `json.loads` itself to save a call, and must still say the same thing."""
    if isinstance(exc, RecursionError):
        return InvalidInput(f"{field} is nested too deeply to be parsed", {"field": field})
    # JSONDecodeError, UnicodeDecodeError, an integer of too many digits
    return InvalidInput(f"{field} is not valid JSON: {exc}", {"field": field})


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Whether lists/objects inside `value` nest more than `limit` levels (iterative)."""
    if type(value) not in (list, dict):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        for child in node.values() if type(node) is dict else node:
            if type(child) is list or type(child) is dict:
                stack.append((child, depth + 1))
    return False
