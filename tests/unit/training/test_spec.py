from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.domain.enums import ModelType
from modelhub.domain.pipelines import (
    PipelineSpec,
    PipelineType,
    Priority,
    TrainerName,
    parse_memory,
)
from modelhub.errors import InvalidInput
from modelhub.training.spec import load_spec
from modelhub.training.trainers import TRAINERS

DOC_EXAMPLE = Path(__file__).parents[3] / "docs" / "pipelines.md"

MINIMAL = """
name: intents-pretrain
type: pre_training
trainer: tabular_classifier
datasets: [persona_intents]
result_model: {name: intent-classifier}
"""


def problems(text: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        load_spec(text)
    errors = caught.value.details["errors"]
    for error in errors:
        assert f"{error['field']}: {error['message']}" in caught.value.message.splitlines()
    return {error["field"]: error["message"] for error in errors}


def example_yaml() -> str:
    text = DOC_EXAMPLE.read_text()
    return text.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = load_spec(MINIMAL)
    assert spec.type is PipelineType.PRE_TRAINING
    assert spec.base_model is None
    assert spec.validation_split == 0.2 and spec.seed == 0
    assert spec.max_epochs == 10 and spec.priority is Priority.NORMAL
    assert spec.checkpoint.every_epoch and spec.checkpoint.keep_last == 3
    assert spec.resources.cpus == 1 and spec.resources.memory == 2 * 1024**3
    assert spec.resources.gpus == 0
    assert spec.result_model.type is ModelType.CLASSIFICATION
    assert spec.preprocessing == [] and spec.hyperparameters == {}


def test_documented_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(example_yaml())
    spec = load_spec(path)
    assert load_spec(str(path)) == spec
    assert spec.trainer == TrainerName.TEXT_CLASSIFIER
    assert spec.type is PipelineType.FINE_TUNING
    assert spec.base_model == "intent-classifier@champion"
    assert [str(d) for d in spec.datasets] == ["persona_intents@3", "persona_intents_extra@latest"]
    assert [step.step for step in spec.preprocessing] == ["dedupe", "filter", "tokenize"]
    assert spec.resources.memory == 4 * 1024**3
    assert spec.checkpoint.keep_best is not None and spec.checkpoint.keep_best.mode == "max"
    assert spec.priority is Priority.HIGH


def test_many_mistakes_are_reported_together() -> None:
    found = problems(
        """
name: bad name!
type: fine_tuning
trainer: tabular_classifier
datasets: [persona_intents, "other@0"]
preprocessing:
  - {step: tokenize, max_length: 0}
  - {step: frobnicate}
validation_split: 1.5
hyperparameters: {epochs: 3, learning_rate: -1}
resources: {memory: lots}
priority: asap
hyperparams: {}
result_model: {name: intent-classifier}
"""
    )
    assert "invalid model name" in found["name"]
    assert "starts from a base model" in found["base_model"]
    assert "cannot run fine_tuning" in found["trainer"]
    assert "invalid dataset version" in found["datasets[1]"]
    assert "greater than or equal to 1" in found["preprocessing[0].max_length"]
    assert "frobnicate" in found["preprocessing[1]"]
    assert "less than 1" in found["validation_split"]
    assert "max_epochs" in found["hyperparameters.epochs"]
    assert "greater than 0" in found["hyperparameters.learning_rate"]
    assert "unreadable size" in found["resources.memory"]
    assert "urgent" in found["priority"]
    assert found["hyperparams"] == "unknown field; did you mean hyperparameters?"
    assert len(found) == 12


def test_missing_fields_and_unknown_nested_keys() -> None:
    found = problems("name: x\ncheckpoint: {keep_lst: 2}\nresources: {gpu: 1}\n")
    for field in ("type", "trainer", "datasets", "result_model"):
        assert found[field] == "required"
    assert found["checkpoint.keep_lst"] == "unknown field; did you mean keep_last?"
    assert found["resources.gpu"] == "unknown field; did you mean gpus?"


def test_reinforcement_learning_needs_its_trainer_and_a_base() -> None:
    found = problems(MINIMAL.replace("pre_training", "reinforcement_learning"))
    assert found["trainer"].startswith("tabular_classifier cannot run reinforcement_learning")
    assert "starts from a base model" in found["base_model"]


def test_base_model_forbidden_for_pre_training() -> None:
    found = problems(MINIMAL + "base_model: intent-classifier@champion\n")
    assert "trains from scratch" in found["base_model"]


def test_script_trainer_rules() -> None:
    text = MINIMAL.replace("tabular_classifier", "script")
    assert "script.path" in problems(text)["script"]
    spec = load_spec(text + "script: {path: train/main.py}\n")
    assert spec.script is not None and spec.script.entrypoint == "train"
    assert spec.result_model.type is ModelType.CUSTOM
    assert "stay inside" in problems(text + "script: {path: ../x.py}\n")["script.path"]
    assert "only the script trainer" in problems(MINIMAL + "script: {path: a.py}\n")["script"]


def test_rules_also_hold_when_built_directly() -> None:
    with pytest.raises(ValueError, match="trains from scratch"):
        PipelineSpec.model_validate(
            {
                "name": "x",
                "type": "pre_training",
                "trainer": "char_lm",
                "base_model": "lm@latest",
                "datasets": ["corpus"],
                "result_model": {"name": "lm"},
            }
        )


def test_checkpoint_needs_a_trigger() -> None:
    found = problems(MINIMAL + "checkpoint: {every_epoch: false}\n")
    assert "every_steps" in found["checkpoint"]


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(
        InvalidInput, match=r"line 4, column 8: .*\(while parsing a flow sequence at line 3\)"
    ):
        load_spec("name: x\ntype: pre_training\ndatasets: [a, b\ntrainer: char_lm\n")


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("", "empty document")])
def test_document_must_be_a_mapping(text: str, kind: str) -> None:
    with pytest.raises(InvalidInput, match=kind):
        load_spec(text)


def test_yaml_is_loaded_safely() -> None:
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_spec("name: !!python/object/apply:os.system [echo hi]\n")


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512MiB", 512 * 1024**2),
        ("2GiB", 2 * 1024**3),
        ("2Gi", 2 * 1024**3),
        ("1G", 10**9),
        ("1.5GB", 1_500_000_000),
        (1024, 1024),
    ],
)
def test_memory_sizes(text: str | int, size: int) -> None:
    assert parse_memory(text) == size


def test_trainer_names_match_the_registry() -> None:
    assert {t.value for t in TrainerName} == set(TRAINERS) | {"script"}
