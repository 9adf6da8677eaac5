"""YAML from an imported model (MLflow's MLmodel, conda.yaml), parsed with bounds.

`yaml.safe_load` builds no objects but plain ones, yet a document can still be huge,
nest deeply, or use anchors and aliases to make a small text stand for an enormous
value. Here the text is bounded in size, its events are counted and their nesting
measured before anything is built, and aliases are refused (no real MLmodel uses one).
"""

from __future__ import annotations

from typing import Any

MAX_YAML_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_EVENTS = 100_000


class YamlRefused(ValueError):
    """The text is not YAML, or is YAML beyond what a model's metadata needs."""


def load_yaml_bounded(text: bytes) -> Any:
    """Parse `text` within the bounds; raise YamlRefused with a predicate naming what broke."""
    import yaml

    if len(text) > MAX_YAML_BYTES:
        raise YamlRefused(f"is {len(text)} bytes, more than {MAX_YAML_BYTES}")
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlRefused("is not UTF-8 text") from exc
    depth = events = 0
    try:
        for event in yaml.parse(decoded, Loader=yaml.SafeLoader):
            events += 1
            if events > MAX_EVENTS:
                raise YamlRefused(f"holds more than {MAX_EVENTS} YAML nodes")
            if isinstance(event, yaml.AliasEvent):
                raise YamlRefused("uses a YAML alias (*name), which a model's metadata never needs")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise YamlRefused(f"nests deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.safe_load(decoded)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "syntax"
        raise YamlRefused(f"is not valid YAML ({first})") from exc
