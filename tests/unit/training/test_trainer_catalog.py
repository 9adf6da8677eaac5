"""Trainer traits: what a spec checks against each trainer, built-in or plugin."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelhub.domain.pipelines import PipelineSpec, spec_problems
from modelhub.domain.trainer_catalog import (
    BUILTIN_TRAINERS,
    TrainerCatalog,
    TrainerName,
    traits_from,
)
from modelhub.training.trainers import TRAINERS


class Knobs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    depth: int = Field(default=3, ge=1, le=32)
    epochs: int = 10


class Forest:
    pipeline_types = frozenset({"pre_training", "fine_tuning"})
    result_type = "classification"
    hyperparameter_model = Knobs
    base_trainer = "forest"

    def train(self, ctx: Any) -> Any:
        raise AssertionError("never run here")


CATALOG = TrainerCatalog(
    {**BUILTIN_TRAINERS.traits, "forest": traits_from(Forest())},
    failed={"broken": "modelhub.trainers plugin 'broken' from mh-broken failed to load: boom"},
)


def spec(**fields: Any) -> dict[str, Any]:
    return {
        "name": "p",
        "type": "pre_training",
        "trainer": "forest",
        "datasets": ["d"],
        "result_model": {"name": "m"},
    } | fields


def test_each_built_in_trainer_module_declares_its_row_of_the_table() -> None:
    for name, target in TRAINERS.items():
        module = importlib.import_module(target)
        assert traits_from(module, builtin=True) == BUILTIN_TRAINERS.traits[name], name


def test_a_plugin_trainers_declarations_check_the_spec_as_a_built_ins_do() -> None:
    parsed = PipelineSpec.model_validate(
        spec(hyperparameters={"depth": 5}), context={"trainers": CATALOG}
    )
    assert parsed.trainer == "forest" and parsed.result_model.type == "classification"
    problems = dict(spec_problems(spec(hyperparameters={"depth": 99, "leaves": 2}), CATALOG))
    assert "less than or equal to 32" in problems["hyperparameters.depth"]
    assert problems["hyperparameters.leaves"] == "unknown hyperparameter; this trainer takes: depth"
    runs = dict(spec_problems(spec(type="reinforcement_learning", base_model="x@1"), CATALOG))
    assert (
        runs["trainer"]
        == "forest cannot run reinforcement_learning; it runs: fine_tuning, pre_training"
    )
    parallel = dict(spec_problems(spec(distributed={"workers": 2}), CATALOG))
    assert parallel["distributed"] == "the forest trainer does not train data-parallel"


def test_without_the_catalog_a_plugin_trainer_is_unknown_and_a_failed_one_says_why() -> None:
    with pytest.raises(
        ValidationError,
        match="unknown trainer 'forest'; choose one of: tabular_classifier, text_classifier",
    ):
        PipelineSpec.model_validate(spec())
    unknown = dict(spec_problems(spec(trainer="forst"), CATALOG))["trainer"]
    assert unknown.endswith("char_lm_preference, script, forest")
    failed = dict(spec_problems(spec(trainer="broken"), CATALOG))["trainer"]
    assert failed == (
        "trainer plugin 'broken' cannot be used: modelhub.trainers plugin 'broken' from "
        "mh-broken failed to load: boom"
    )


def test_a_plugin_cannot_run_a_federated_pipeline() -> None:
    class Federated(Forest):
        pipeline_types = frozenset({"federated_learning"})

    catalog = TrainerCatalog({**BUILTIN_TRAINERS.traits, "forest": traits_from(Federated())})
    problems = spec_problems(spec(type="federated_learning"), catalog)
    assert ("trainer", "a federated run trains with the built-in tabular_classifier") in problems


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("pipeline_types", "pre_training", "must be a set of pipeline types"),
        ("pipeline_types", frozenset(), "pipeline_types: empty"),
        ("pipeline_types", {"pre_training", "dreaming"}, "pipeline_types: dreaming; use some of"),
        ("result_type", "oracle", "result_type 'oracle'"),
        ("hyperparameter_model", dict, "must be a pydantic model class"),
        ("base_trainer", 3, "base_trainer must be a trainer name"),
        ("data_parallel", "yes", "data_parallel must be true or false"),
    ],
)
def test_a_bad_declaration_is_a_type_error_naming_it(
    attribute: str, value: object, message: str
) -> None:
    plugin = type("Plugin", (Forest,), {attribute: value})()
    with pytest.raises(TypeError, match=message):
        traits_from(plugin)


def test_the_trainer_names_are_still_the_built_in_enum() -> None:
    assert BUILTIN_TRAINERS.names() == [t.value for t in TrainerName]
