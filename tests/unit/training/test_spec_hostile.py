"""Hostile pipeline.yaml (issue 19, section 6): each is refused with InvalidInput, nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelhub.errors import InvalidInput
from modelhub.training.estimate import Prices, estimate, guess_parameters
from modelhub.training.spec import load_spec, named_script, parse_spec, read_spec_file

BASE = """\
name: p
type: pre_training
trainer: tabular_classifier
datasets: [d]
result_model: {name: m}
"""

LM = BASE.replace("tabular_classifier", "char_lm")


def problems(text: str) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_spec(text)
    return {e["field"]: e["message"] for e in caught.value.details["errors"]}


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    bomb = BASE + "augmentation:\n" + "\n".join("  " + line for line in lines) + "\n"
    assert len(bomb) < 1500  # 9**10 strings once expanded
    assert "anchors and aliases" in problems(bomb)[""]


def test_a_self_referencing_alias_is_refused() -> None:
    found = problems(BASE + "hyperparameters: {hidden: &h [1, *h]}\n")
    assert "anchors and aliases" in found[""]


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    assert "nested deeper than" in problems("[" * 2000)[""]
    assert "nested deeper than" in problems(BASE + "augmentation: " + "{a: " * 2000)[""]


@pytest.mark.parametrize(
    "line",
    [
        "name: " + "1" * 5000,  # past Python's 4300-digit int limit: ValueError before
        "seed: " + "9" * 400,
        "resources: {memory: " + "9" * 400 + "}",  # OverflowError in the estimate before
        "max_epochs: 0x" + "f" * 40,
    ],
)
def test_integers_beyond_64_bits_are_refused_at_load(line: str) -> None:
    assert "integer out of range" in problems(BASE + line + "\n")[""]


def test_a_huge_memory_text_is_refused_not_an_overflow() -> None:
    found = problems(BASE + "resources: {memory: " + "9" * 400 + "GiB}\n")
    assert "at most" in found["resources.memory"]
    assert "at most" in problems(BASE + "resources: {memory: 2000TiB}\n")["resources.memory"]
    assert parse_spec(BASE + "resources: {memory: 2TiB}\n").resources.memory == 2 * 1024**4


def test_non_ascii_digits_are_not_a_memory_size() -> None:
    assert "unreadable size" in problems(BASE + "resources: {memory: ٣GiB}\n")["resources.memory"]


def test_seed_fits_every_random_generator() -> None:
    assert "less than or equal to" in problems(BASE + "seed: 4294967296\n")["seed"]


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1.0e+999"])
def test_non_finite_numbers_are_refused(value: str) -> None:
    assert "finite" in problems(BASE + f"hyperparameters: {{learning_rate: {value}}}\n")[""]


def test_an_unhashable_trainer_is_a_field_error_not_a_type_error() -> None:
    assert "trainer" in problems(BASE.replace("trainer: tabular_classifier", "trainer: []"))


def test_impossible_dates_are_read_as_text() -> None:
    # PyYAML reads 2001-13-01 as a timestamp and raised ValueError for month 13.
    spec = parse_spec(BASE + "description: 2001-13-01\nhyperparameters: {label: 0000-01-01}\n")
    assert spec.description == "2001-13-01"
    assert spec.hyperparameters["label"] == "0000-01-01"


def test_lone_surrogates_in_yaml_text_are_refused() -> None:
    assert "lone surrogate" in problems(BASE + 'description: "\\ud800"\n')[""]


def test_a_document_past_the_size_bound_is_refused_at_once() -> None:
    huge = BASE + "description: " + "x" * 10_000_000 + "\n"
    assert "longer than" in problems(huge)[""]


def test_a_dataset_version_beyond_64_bits_is_a_field_error() -> None:
    found = problems(BASE.replace("[d]", "['d@" + "9" * 5000 + "', 'e@99999999999999999999']"))
    assert "invalid dataset version" in found["datasets[0]"]
    assert "invalid dataset version" in found["datasets[1]"]


def test_a_base_model_version_beyond_64_bits_is_a_field_error() -> None:
    spec = LM.replace("pre_training", "fine_tuning") + "base_model: m@" + "9" * 5000 + "\n"
    assert "out of range" in problems(spec)["base_model"]


def test_named_script_never_raises_on_hostile_yaml() -> None:
    assert named_script("[" * 2000) is None
    assert named_script("a: &x [*x]") is None
    assert named_script("script: {path: " + "1" * 5000 + "}") is None


# -- the estimate reads the typed architecture ------------------------------------


@pytest.mark.parametrize(
    ("hyperparameters", "field"),
    [
        ("{d_model: abc}", "hyperparameters.d_model"),
        ("{d_model: null}", "hyperparameters.d_model"),
        ("{d_model: 64.5}", "hyperparameters.d_model"),
        ("{n_layers: 0}", "hyperparameters.n_layers"),
        ("{context_length: '64'}", "hyperparameters.context_length"),
        ("{d_model: 10, n_heads: 4}", "hyperparameters"),
    ],
)
def test_char_lm_architecture_is_checked_with_the_spec(hyperparameters: str, field: str) -> None:
    assert field in problems(LM + f"hyperparameters: {hyperparameters}\n")


@pytest.mark.parametrize(
    ("hyperparameters", "field"),
    [
        ("{hidden: [null]}", "hyperparameters.hidden[0]"),
        ("{hidden: [0.5]}", "hyperparameters.hidden[0]"),
        ("{hidden: [0]}", "hyperparameters.hidden[0]"),
        ("{hidden: [100000000]}", "hyperparameters.hidden[0]"),
        ("{hidden: true}", "hyperparameters.hidden"),
        ("{features: 5}", "hyperparameters.features"),
        ("{features: []}", "hyperparameters.features"),
    ],
)
def test_tabular_architecture_is_checked_with_the_spec(hyperparameters: str, field: str) -> None:
    assert field in problems(BASE + f"hyperparameters: {hyperparameters}\n")


def test_a_malformed_hyperparameter_is_reported_once() -> None:
    found = problems(BASE + "hyperparameters: {hidden: {a: 1}}\n")
    assert list(found) == ["hyperparameters.hidden"]


def test_the_estimate_counts_whole_parameters_from_the_typed_architecture() -> None:
    spec = parse_spec(BASE + "hyperparameters: {hidden: 8, features: [a, b]}\n")
    assert guess_parameters(spec, {}, None) == (2 * 8 + 8) + (8 * 10 + 10)
    lm = parse_spec(LM + "hyperparameters: {d_model: 32, n_layers: 1, n_heads: 4}\n")
    count = guess_parameters(lm, {}, None)
    assert isinstance(count, int) and count == 12 * 32 * 32 + (100 + 64) * 32 + 100 * 32
    result = estimate(lm, count, "fp32", 1000, 100.0, Prices())
    assert result.memory_bytes > 0 and result.cost >= 0


def test_a_spec_file_too_large_to_be_one_is_refused_unread(tmp_path: Path) -> None:
    huge = tmp_path / "pipeline.yaml"
    with huge.open("wb") as out:
        out.truncate(10 * 1024 * 1024 * 1024)  # 10 GiB, sparse: read_text would fill memory
    with pytest.raises(InvalidInput, match="too large"):
        read_spec_file(huge)
    with pytest.raises(InvalidInput, match="too large"):
        load_spec(huge)


def test_a_spec_file_that_is_not_utf8_is_invalid_input(tmp_path: Path) -> None:
    bad = tmp_path / "pipeline.yaml"
    bad.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(InvalidInput, match="cannot read"):
        read_spec_file(bad)
