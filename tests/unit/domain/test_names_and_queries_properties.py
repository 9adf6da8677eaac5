"""Property: every name, selector, label, tag and search query a user types either comes back
checked or raises a ModelhubError (issue 19's parser contract, "names and queries" family).

The search runs on a real registry over a real SQLite file, so a value the database
cannot hold (a lone surrogate, an integer past 64 bits) fails the property.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhub.domain.limits import INT64_MAX
from modelhub.domain.names import (
    check_alias,
    check_label,
    check_license,
    check_model_name,
    check_relative_path,
    parse_ref,
    parse_tags,
    parse_version_number,
)
from modelhub.domain.queries import VersionQuery
from modelhub.errors import ModelhubError
from modelhub.services import Services, build_services
from modelhub.services.datasets import parse_dataset_ref
from modelhub.settings import Settings

# Text that reaches the edge cases: digits of every script, surrogates, separators.
tricky = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789@.+-_/٣²\ud800\x00 =", max_size=30),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(["m@" + "9" * 5000, "1." * 40 + "0", "a=" + "x" * 300, "../x", "C:x"]),
)
wide_ints = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, INT64_MAX, INT64_MAX + 1, -1, 2**64]),
)

CHECKS: list[Callable[[str], Any]] = [
    check_model_name,
    check_alias,
    check_label,
    check_license,
    check_relative_path,
    parse_ref,
    parse_version_number,
    parse_dataset_ref,
    lambda text: parse_tags([text]),
]


@settings(max_examples=150)
@given(st.sampled_from(range(len(CHECKS))), tricky)
def test_every_name_check_keeps_the_contract(which: int, text: str) -> None:
    try:
        result = CHECKS[which](text)
    except ModelhubError:
        return
    if which == 5:  # parse_ref: a number it accepts fits a database column
        number = result.version_number
        assert number is None or 1 <= number <= INT64_MAX
    if which == 6:
        assert 1 <= result <= INT64_MAX


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    home: Path = tmp_path_factory.mktemp("names-queries")
    built = build_services(Settings(home=home))
    yield built
    built.close()


@settings(max_examples=80)
@given(
    text=st.none() | tricky,
    name=st.none() | tricky,
    tags=st.dictionaries(tricky, tricky, max_size=2),
    limit=wide_ints,
    offset=wide_ints,
    kind=st.none() | st.sampled_from(["classification", "x", "\ud800"]),
)
def test_any_search_query_keeps_the_contract(
    services: Services,
    text: str | None,
    name: str | None,
    tags: dict[str, str],
    limit: int,
    offset: int,
    kind: str | None,
) -> None:
    request = VersionQuery(text=text, name=name, tags=tags, limit=limit, offset=offset, type=kind)
    try:
        page = services.registry.search(request)
    except ModelhubError:
        return
    assert page.total >= 0 and page.items == []
