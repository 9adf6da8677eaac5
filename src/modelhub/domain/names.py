"""Validation of every name a user can type: models, aliases, tags, labels, file paths."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from modelhub.domain.enums import Stage
from modelhub.domain.limits import INT64_MAX, MAX_INT_DIGITS
from modelhub.errors import InvalidInput

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,63}\Z")
TAG_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.:/-]{0,63}\Z")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?\Z",
    re.ASCII,  # \d alone would take '٣' and other non-ASCII digits
)
RESERVED_ALIASES = frozenset({"latest"} | {s.value for s in Stage})
MAX_TAG_VALUE = 256
MAX_TAGS = 64  # a model's, or a search's filters: each is a join in SQL
MAX_LABEL = 64
MAX_LICENSE = 128
MAX_PATH_COMPONENT_BYTES = 255  # NAME_MAX on Linux, macOS and Windows file systems


def check_model_name(name: str) -> str:
    if not MODEL_NAME.match(name) or ".." in name:
        raise InvalidInput(
            f"invalid model name {name!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            {"field": "name", "value": name},
        )
    return name


def check_alias(alias: str) -> str:
    if not ALIAS.match(alias):
        raise InvalidInput(
            f"invalid alias {alias!r}: use lowercase letters, digits, '_' or '-', "
            "starting with a letter",
            {"field": "alias", "value": alias},
        )
    if alias in RESERVED_ALIASES:
        raise InvalidInput(
            f"alias {alias!r} is reserved (latest and the stage names resolve automatically)",
            {"field": "alias", "value": alias},
        )
    return alias


def check_label(label: str) -> str:
    if len(label) > MAX_LABEL or not SEMVER.match(label):
        raise InvalidInput(
            f"invalid version label {label!r}: expected semantic versioning such as 1.2.0",
            {"field": "label", "value": label},
        )
    return label


def check_license(license: str) -> str:
    if len(license) > MAX_LICENSE or "\x00" in license or not _encodable(license):
        raise InvalidInput(
            f"invalid license: at most {MAX_LICENSE} characters", {"field": "license"}
        )
    return license


def parse_tags(pairs: list[str]) -> dict[str, str]:
    """Parse `key=value` strings as typed on a command line."""
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"invalid tag {pair!r}: expected key=value", {"field": "tag"})
        tags[key.strip()] = value.strip()
    return check_tags(tags)


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    """Tags of a model or a search: at most MAX_TAGS, keys by TAG_KEY, values storable."""
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", {"field": "tag"})
    for key, value in tags.items():
        if not TAG_KEY.match(key):
            raise InvalidInput(f"invalid tag key {key!r}", {"field": "tag", "value": key})
        if len(value) > MAX_TAG_VALUE or "\x00" in value or not _encodable(value):
            raise InvalidInput(f"invalid value for tag {key!r}", {"field": "tag", "value": key})
    return tags


def check_relative_path(path: str) -> str:
    """A file path inside a version: relative, forward slashes, never leaving the root."""
    bad = (
        not path
        or "\x00" in path
        or not _encodable(path)
        or "\\" in path
        or path.startswith("/")
        or (len(path) > 1 and path[1] == ":")
    )
    parts = PurePosixPath(path).parts
    if bad or not parts or any(part in ("..", ".", "") for part in parts) or len(path) > 1024:
        raise InvalidInput(
            f"unsafe file path {path!r}: paths must be relative and stay inside the version",
            {"field": "path", "value": path},
        )
    # Every file system we write to (staging, downloads, run folders) caps a name here.
    long = next((part for part in parts if len(part.encode()) > MAX_PATH_COMPONENT_BYTES), None)
    if long is not None:
        raise InvalidInput(
            f"file path {path!r} has a component of {len(long.encode())} bytes; "
            f"the limit is {MAX_PATH_COMPONENT_BYTES}",
            {"field": "path", "value": path},
        )
    return str(PurePosixPath(path))


@dataclass(frozen=True)
class ModelRef:
    """`name`, `name@3`, `name@latest`, `name@production`, `name@champion`."""

    name: str
    selector: str = "latest"

    @property
    def version_number(self) -> int | None:
        return int(self.selector) if _is_number(self.selector) else None

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


def _is_number(text: str) -> bool:
    # str.isdigit() also accepts '²' and other non-ASCII digits that int() rejects or reads.
    return text.isascii() and text.isdigit()


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_version_number(text: str, field: str = "version") -> int:
    """A version number typed as text: ASCII digits, 1 to 2**63 - 1 (what a database holds)."""
    if not _is_number(text):
        raise InvalidInput(f"invalid version number {text!r}", {"field": field})
    if len(text.lstrip("0")) > MAX_INT_DIGITS or not 1 <= int(text) <= INT64_MAX:
        raise InvalidInput(
            f"version number {text[:30]!r} is out of range (1 to 2**63 - 1)", {"field": field}
        )
    return int(text)


def parse_ref(text: str, default: str = "latest") -> ModelRef:
    name, sep, selector = text.partition("@")
    check_model_name(name)
    if sep and not selector:
        raise InvalidInput(f"empty version after '@' in {text!r}", {"field": "ref"})
    selector = selector or default
    if not _is_number(selector) and not ALIAS.match(selector):
        raise InvalidInput(f"invalid version selector {selector!r}", {"field": "ref"})
    if _is_number(selector):
        selector = str(parse_version_number(selector, "ref"))
    return ModelRef(name, selector)
