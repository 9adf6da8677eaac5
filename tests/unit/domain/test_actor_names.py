"""Names that reach the audit log: user names and client-chosen request ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelhub.domain.auth import check_new_user_name, check_user_name
from modelhub.domain.context import REQUEST_ID, accept_request_id
from modelhub.errors import InvalidInput


@pytest.mark.parametrize("name", ["anonymous", "system"])
def test_reserved_actor_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match=f"user name '{name}' is reserved") as exc:
        check_new_user_name(name)
    assert exc.value.details == {"field": "user", "value": name}
    assert check_user_name(name) == name  # an existing one can still be looked up


def test_names_that_merely_contain_a_reserved_one_are_fine() -> None:
    assert check_new_user_name("system-ops") == "system-ops"
    assert check_new_user_name("anonymous2") == "anonymous2"
    with pytest.raises(InvalidInput, match="invalid user name"):
        check_new_user_name("System")


@pytest.mark.parametrize(
    "sent",
    [
        b"ok\nX-Injected: 1",
        b"ok\r\nset-cookie: a",
        b"nul\x00byte",
        b"x" * 65,
        b"caf\xc3\xa9",
        b" padded",
        b"",
        None,
    ],
)
def test_hostile_or_missing_request_ids_are_replaced(sent: bytes | None) -> None:
    chosen = accept_request_id(sent)
    assert chosen != (sent or b"").decode("latin-1")
    assert len(chosen) == 16 and all(c in "0123456789abcdef" for c in chosen)


@pytest.mark.parametrize("sent", [b"deploy-42", b"a", b"A.b_c:d-e", b"x" * 64])
def test_plain_request_ids_are_kept(sent: bytes) -> None:
    assert accept_request_id(sent) == sent.decode()


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_whatever_is_sent_the_id_kept_is_short_plain_ascii(sent: bytes) -> None:
    chosen = accept_request_id(sent)
    assert REQUEST_ID.fullmatch(chosen) and len(chosen) <= 64
    assert chosen.isascii() and chosen.isprintable() and " " not in chosen
