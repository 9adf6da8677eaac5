"""The drift engine's edges: what is skipped and why, kinds, the stored form."""

from __future__ import annotations

import numpy as np
import pytest

from modelhub.domain.drift import DriftTest, FeatureKind
from modelhub.errors import InvalidInput
from modelhub.monitoring.drift import DriftConfig, compare, psi, split_columns
from modelhub.monitoring.drift_profile import (
    CategoricalProfile,
    build_profile,
    profile_from_json,
    profile_to_json,
)


def test_columns_that_cannot_be_compared_are_skipped_with_the_reason() -> None:
    rng = np.random.default_rng(0)
    profile = build_profile(
        {"x": rng.normal(size=200), "y": rng.normal(size=200), "z": rng.normal(size=200)}
    )
    report = compare(
        profile,
        {
            "x": rng.normal(size=10),
            "y": np.array(["a"] * 50, dtype=object),
            "new": rng.normal(size=50),
        },
    )
    assert report.verdicts == []
    assert report.skipped == {
        "x": "10 live values, fewer than 30",
        "y": "live values are not numbers, the reference's are",
        "z": "no live values",
        "new": "not in the reference profile",
    }


def test_numbers_with_few_values_are_categories_whatever_their_type() -> None:
    rng = np.random.default_rng(1)
    profile = build_profile({"rating": rng.integers(1, 4, size=300)})
    assert isinstance(profile.columns["rating"], CategoricalProfile)
    assert set(profile.columns["rating"].counts) == {"1", "2", "3"}
    # Floats from a JSON request read as the same categories as the reference's ints.
    same = compare(profile, {"rating": rng.integers(1, 4, size=200).astype(float)})
    assert same.verdicts[0].kind is FeatureKind.CATEGORICAL and not same.drifted_features


def test_a_profile_survives_its_stored_form_and_garbage_is_refused() -> None:
    rng = np.random.default_rng(2)
    columns = {
        "x": rng.normal(size=300),
        "colour": rng.choice(np.array(["red", "blue"], dtype=object), size=300),
        "text": np.array([f"message number {i} about things" for i in range(300)], dtype=object),
        "vec": rng.normal(size=(300, 4)),
    }
    profile = build_profile(columns, {"colour": "output"})
    again = profile_from_json(profile_to_json(profile))
    assert again.roles == {"x": "input", "colour": "output", "text": "input", "vec": "input"}
    assert [c.kind for c in again.columns.values()] == [
        FeatureKind.NUMERIC, FeatureKind.CATEGORICAL, FeatureKind.TEXT, FeatureKind.VECTOR
    ]  # fmt: skip
    first, second = compare(profile, columns), compare(again, columns)
    assert [v.statistic for v in first.verdicts] == [v.statistic for v in second.verdicts]
    with pytest.raises(InvalidInput, match="drift profile"):
        profile_from_json(b'{"format": "something else"}')
    with pytest.raises(InvalidInput, match="differ in length"):
        build_profile({"a": np.zeros(3), "b": np.zeros(4)})


def test_tensors_split_into_named_features() -> None:
    batch = np.arange(6.0).reshape(3, 2)
    split = split_columns(
        {"input": batch, "probabilities": batch, "one": batch[:, :1]}, {"input": ["a", "b"]}
    )
    assert list(split) == ["a", "b", "probabilities", "one"]
    assert split["b"].tolist() == [1.0, 3.0, 5.0] and split["probabilities"].shape == (3, 2)
    assert split["one"].shape == (3,)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    shares = np.full(10, 0.1)
    tilted = np.array([0.09] * 5 + [0.11] * 5)
    concentrated = np.eye(10)[0]  # every value in the first bin
    assert psi(shares, shares) == 0.0
    assert 0 < psi(shares, tilted) < 0.1  # "stable", as PSI is commonly read
    assert psi(shares, concentrated) > 0.25  # "a major shift"


def test_thresholds_come_from_the_config() -> None:
    rng = np.random.default_rng(3)
    profile = build_profile({"x": rng.normal(size=500)})
    live = {"x": rng.normal(loc=0.15, size=500)}
    loose = compare(profile, live, DriftConfig(p_value=0.5))
    strict = compare(profile, live, DriftConfig(p_value=1e-9))
    assert loose.verdicts[0].test is DriftTest.KS and loose.verdicts[0].threshold == 0.5
    assert loose.drifted_features == ["x"] and strict.drifted_features == []
