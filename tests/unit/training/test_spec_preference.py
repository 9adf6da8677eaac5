"""`type: reinforcement_learning` in pipeline.yaml: the char_lm_preference trainer, its
base model and its hyperparameters, each problem reported under its field path."""

from __future__ import annotations

import pytest

from modelhub.domain.enums import ModelType
from modelhub.domain.hyperparameters import CharLMPreferenceHyperparameters
from modelhub.domain.pipelines import PipelineType, TrainerName
from modelhub.errors import InvalidInput
from modelhub.training.spec import load_spec

RL = """
name: persona-rl
type: reinforcement_learning
trainer: char_lm_preference
base_model: persona-lm@production
datasets: [persona-preferences]
max_epochs: 3
hyperparameters: {beta: 0.1, learning_rate: 0.001, batch_size: 8}
result_model: {name: persona-lm}
"""


def problems(text: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        load_spec(text)
    return {error["field"]: error["message"] for error in caught.value.details["errors"]}


def test_a_preference_pipeline_is_accepted_with_its_defaults() -> None:
    spec = load_spec(RL)
    assert spec.type is PipelineType.REINFORCEMENT_LEARNING
    assert spec.trainer == TrainerName.CHAR_LM_PREFERENCE
    assert spec.result_model.type is ModelType.LANGUAGE_MODEL
    hps = spec.trainer_hyperparameters()
    assert isinstance(hps, CharLMPreferenceHyperparameters)
    assert (hps.beta, hps.batch_size, hps.steps, hps.eval_every) == (0.1, 8, None, 50)


def test_it_needs_a_base_model_and_only_this_trainer_runs_it() -> None:
    without_base = RL.replace("base_model: persona-lm@production\n", "")
    assert "starts from a base model" in problems(without_base)["base_model"]
    other = problems(RL.replace("trainer: char_lm_preference", "trainer: char_lm"))
    assert other["trainer"].startswith("char_lm cannot run reinforcement_learning")
    found = problems(RL.replace("reinforcement_learning", "fine_tuning"))
    assert found["trainer"] == (
        "char_lm_preference cannot run fine_tuning; it runs: reinforcement_learning"
    )


@pytest.mark.parametrize(
    ("hyperparameters", "field", "message"),
    [
        ("{beta: 0}", "beta", "greater than 0"),
        ("{beta: -1}", "beta", "greater than 0"),
        ("{beta: 10.5}", "beta", "less than or equal to 10"),
        ("{beta: '0.1'}", "beta", "valid number"),
        ("{beta: true}", "beta", "valid number"),
        ("{learning_rate: 2}", "learning_rate", "less than or equal to 1"),
        ("{learning_rate: 0}", "learning_rate", "greater than 0"),
        ("{steps: 0}", "steps", "greater than or equal to 1"),
        ("{steps: 99999999999}", "steps", "less than or equal to 10000000"),
        ("{batch_size: 5000}", "batch_size", "less than or equal to 4096"),
        ("{weight_decay: 2}", "weight_decay", "less than or equal to 1"),
        ("{bta: 0.1}", "bta", "unknown hyperparameter; this trainer takes: batch_size, beta"),
        ("{context_length: 64}", "context_length", "unknown hyperparameter"),
    ],
)
def test_hyperparameters_out_of_range_are_named(
    hyperparameters: str, field: str, message: str
) -> None:
    text = RL.replace("{beta: 0.1, learning_rate: 0.001, batch_size: 8}", hyperparameters)
    assert message in problems(text)[f"hyperparameters.{field}"]


def test_unknown_top_level_keys_and_every_problem_at_once() -> None:
    text = RL.replace("max_epochs: 3", "max_epochs: 0\nbeta: 0.1").replace(
        "{beta: 0.1, learning_rate: 0.001, batch_size: 8}", "{beta: 20, epochs: 2}"
    )
    found = problems(text)
    assert found["beta"].startswith("unknown field")
    assert "greater than or equal to 1" in found["max_epochs"]
    assert "less than or equal to 10" in found["hyperparameters.beta"]
    assert found["hyperparameters.epochs"] == "set the top-level max_epochs instead"
