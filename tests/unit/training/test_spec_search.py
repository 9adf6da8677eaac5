"""The spec's `search:` block: a good one reads back, each bad one is named by its path."""

from __future__ import annotations

import pytest

from modelhub.domain.search import MAX_CHOICES, MAX_SEARCH_PARAMS
from modelhub.errors import InvalidInput
from modelhub.training.spec import load_spec

TABULAR = """
name: intents
type: pre_training
trainer: tabular_classifier
datasets: [persona_intents]
hyperparameters: {batch_size: 16}
result_model: {name: intent-classifier}
"""


def problems(search: str, base: str = TABULAR) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        load_spec(base + search)
    return {error["field"]: error["message"] for error in caught.value.details["errors"]}


def test_a_search_reads_back_with_its_defaults() -> None:
    spec = load_spec(
        TABULAR
        + """search:
  params:
    learning_rate: {type: float, low: 1.0e-4, high: 1, log: true}
    batch_size: {type: int, low: 8, high: 64, step: 8}
    hidden: {type: categorical, choices: [16, 64]}
"""
    )
    assert spec.search is not None
    assert set(spec.search.params) == {"learning_rate", "batch_size", "hidden"}
    assert spec.search.params["learning_rate"].log
    assert (spec.search.metric, spec.search.goal) == ("val_loss", "minimize")
    assert (spec.search.pruner, spec.search.startup_trials, spec.search.seed) == ("median", 2, 0)


def test_the_direction_follows_the_metric_unless_set() -> None:
    one = "search: {params: {learning_rate: {type: float, low: 0.001, high: 0.1}}, "
    accuracy = load_spec(TABULAR + one + "metric: val_accuracy}\n").search
    assert accuracy is not None and accuracy.goal == "maximize"
    forced = load_spec(TABULAR + one + "metric: val_accuracy, direction: minimize}\n").search
    assert forced is not None and forced.goal == "minimize"


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("{type: float, low: 0.1, high: 0.1}", "empty or inverted range"),
        ("{type: float, low: 0.5, high: 0.1}", "empty or inverted range"),
        ("{type: int, low: 64, high: 8}", "empty or inverted range"),
        ("{type: float, low: 0, high: 1, log: true}", "a log range must stay above 0"),
        ("{type: float, low: -1, high: 1, log: true}", "a log range must stay above 0"),
        ("{type: float, low: 0.001, high: 1, log: true, step: 0.1}", "log and step"),
        ("{type: float, low: 0.1, high: 0.2, step: 0.5}", "wider than the range"),
        ("{type: float, high: 1}", "needs low and high"),
        ("{type: categorical}", "needs choices"),
        ("{type: categorical, choices: []}", "needs choices"),
        ("{type: categorical, choices: [1, 1]}", "repeat"),
        ("{type: categorical, choices: [1, 2], low: 1}", "not low/high/log/step"),
        ("{type: float, low: 0.1, high: 1, choices: [1]}", "not choices"),
    ],
)
def test_a_bad_parameter_is_named_by_its_path(param: str, message: str) -> None:
    found = problems(f"search: {{params: {{learning_rate: {param}}}}}\n")
    assert message in found["search.params.learning_rate"], found


def test_an_int_parameter_takes_whole_numbers() -> None:
    found = problems("search: {params: {batch_size: {type: int, low: 8.5, high: 64}}}\n")
    assert "whole numbers" in found["search.params.batch_size"]


def test_an_unknown_hyperparameter_names_what_the_trainer_takes() -> None:
    found = problems("search: {params: {learnin_rate: {type: float, low: 0.1, high: 1}}}\n")
    message = found["search.params.learnin_rate"]
    assert "unknown hyperparameter" in message and "learning_rate" in message


def test_names_the_spec_owns_are_not_searched() -> None:
    found = problems("search: {params: {epochs: {type: int, low: 1, high: 5}}}\n")
    assert "top-level" in found["search.params.epochs"]


def test_a_range_the_trainer_refuses_is_refused_at_create() -> None:
    found = problems("search: {params: {weight_decay: {type: float, low: -1, high: 1}}}\n")
    assert "refuses -1.0" in found["search.params.weight_decay"]
    found = problems("search: {params: {batch_size: {type: float, low: 8, high: 64}}}\n")
    assert "valid integer" in found["search.params.batch_size"]


def test_too_many_params_or_choices_are_refused() -> None:
    many = ", ".join(f"p{i}: {{type: float, low: 0, high: 1}}" for i in range(17))
    assert MAX_SEARCH_PARAMS == 16
    assert "search.params" in problems(f"search: {{params: {{{many}}}}}\n")
    choices = ", ".join(str(i) for i in range(MAX_CHOICES + 1))
    hidden = f"{{type: categorical, choices: [{choices}]}}"
    found = problems(f"search: {{params: {{hidden: {hidden}}}}}\n")
    assert "search.params.hidden.choices" in found


def test_an_empty_search_and_unknown_fields_are_refused() -> None:
    assert "search.params" in problems("search: {params: {}}\n")
    found = problems(
        "search: {params: {learning_rate: {type: float, low: 0.1, high: 1}}, "
        "pruner: fast, metrik: x, direction: up}\n"
    )
    assert "median" in found["search.pruner"]
    assert "did you mean metric" in found["search.metrik"]
    assert "search.direction" in found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        "search: {params: {learning_rate: {type: float, low: 0, high: 1, log: true}, "
        "hidden: {type: categorical}, nope: {type: int, low: 1, high: 2}}}\n"
    )
    assert {"search.params.learning_rate", "search.params.hidden", "search.params.nope"} <= set(
        found
    )


def test_a_script_trainer_may_search_any_name() -> None:
    script = TABULAR.replace("tabular_classifier", "script") + "script: {path: train.py}\n"
    spec = load_spec(script + "search: {params: {my_knob: {type: int, low: 1, high: 4}}}\n")
    assert spec.search is not None and "my_knob" in spec.search.params
