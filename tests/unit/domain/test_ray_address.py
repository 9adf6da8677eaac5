"""The Ray address forms the settings accept, and the clear refusal of the others."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from modelhub.domain.ray_address import parse_ray_address
from modelhub.errors import InvalidInput
from modelhub.settings import Settings


@pytest.mark.parametrize(
    ("given", "kind", "text"),
    [
        ("auto", "auto", "auto"),
        ("ray://head:10001", "client", "ray://head:10001"),
        ("ray://head", "client", "ray://head:10001"),
        ("10.0.0.5:6379", "gcs", "10.0.0.5:6379"),
        ("10.0.0.5", "gcs", "10.0.0.5:6379"),
        ("[::1]:7000", "gcs", "[::1]:7000"),
        (" ray://[fd00::2] ", "client", "ray://[fd00::2]:10001"),
    ],
)
def test_accepted_forms(given: str, kind: str, text: str) -> None:
    address = parse_ray_address(given)
    assert (address.kind, address.text) == (kind, text)


@pytest.mark.parametrize(
    "bad", ["http://head:8265", "head:0", "head:70000", "head:port", "two words", "[::1", "ray://"]
)
def test_other_forms_are_refused_naming_the_accepted_ones(bad: str) -> None:
    with pytest.raises(InvalidInput, match=r"Ray address|port") as refused:
        parse_ray_address(bad)
    assert refused.value.details == {"field": "train_ray_address"}


def test_the_settings_check_the_address_when_read() -> None:
    assert Settings(train_ray_address="ray://head").train_ray_address == "ray://head:10001"
    assert Settings(train_ray_address="").train_ray_address is None
    with pytest.raises(ValidationError, match="ray://head:10001"):
        Settings(train_ray_address="http://head:8265")
