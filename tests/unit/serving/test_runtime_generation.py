"""The text generation runtime continues prompts with a char_lm model and checks its
parameters, naming the one that is wrong."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelhub.errors import InvalidInput, Unavailable
from modelhub.serving.runtimes import Runtime, load_runtime
from modelhub.training.trainers import char_lm
from tests.unit.serving.builders import no_unpickling, texts


@pytest.fixture(scope="module")
def runtime(char_lm_folder: Path) -> Runtime:
    with no_unpickling():
        return load_runtime(char_lm_folder)


def test_signature_and_info(runtime: Runtime, char_lm_folder: Path) -> None:
    info = runtime.info
    assert info.runtime == "text_generation"
    assert info.blocking is True
    assert info.parameters == ("max_tokens", "temperature", "top_k", "seed")
    assert [(s.name, s.dtype, s.shape) for s in info.signature.inputs] == [("text", "BYTES", [-1])]
    assert [(s.name, s.dtype, s.shape) for s in info.signature.outputs] == [("text", "BYTES", [-1])]
    model = char_lm.load(char_lm_folder).model
    assert info.memory_bytes == sum(p.numel() * 4 for p in model.parameters())


def test_greedy_generation_matches_the_trainers_model(
    runtime: Runtime, char_lm_folder: Path
) -> None:
    lm = char_lm.load(char_lm_folder)
    prompts = ["abc", "hello "]
    out = runtime.infer({"text": texts(*prompts)}, {"max_tokens": 6, "temperature": 0})
    assert out["text"].dtype == object
    assert out["text"].shape == (2,)
    assert out["text"].tolist() == [lm.generate(p, 6, temperature=0) for p in prompts]


def test_one_row_and_the_default_length(runtime: Runtime) -> None:
    out = runtime.infer({"text": texts("a")}, {})
    assert out["text"].shape == (1,)
    assert len(out["text"][0]) == 32  # one character per token, continuation only


def test_a_seed_makes_each_row_independent_of_its_batch(runtime: Runtime) -> None:
    options: dict[str, Any] = {"max_tokens": 8, "seed": 11, "temperature": 1.5, "top_k": 4}
    alone = runtime.infer({"text": texts("bad")}, options)["text"][0]
    batch = runtime.infer({"text": texts("cab", "bad", "bad")}, options)["text"].tolist()
    assert batch[1] == batch[2] == alone


def test_zero_rows_give_zero_rows(runtime: Runtime) -> None:
    assert runtime.infer({"text": texts()}, {})["text"].shape == (0,)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_tokens", 0),
        ("max_tokens", 1025),
        ("max_tokens", "5"),
        ("max_tokens", True),
        ("max_tokens", 2.0),
        ("temperature", -0.1),
        ("temperature", "hot"),
        ("temperature", float("nan")),
        ("temperature", float("inf")),
        ("top_k", 0),
        ("top_k", 1.5),
        ("seed", -1),
        ("seed", 2**63),
    ],
)
def test_a_bad_parameter_is_named(runtime: Runtime, name: str, value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        runtime.infer({"text": texts("a")}, {name: value})
    assert caught.value.details["field"] == f"parameters.{name}"
    assert name in caught.value.message


def test_text_must_be_strings_in_one_column(runtime: Runtime) -> None:
    import numpy as np

    for inputs in ({}, {"text": texts("a", "b").reshape(2, 1)}, {"text": np.array([1], object)}):
        with pytest.raises(InvalidInput) as caught:
            runtime.infer(inputs, {})
        assert caught.value.details["field"] == "text"


def test_an_unloaded_runtime_says_so(char_lm_folder: Path) -> None:
    runtime = load_runtime(char_lm_folder)
    runtime.unload()
    with pytest.raises(Unavailable):
        runtime.infer({"text": texts("a")}, {})


def test_a_temperature_beyond_float_range_is_invalid_input(runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as caught:
        runtime.infer({"text": texts("ab")}, {"temperature": 10**400})
    assert caught.value.details["field"] == "parameters.temperature"
    assert len(caught.value.message) < 120  # the 400 digits are cut short
