"""Names a user can type: model names, aliases, labels, tags, file paths, refs."""

from __future__ import annotations

import pytest

from modelhub.domain.names import (
    ModelRef,
    check_alias,
    check_label,
    check_license,
    check_model_name,
    check_relative_path,
    check_tags,
    parse_ref,
    parse_tags,
)
from modelhub.errors import InvalidInput


@pytest.mark.parametrize(
    "name", ["bert", "b", "BERT-base_v1.2", "0model", "a" * 100, "all-MiniLM-L6-v2"]
)
def test_valid_model_names(name: str) -> None:
    assert check_model_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "..",
        "a..b",
        "/abs",
        "a/b",
        "a\\b",
        "-lead",
        ".hidden",
        "_under",
        "a" * 101,
        "modèle",
        "名前",
        "has space",
        "a@b",
        "a\x00",
        "line\n",
    ],
)
def test_invalid_model_names(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_model_name(name)
    assert info.value.details["field"] == "name"


@pytest.mark.parametrize("alias", ["champion", "a", "blue-green", "v2_candidate", "a" * 64])
def test_valid_aliases(alias: str) -> None:
    assert check_alias(alias) == alias


@pytest.mark.parametrize(
    "alias",
    [
        "",
        "Champion",
        "1st",
        "-x",
        "a" * 65,
        "with space",
        "a.b",
        "ünï",
        "champion\n",
        "latest",
        "production",
        "staging",
        "development",
        "deprecated",
    ],
)
def test_invalid_and_reserved_aliases(alias: str) -> None:
    with pytest.raises(InvalidInput):
        check_alias(alias)


@pytest.mark.parametrize(
    "label", ["0.0.1", "1.2.3", "10.20.30", "1.0.0-alpha.1", "1.0.0+build.5", "1.0.0-rc.1+x"]
)
def test_semver_labels(label: str) -> None:
    assert check_label(label) == label


@pytest.mark.parametrize(
    "label", ["", "1", "1.2", "v1.2.3", "01.2.3", "1.2.3.4", "1.2.3-", "a.b.c"]
)
def test_bad_labels(label: str) -> None:
    with pytest.raises(InvalidInput):
        check_label(label)


def test_tags() -> None:
    tags = {"team": "nlp", "org/unit:x": "a=b", "k.v-w_1": "", "t": "v" * 256}
    assert check_tags(tags) == tags
    assert parse_tags(["team = nlp", "lang=en=us"]) == {"team": "nlp", "lang": "en=us"}


@pytest.mark.parametrize(
    "tags",
    [
        {"": "x"},
        {"k\n": "x"},
        {"1key": "x"},
        {"a b": "x"},
        {"k" * 65: "x"},
        {"k": "v" * 257},
        {"k": "a\x00"},
    ],
)
def test_bad_tags(tags: dict[str, str]) -> None:
    with pytest.raises(InvalidInput):
        check_tags(tags)


def test_parse_tags_needs_an_equals_sign() -> None:
    with pytest.raises(InvalidInput):
        parse_tags(["novalue"])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("model.onnx", "model.onnx"),
        ("a/b/c.bin", "a/b/c.bin"),
        ("..hidden", "..hidden"),
        # Redundant separators and '.' parts are normalised away, never kept.
        ("./a", "a"),
        ("a/./b", "a/b"),
        ("a//b", "a/b"),
        ("a/", "a"),
        ("a" * 255, "a" * 255),
        ("d/" + "é" * 127, "d/" + "é" * 127),
    ],
)
def test_valid_relative_paths(path: str, expected: str) -> None:
    assert check_relative_path(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "",
        "..",
        "../x",
        "a/../b",
        "a/..",
        "/etc/passwd",
        "a\\b",
        "..\\x",
        "C:/x",
        "c:x",
        "a\x00b",
        ".",
        "./",
        "a" * 1025,
        "x\n/../..",
        "a" * 256,
        "d/" + "b" * 256,
        "é" * 128,
    ],
)
def test_unsafe_relative_paths(path: str) -> None:
    with pytest.raises(InvalidInput):
        check_relative_path(path)


@pytest.mark.parametrize(
    ("text", "ref", "number"),
    [
        ("m", ModelRef("m", "latest"), None),
        ("m@3", ModelRef("m", "3"), 3),
        ("m@latest", ModelRef("m", "latest"), None),
        ("m@production", ModelRef("m", "production"), None),
        ("m@champion", ModelRef("m", "champion"), None),
    ],
)
def test_parse_ref(text: str, ref: ModelRef, number: int | None) -> None:
    parsed = parse_ref(text)
    assert parsed == ref
    assert parsed.version_number == number
    assert str(parsed) == f"{ref.name}@{ref.selector}"


def test_parse_ref_default() -> None:
    assert parse_ref("m", default="production") == ModelRef("m", "production")


@pytest.mark.parametrize(
    "text", ["m@0", "m@00", "m@", "@3", "../x@1", "m@Champion", "m@1.0", "m@-1"]
)
def test_bad_refs(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_ref(text)


def test_digest_with_a_trailing_newline_is_refused() -> None:
    from modelhub.stores.artifacts.base import check_digest

    with pytest.raises(InvalidInput):
        check_digest("a" * 64 + "\n")


def test_license() -> None:
    assert check_license("Apache-2.0") == "Apache-2.0"
    assert check_license("x" * 128) == "x" * 128
    for bad in ("x" * 129, "MIT\x00"):
        with pytest.raises(InvalidInput):
            check_license(bad)
