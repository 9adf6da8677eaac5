"""Read pipeline.yaml and report every problem in it at once.

`modelhub pipelines create pipeline.yaml` calls `load_spec`: one InvalidInput
lists each problem on its own line, led by the field path it concerns
(`datasets[1]: ...`, `hyperparameters.epochs: ...`), so a user fixes them all
in one pass instead of one per try.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from modelhub.domain.limits import MAX_YAML_CHARS, load_yaml
from modelhub.domain.pipelines import (
    CheckpointPolicy,
    DifferentialPrivacy,
    Distributed,
    Federated,
    KeepBest,
    PipelineSpec,
    Resources,
    ResultModel,
    Script,
    spec_problems,
)
from modelhub.domain.search import Search
from modelhub.domain.trainer_catalog import TrainerCatalog
from modelhub.errors import InvalidInput
from modelhub.training.trainers import installed_trainers

# Sections whose unknown keys get a "did you mean" hint.
SECTIONS: dict[str, type[BaseModel]] = {
    "checkpoint": CheckpointPolicy,
    "keep_best": KeepBest,
    "resources": Resources,
    "result_model": ResultModel,
    "script": Script,
    "distributed": Distributed,
    "federated": Federated,
    "differential_privacy": DifferentialPrivacy,
    "search": Search,
}


def load_spec(source: str | Path) -> PipelineSpec:
    """Parse and validate a pipeline spec from YAML text or a file path.

    A `Path` (or a one-line string naming an existing .yaml/.yml file) is read;
    any other string is taken as the YAML itself. Raises InvalidInput listing
    every problem, with `details["errors"]` as [{"field", "message"}, ...].
    """
    return parse_spec(_read(source))


def named_script(text: str) -> str | None:
    """The `script.path` a spec names, if it names one; None for anything else.

    Lenient on purpose: the CLI reads the script beside pipeline.yaml before the
    spec is checked, and the check then reports every problem, this one included.
    """
    try:
        data = load_yaml(text)
    except yaml.YAMLError:
        return None
    script = data.get("script") if isinstance(data, Mapping) else None
    path = script.get("path") if isinstance(script, Mapping) else None
    return path if isinstance(path, str) else None


def parse_spec(text: str, trainers: TrainerCatalog | None = None) -> PipelineSpec:
    """Parse and validate YAML text, never taken for a file name (what a server receives).

    `trainers` are the trainers it may name: by default the built-ins and the plugin
    trainers installed here (`installed_trainers`)."""
    catalog = trainers if trainers is not None else installed_trainers()
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise spec_error([("", _yaml_message(exc))]) from None
    if not isinstance(data, Mapping):
        kind = "an empty document" if data is None else f"a {type(data).__name__}"
        raise spec_error([("", f"a pipeline spec is a mapping of fields, this is {kind}")])
    problems = [(path, msg) for path, msg in spec_problems(data, catalog)]
    try:
        spec = PipelineSpec.model_validate(data, context={"trainers": catalog})
    except ValidationError as exc:
        problems = _pydantic_problems(exc) + problems
        raise spec_error(problems) from None
    return spec


def stored_spec(data: Mapping[str, Any]) -> PipelineSpec:
    """A spec stored with a pipeline or run, validated again against the trainers
    installed here (a plugin trainer's spec needs its plugin's declarations)."""
    return PipelineSpec.model_validate(data, context={"trainers": installed_trainers()})


def _read(source: str | Path) -> str:
    if isinstance(source, Path) or (
        "\n" not in source and source.endswith((".yaml", ".yml")) and Path(source).is_file()
    ):
        return read_spec_file(Path(source))
    return source


def read_spec_file(path: Path) -> str:
    """A pipeline.yaml's text; InvalidInput when it cannot be read or is too large to be one."""
    try:
        if path.stat().st_size > 4 * MAX_YAML_CHARS:  # UTF-8 takes at most 4 bytes a character
            raise InvalidInput(f"{path} is too large for a pipeline spec", {"path": str(path)})
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}", {"path": str(path)}) from None


def _yaml_message(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"not valid YAML: {problem}"
    where = f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None and start.line != mark.line:
        where += f" ({context} at line {start.line + 1})"
    return where


def _pydantic_problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors():
        if error["type"] == "pipeline_rules":
            continue  # spec_problems already reported these, each with its own path
        loc = error["loc"]
        path = _path(loc)
        if error["type"] == "extra_forbidden":
            message = "unknown field" + _suggestion(loc)
        elif error["type"] == "missing":
            message = "required"
        else:
            message = error["msg"].removeprefix("Value error, ")
        problems.append((path, message))
    return problems


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("tokenize", "normalize", "dedupe", "filter") and path.endswith("]"):
            continue  # the union tag pydantic inserts: preprocessing[0].max_length reads better
        else:
            path += f".{part}" if path else str(part)
    return path


def _suggestion(loc: tuple[int | str, ...]) -> str:
    key = str(loc[-1])
    parent = str(loc[-2]) if len(loc) > 1 else None
    model = PipelineSpec if parent is None else SECTIONS.get(parent)
    if model is None:
        return ""
    close = difflib.get_close_matches(key, list(model.model_fields), n=1)
    return f"; did you mean {close[0]}?" if close else ""


def spec_error(problems: list[tuple[str, str]]) -> InvalidInput:
    """One InvalidInput listing every (field, message) problem, one per line."""
    errors: list[dict[str, Any]] = [{"field": path, "message": msg} for path, msg in problems]
    lines = [f"{path}: {msg}" if path else msg for path, msg in problems]
    count = len(lines)
    head = f"pipeline spec has {count} problem{'s' if count != 1 else ''}:"
    return InvalidInput("\n".join([head, *lines]), {"errors": errors})
