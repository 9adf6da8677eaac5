"""A token never mints more than it holds: scope, lifetime, and the bounds of both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from modelhub.domain.auth import MAX_DURATION, Caller, Role, parse_duration
from modelhub.errors import InvalidInput, PermissionDenied, Unauthenticated
from modelhub.services import Services, build_services
from modelhub.services.auth import BAD_TOKEN, AuthService
from modelhub.settings import Settings
from modelhub.stores.metadata.factory import open_metadata_store


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[Services]:
    built = build_services(
        Settings(home=tmp_path / "home", token_default_ttl="2d", token_max_ttl="10d")
    )
    yield built
    built.close()


@pytest.fixture
def admin(hub: Services, tmp_path: Path) -> Caller:
    token = hub.auth.bootstrap(tmp_path / "admin.token")
    assert token is not None
    return hub.auth.authenticate(token)


def token_for(hub: Services, maker: Caller, **options: str) -> Caller:
    _, token = hub.auth.create_token(maker, **options)
    return hub.auth.authenticate(token)


def ends_in(caller: Caller, span: timedelta) -> bool:
    assert caller.token_expires_at is not None
    return abs(caller.token_expires_at - (datetime.now(UTC) + span)) < timedelta(minutes=1)


def test_the_first_admin_token_lives_the_longest_allowed(admin: Caller) -> None:
    assert ends_in(admin, timedelta(days=10))


def test_a_new_token_gets_the_default_lifetime(hub: Services, admin: Caller) -> None:
    assert ends_in(token_for(hub, admin), timedelta(days=2))


def test_expires_beyond_the_longest_allowed_is_invalid(hub: Services, admin: Caller) -> None:
    with pytest.raises(InvalidInput, match=r"longer than a token may live: at most 10d") as info:
        hub.auth.create_token(admin, expires="11d")
    assert info.value.details["field"] == "expires"
    local = Caller(name="admin", role=Role.ADMIN)  # local mode: no token bounds it
    assert ends_in(token_for(hub, local, expires="10d"), timedelta(days=10))


def test_a_huge_duration_is_invalid_input_not_an_overflow(hub: Services, admin: Caller) -> None:
    for text in ("9999999d", "9" * 5000 + "s"):
        with pytest.raises(InvalidInput, match="too long"):
            hub.auth.create_token(admin, expires=text)
        with pytest.raises(InvalidInput, match="too long") as info:
            hub.audit.list(admin, since=text)
        assert info.value.details["field"] == "since"


def test_a_token_cannot_mint_one_that_outlives_it(hub: Services, admin: Caller) -> None:
    week = token_for(hub, admin, expires="7d")
    with pytest.raises(PermissionDenied, match=r"cannot outlive the token .* at most 6d"):
        hub.auth.create_token(week, expires="8d")
    assert ends_in(token_for(hub, week, expires="1d"), timedelta(days=1))
    # Without `expires` the default (2d) is shortened to what the maker has left.
    short = token_for(hub, admin, expires="1h")
    assert ends_in(token_for(hub, short), timedelta(hours=1))


def test_a_read_token_can_neither_create_nor_revoke_tokens(hub: Services, admin: Caller) -> None:
    reader = token_for(hub, admin, scope="read")
    assert reader.token_id is not None
    for scope in ("read", "write"):
        with pytest.raises(PermissionDenied, match="read-only token"):
            hub.auth.create_token(reader, scope=scope)
    with pytest.raises(PermissionDenied, match="read-only token"):
        hub.auth.revoke_token(reader, reader.token_id)
    assert hub.auth.list_tokens(reader)  # reading its own tokens stays allowed
    assert all(t.revoked_at is None for t in hub.auth.list_tokens(admin))


class Clock:
    """Wall-clock time that moves only when the test says."""

    def __init__(self) -> None:
        self.time = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.time


def test_a_token_ends_when_its_lifetime_has_passed_on_the_clock(tmp_path: Path) -> None:
    clock = Clock()
    metadata = open_metadata_store(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        auth = AuthService(metadata, b"k" * 32, cache_seconds=60, clock=clock)
        first = auth.bootstrap(tmp_path / "admin.token")
        assert first is not None
        _, token = auth.create_token(auth.authenticate(first), expires="1s")
        assert auth.authenticate(token).token_expires_at == clock.time + timedelta(seconds=1)
        clock.time += timedelta(milliseconds=999)
        assert auth.authenticate(token).name == "admin"  # cached, and not yet expired
        clock.time += timedelta(milliseconds=1)
        with pytest.raises(Unauthenticated) as refused:
            auth.authenticate(token)
        assert refused.value.message == BAD_TOKEN  # the same answer as any bad token
        assert auth.authenticate(first).name == "admin"
    finally:
        metadata.close()


def test_an_empty_user_patch_is_invalid_and_changes_nothing(hub: Services, admin: Caller) -> None:
    hub.auth.add_user(admin, "vera", "viewer")
    before = hub.audit.list(admin)
    with pytest.raises(InvalidInput, match="nothing to change") as refused:
        hub.auth.set_user(admin, "vera")
    assert refused.value.details == {"fields": ["role", "disabled"]}
    assert [u.role.value for u in hub.auth.list_users(admin) if u.name == "vera"] == ["viewer"]
    assert hub.audit.list(admin) == before


@hypothesis_settings(max_examples=150)
@given(st.text(max_size=30) | st.from_regex(r"[0-9]{1,20}[dhmsDHMS]", fullmatch=True))
def test_a_duration_is_bounded_or_refused(text: str) -> None:
    try:
        span = parse_duration(text)
    except InvalidInput as exc:
        assert exc.details["field"] == "expires"
        assert text.startswith(exc.details["value"].removesuffix("..."))  # shown, bounded
        assert len(exc.details["value"]) <= 24
    else:
        assert timedelta(0) < span <= MAX_DURATION
