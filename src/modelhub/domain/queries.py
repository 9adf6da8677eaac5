"""The one search query: what clients send, the API parses, the service checks, the store runs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VersionQuery:
    """Which versions a search returns; each filter narrows.

    Fields hold text as a user types it (`type="classification"`; an enum member such
    as `ModelType.CLASSIFICATION` is that text too). The registry service checks every
    field, raising InvalidInput that names the bad one, and hands the store a checked
    copy. `text` matches a model's name or description. The newest matching version of
    each model unless `all_versions`.
    """

    name: str | None = None
    type: str | None = None
    framework: str | None = None
    stage: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    include_archived: bool = False
    all_versions: bool = False
    limit: int = 100
    offset: int = 0


MODEL_SORTS = ("name", "updated", "versions", "size")


@dataclass(frozen=True)
class ModelQuery:
    """Which models a model-level listing returns, in which order: one row per model.

    `framework` and `stage` keep the models with at least one (unarchived) version of
    that framework or in that stage; `text` matches the name or description. `sort` is
    one of MODEL_SORTS (`size` is the latest version's, `updated` the newest change to
    the model or its versions); ties fall back to the name.
    """

    type: str | None = None
    framework: str | None = None
    stage: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    include_archived: bool = False
    sort: str = "name"
    descending: bool = False
    limit: int = 50
    offset: int = 0
