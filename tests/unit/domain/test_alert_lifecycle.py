"""The alert lifecycle as a pure function of the open alert, the condition and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelhub.domain.alerts import (
    Alert,
    Comparison,
    Scope,
    ScopeKind,
    Step,
    check_webhook_url,
    decide,
    fingerprint,
    parse_comparison,
    parse_severity,
)
from modelhub.errors import InvalidInput

T0 = datetime(2026, 12, 7, tzinfo=UTC)


def alert(state: str, clearing: datetime | None = None) -> Alert:
    return Alert(
        id=1,
        subject="platform",
        rule="r",
        severity="warning",
        message="m",
        state=state,
        fired_at=T0,
        pending_since=T0,
        clearing_since=clearing,
    )


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("current", "condition", "now", "for_seconds", "hold", "step"),
    [
        (None, False, T0, 60, 0, Step.NOTHING),
        (None, True, T0, 60, 0, Step.PEND),
        (None, True, T0, 0, 0, Step.FIRE),
        (alert("pending"), True, later(59), 60, 0, Step.NOTHING),
        (alert("pending"), True, later(60), 60, 0, Step.FIRE),
        (alert("pending"), False, later(30), 60, 0, Step.CANCEL),
        (alert("firing"), True, later(90), 60, 0, Step.NOTHING),
        (alert("firing"), False, later(90), 0, 0, Step.RESOLVE),
        (alert("firing"), False, later(90), 60, 0, Step.CLEARING),
        (alert("firing", clearing=later(90)), True, later(120), 60, 0, Step.STILL),
        (alert("firing", clearing=later(90)), False, later(149), 60, 0, Step.NOTHING),
        (alert("firing", clearing=later(90)), False, later(150), 60, 0, Step.RESOLVE),
        (alert("firing", clearing=later(90)), False, later(150), 0, 120, Step.NOTHING),
        (alert("firing", clearing=later(90)), False, later(210), 0, 120, Step.RESOLVE),
    ],
)
def test_decide(
    current: Alert | None,
    condition: bool,
    now: datetime,
    for_seconds: float,
    hold: float,
    step: Step,
) -> None:
    assert decide(current, condition, now, for_seconds, hold) is step


def test_comparisons_by_name_and_symbol() -> None:
    assert parse_comparison(">") is Comparison.ABOVE
    assert parse_comparison("at_most") is Comparison.AT_MOST
    assert Comparison.AT_LEAST.holds(5, 5) and not Comparison.ABOVE.holds(5, 5)
    assert Comparison.BELOW.holds(4, 5) and Comparison.AT_MOST.holds(5, 5)
    with pytest.raises(InvalidInput, match="unknown comparison '~'"):
        parse_comparison("~")
    with pytest.raises(InvalidInput, match="unknown severity 'loud'"):
        parse_severity("loud")


def test_webhook_urls_must_be_http_with_a_host_and_no_credentials() -> None:
    assert check_webhook_url("https://hooks.example.com/x?k=1")
    for bad in ("ftp://h/x", "file:///etc/passwd", "http:///x", "javascript:alert(1)"):
        with pytest.raises(InvalidInput, match="not an http"):
            check_webhook_url(bad)
    with pytest.raises(InvalidInput, match="credentials"):
        check_webhook_url("http://user:pw@h/x")


def test_subjects_and_fingerprints() -> None:
    assert Scope(kind=ScopeKind.RUN, target="7").subject == "run:7"
    assert Scope.of_subject("deployment:d") == Scope(kind=ScopeKind.DEPLOYMENT, target="d")
    assert Scope.of_subject("platform").kind is ScopeKind.PLATFORM
    assert fingerprint("r", "run:7") == fingerprint("r", "run:7") != fingerprint("r", "run:8")
    assert len(fingerprint("r", "x")) == 16


def test_malformed_webhook_urls_are_invalid_input_not_crashes() -> None:
    for bad in ("http://[::1", "http://h:99999/x", "http://h/" + "x" * 3000, "http://h/\x00"):
        with pytest.raises(InvalidInput, match="not an http"):
            check_webhook_url(bad)
