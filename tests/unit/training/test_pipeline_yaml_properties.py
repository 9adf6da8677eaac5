"""Property: any pipeline.yaml text is a PipelineSpec with sane values, or a ModelhubError.

Issue 19's parser contract for the "pipeline YAML" family. Three sources of text:
arbitrary strings, YAML dumped from arbitrary nested data (so every field meets
wrong types, huge numbers, deep nesting), and a valid spec with one field replaced.
A spec that parses is also estimated, which must not fail either.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhub.domain.limits import INT64_MAX
from modelhub.domain.pipelines import PipelineSpec
from modelhub.errors import ModelhubError
from modelhub.training.estimate import Prices, estimate, guess_parameters
from modelhub.training.spec import named_script, parse_spec

VALID = {
    "name": "p",
    "type": "pre_training",
    "trainer": "tabular_classifier",
    "datasets": ["d"],
    "result_model": {"name": "m"},
}
FIELDS = [
    "name",
    "type",
    "trainer",
    "datasets",
    "preprocessing",
    "validation_split",
    "seed",
    "hyperparameters",
    "max_epochs",
    "checkpoint",
    "resources",
    "priority",
    "result_model",
    "script",
    "base_model",
    "augmentation",
]
TRAINERS = ["tabular_classifier", "text_classifier", "char_lm", "script"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["64", "abc", "2GiB", "1e9", "d@3", "m@latest", "٣", "\ud800"]),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
hyperparameters = st.dictionaries(
    st.sampled_from(
        [
            "hidden",
            "features",
            "d_model",
            "n_layers",
            "n_heads",
            "context_length",
            "learning_rate",
            "batch_size",
            "dropout",
            "label",
            "epochs",
        ]
    ),
    values,
    max_size=4,
)


def dump(data: Any) -> str:
    try:
        return str(yaml.safe_dump(data, allow_unicode=False))
    except (yaml.YAMLError, UnicodeEncodeError, RecursionError):
        return "{}"


def assert_contract(text: str) -> None:
    try:
        spec = parse_spec(text)
    except ModelhubError:
        return
    assert isinstance(spec, PipelineSpec)
    assert 0 <= spec.seed <= INT64_MAX and 1 <= spec.max_epochs <= 100_000
    assert 0 < spec.resources.memory <= INT64_MAX and math.isfinite(spec.resources.cpus)
    parameters = guess_parameters(spec, {"a": "float", "label": "int"}, None)
    assert isinstance(parameters, int) and parameters >= 0
    result = estimate(spec, parameters, "fp32", 1000, 100.0, Prices())
    assert math.isfinite(result.seconds) and math.isfinite(result.cost)
    assert isinstance(result.memory_bytes, int)


@settings(max_examples=60)
@given(st.text(max_size=200))
def test_any_text(text: str) -> None:
    assert_contract(text)
    named_script(text)  # lenient: never raises at all


@settings(max_examples=80)
@given(values)
def test_any_yaml_document(data: Any) -> None:
    assert_contract(dump(data))


@settings(max_examples=120)
@given(
    st.sampled_from(FIELDS),
    values,
    st.sampled_from(TRAINERS),
    hyperparameters,
)
def test_a_valid_spec_with_one_field_replaced(
    field: str, value: Any, trainer: str, hps: dict[str, Any]
) -> None:
    data = {**VALID, "trainer": trainer, "hyperparameters": hps, field: value}
    if trainer == "script":
        data.setdefault("script", {"path": "train.py"})
    assert_contract(dump(data))


@settings(max_examples=20)
@given(st.sampled_from(["[", "{a: ", "- ", "&a ", "*a ", "!!python/object "]), st.integers(1, 3000))
def test_repeated_openers(opener: str, count: int) -> None:
    assert_contract(opener * count)
