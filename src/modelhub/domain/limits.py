"""Bounds every hostile input meets at the edge: integers, text and YAML documents.

One place for the numbers (a 64-bit integer is the widest both SQLite and
PostgreSQL store), the annotated types the API and the spec models declare with
them, and `load_yaml`, the one YAML loader the control plane uses: it refuses
anchors and aliases (a kilobyte of nested aliases expands to gigabytes, and an
alias can refer to itself), and bounds nesting depth, node count, integer size and
document size while the document is composed, before anything is built from it.
Every refusal is a `yaml.YAMLError` carrying the line and column, so a caller
reports it like any other YAML mistake.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import yaml
from annotated_types import Ge, Le

from modelhub.errors import InvalidInput

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
MAX_INT_DIGITS = 19  # len(str(INT64_MAX)): no wider integer is ever read
MAX_YAML_CHARS = 1_000_000  # a pipeline spec is a page or two; a megabyte is generous
MAX_YAML_DEPTH = 32
MAX_YAML_NODES = 20_000

Int64 = Annotated[int, Ge(INT64_MIN), Le(INT64_MAX)]
"""An integer a database column can hold."""

NonNegativeInt64 = Annotated[int, Ge(0), Le(INT64_MAX)]
PositiveInt64 = Annotated[int, Ge(1), Le(INT64_MAX)]


def check_text(value: str, field: str) -> str:
    """`value` unchanged, or InvalidInput when it cannot be stored as UTF-8.

    A lone surrogate (`"\\ud800"` in JSON, or an undecodable byte in a command-line
    argument) is a valid Python string that no database can encode.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            f"{field}: text holds a character that is not valid Unicode "
            f"(a lone surrogate at position {exc.start})",
            {"field": field},
        ) from None
    return value


def _walk(value: object) -> Iterator[tuple[str, object]]:
    """(path, item) for a JSON-like value and everything inside it, keys included.

    Iterative, so a deeply nested request body cannot exhaust the interpreter's stack.
    """
    stack: list[tuple[str, object]] = [("", value)]
    while stack:
        path, item = stack.pop()
        yield path, item
        if isinstance(item, dict):
            for key, child in reversed(item.items()):
                where = f"{path}.{key}" if path else str(key)
                stack.append((where, child))
                stack.append((where, key))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{i}]", child) for i, child in reversed(list(enumerate(item))))


def unencodable_text(value: object) -> str | None:
    """Where the first string in a JSON-like value that UTF-8 cannot encode is, or None.

    Keys and values of mappings and items of lists are looked at. The path returned
    is printable: a bad character in a key is shown as `\\udXXX`. Used by the API's
    request bodies to refuse all such text at once.
    """
    for path, item in _walk(value):
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return (path or "value").encode("utf-8", "backslashreplace").decode("utf-8")
    return None


def non_finite_number(value: object) -> str | None:
    """Where the first NaN or infinity in a JSON-like value is, or None.

    Python's JSON reader takes `NaN`, `Infinity` and `1e999`; PostgreSQL's JSON refuses them.
    """
    for path, item in _walk(value):
        if isinstance(item, float) and not math.isfinite(item):
            return path or "value"
    return None


class LimitError(yaml.MarkedYAMLError):  # type: ignore[misc]  # PyYAML ships no types
    """A YAML document broke one of the bounds above."""


class BoundedLoader(yaml.SafeLoader):  # type: ignore[misc]
    """yaml.SafeLoader without anchors or aliases; depth, nodes, numbers and text bounded.

    Timestamps stay text: a date in a spec is read by the field that wants it, and an
    impossible one (month 13, year 0) is not an uncaught ValueError.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()
        anchor = getattr(event, "anchor", None)
        if isinstance(event, yaml.AliasEvent) or anchor is not None:
            raise LimitError(
                None, None, "anchors and aliases (& and *) are not allowed", event.start_mark
            )
        self._nodes += 1
        if self._nodes > MAX_YAML_NODES:
            raise LimitError(
                None, None, f"more than {MAX_YAML_NODES} values in one document", event.start_mark
            )
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise LimitError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark
            )
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "").lstrip("+-")
        value: int | None = None
        if len(text) <= MAX_INT_DIGITS + 2:  # room for a 0x / 0o / 0b prefix
            value = int(self.construct_yaml_int(node))
        if value is None or not INT64_MIN <= value <= INT64_MAX:
            raise LimitError(
                None, None, "integer out of range (at most 2**63 - 1)", node.start_mark
            )
        return value

    def construct_text(self, node: yaml.ScalarNode) -> str:
        value = str(self.construct_scalar(node))
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            problem = "text holds a lone surrogate, which is not valid Unicode"
            raise LimitError(None, None, problem, node.start_mark) from None
        return value

    def construct_finite_float(self, node: yaml.ScalarNode) -> float:
        value = float(self.construct_yaml_float(node))
        if not math.isfinite(value):
            problem = "numbers must be finite (no .inf or .nan)"
            raise LimitError(None, None, problem, node.start_mark)
        return value


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_bounded_int)
BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_finite_float)
BoundedLoader.add_constructor("tag:yaml.org,2002:str", BoundedLoader.construct_text)
BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", BoundedLoader.construct_text)


def load_yaml(text: str) -> Any:
    """One YAML document through BoundedLoader; raises yaml.YAMLError for anything refused."""
    if len(text) > MAX_YAML_CHARS:
        raise LimitError(None, None, f"the document is longer than {MAX_YAML_CHARS:,} characters")
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def load_yaml_mapping(
    text: str, what: str, field: str, fields: Sequence[str] = ()
) -> dict[str, Any]:
    """A YAML document that must be a mapping (a policy, an ethics file): InvalidInput
    naming `what` when it is not valid, bounded YAML or not a mapping (`fields`, when
    given, are listed as what it should hold and sent as details["missing"])."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput(f"the {what} is not valid YAML: {problem}", {"field": field}) from None
    if not isinstance(data, dict):
        kind = "an empty document" if data is None else f"a {type(data).__name__}"
        listed = f" ({', '.join(fields)})" if fields else ""
        article = "an" if what[0] in "aeiou" else "a"
        details: dict[str, Any] = {"field": field}
        if fields:
            details["missing"] = list(fields)
        raise InvalidInput(
            f"{article} {what} is a mapping of fields{listed}, this is {kind}", details
        )
    return data
