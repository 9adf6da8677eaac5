"""The bounds at the edge (issue 19, section 6): names, version numbers, text, the YAML loader."""

from __future__ import annotations

import pytest
import yaml

from modelhub.domain.limits import (
    INT64_MAX,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    check_text,
    load_yaml,
    non_finite_number,
    unencodable_text,
)
from modelhub.domain.names import (
    check_label,
    check_license,
    check_relative_path,
    check_tags,
    parse_ref,
    parse_version_number,
)
from modelhub.errors import InvalidInput


@pytest.mark.parametrize(
    "label",
    ["1\u0662.0.0", "1.0.0\u0663", "1.2.3-rc.\u0664", "1.2.3+build.\u0665", "1.0.0\u00b2"],
)
def test_semver_labels_refuse_non_ascii_digits(label: str) -> None:
    with pytest.raises(InvalidInput, match="invalid version label"):
        check_label(label)


def test_semver_labels_still_take_ascii() -> None:
    assert check_label("10.20.30-rc.1+build.5") == "10.20.30-rc.1+build.5"


@pytest.mark.parametrize("selector", [str(2**63), "9" * 30, "9" * 5000, "0"])
def test_version_selectors_beyond_64_bits_are_invalid_input(selector: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ref(f"m@{selector}")
    with pytest.raises(InvalidInput):
        parse_version_number(selector)


def test_the_widest_version_number_is_read() -> None:
    assert parse_ref(f"m@{INT64_MAX}").version_number == INT64_MAX
    assert parse_ref("m@007").version_number == 7


@pytest.mark.parametrize("text", ["\ud800", "a\udcffb", "\udfff"])
def test_lone_surrogates_are_refused_by_every_text_check(text: str) -> None:
    with pytest.raises(InvalidInput, match="lone surrogate"):
        check_text(text, "search")
    with pytest.raises(InvalidInput):
        check_tags({"team": text})
    with pytest.raises(InvalidInput):
        check_license(text)
    with pytest.raises(InvalidInput):
        check_relative_path(f"dir/{text}.bin")
    assert unencodable_text({"a": [1, {"b": text}]}) == "a[1].b"
    assert unencodable_text({text: 1}) is not None


def test_encodable_text_passes() -> None:
    assert check_text("héllo ✓ 😀", "search") == "héllo ✓ 😀"
    assert unencodable_text({"a": ["é", 1, None]}) is None


def test_body_walkers_find_non_finite_numbers_at_any_depth() -> None:
    assert non_finite_number({"metrics": {"loss": float("nan")}}) == "metrics.loss"
    assert non_finite_number([1.0, {"a": [float("-inf")]}]) == "[1].a[0]"
    assert non_finite_number({"a": 1e308, "b": [0.5]}) is None
    deep: list[object] = ["\ud800"]
    for _ in range(100_000):  # deeper than any recursion limit
        deep = [deep]
    assert unencodable_text(deep) is not None and non_finite_number(deep) is None


def test_load_yaml_refuses_what_safe_load_would_build() -> None:
    for text, problem in [
        ("a: &x 1\nb: *x", "anchors and aliases"),
        ("a: &x [1]", "anchors and aliases"),
        ("[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1), "nested deeper"),
        ("[" + ", ".join(["1"] * MAX_YAML_NODES) + "]", "more than"),
        (f"n: {2**63}", "integer out of range"),
        (f"n: {-(2**63) - 1}", "integer out of range"),
        ("n: 0x" + "f" * 17, "integer out of range"),
        ("n: 1:0:0:0:0:0:0:0:0:0:0:0", "integer out of range"),  # base 60
        ("n: .nan", "finite"),
        ('s: "\\udc80"', "lone surrogate"),
    ]:
        with pytest.raises(yaml.YAMLError, match=problem):
            load_yaml(text)


def test_load_yaml_reads_ordinary_documents() -> None:
    text = "a: [1, -2, 0x10, 1.5]\nb: {c: 2001-12-14, d: null, e: true}\nn: 9223372036854775807"
    assert load_yaml(text) == {
        "a": [1, -2, 16, 1.5],
        "b": {"c": "2001-12-14", "d": None, "e": True},
        "n": INT64_MAX,
    }
    nested = "[" * (MAX_YAML_DEPTH - 1) + "]" * (MAX_YAML_DEPTH - 1)
    assert load_yaml(nested) is not None
